// The one place where differences between LibTorch releases are handled.
//
// alignkit builds against Debian's LibTorch 1.13 (CPU) and against LibTorch 2.x (CPU or CUDA, e.g.
// the one inside a torch 2.x wheel). Code elsewhere uses these names instead of testing versions.
#pragma once

#include <sstream>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>

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

// Free and total memory of CUDA device `index` in bytes, as cudaMemGetInfo reports them (what
// torch.cuda.mem_get_info returns); nullopt without a CUDA LibTorch, without that device, or
// when the driver cannot be asked. Read through the driver library (libcuda.so.1) in the device's
// primary context, so it needs no CUDA headers and no LibTorch CUDA API, whose names moved
// between releases.
struct CudaMemory {
  std::int64_t free = 0, total = 0;
};
std::optional<CudaMemory> cuda_memory(int index);

// The CUDA caching allocator's peak reserved bytes on device `index` since the process started
// (what torch.cuda.max_memory_reserved reports); nullopt on a LibTorch without CUDA or without
// that device. Compiled only against a CUDA LibTorch (ALIGNKIT_TORCH_CUDA).
std::optional<std::int64_t> cuda_peak_reserved_bytes(int index);

// The key a LibTorch optimizer files a parameter's state under: the TensorImpl's address printed
// as a string in 1.x (c10::guts::to_string), the address itself where the map is keyed by pointer.
template <typename Optimizer, typename Tensor>
auto optimizer_state_key(const Optimizer& optimizer, const Tensor& parameter) {
  using Key = typename std::decay_t<decltype(optimizer.state())>::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;
    text << parameter.unsafeGetTensorImpl();
    return text.str();
  } else {
    return static_cast<Key>(parameter.unsafeGetTensorImpl());
  }
}

// Zeroes the gradients in place, keeping them allocated, as 1.x's zero_grad() did; 2.x's default
// (set_to_none) frees them, which changes what stays resident between steps (the planner prices
// resident gradients) and whether AdamW decays a parameter that got no gradient in a step.
template <typename Optimizer>
void zero_grad_in_place(Optimizer& optimizer) {
#if ALIGNKIT_TORCH_AT_LEAST(2, 0)
  optimizer.zero_grad(/*set_to_none=*/false);
#else
  optimizer.zero_grad();
#endif
}

}  // namespace alignkit::compat
