// The one place where differences between LibTorch releases are handled.
//
// alignkit builds against Debian's LibTorch 1.13 (CPU) and against LibTorch 2.x (CPU or CUDA, e.g.
// the one inside a torch 2.x wheel). Code elsewhere uses these names instead of testing versions.
#pragma once

#include <string>

#include <torch/version.h>

#define ALIGNKIT_TORCH_AT_LEAST(major, minor) \
  (TORCH_VERSION_MAJOR > (major) ||           \
   (TORCH_VERSION_MAJOR == (major) && TORCH_VERSION_MINOR >= (minor)))

namespace alignkit::compat {

// "1.13", "2.11", ... as compiled against.
inline std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR);
}

// True when this LibTorch was built with CUDA and a device is visible.
bool cuda_available();

}  // namespace alignkit::compat
