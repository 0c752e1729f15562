// libFuzzer target for a model folder's config.json, read by the hf loader's parser: any bytes are
// either a config whose parameter count fits (so the loader's byte counts cannot overflow) or
// refused with a DiagnosticError naming config.json; nothing else.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <alignkit/diagnostic.hpp>

#include "hf_config.hpp"

namespace {

const std::filesystem::path& model_dir() {
  static const auto path = [] {
    auto dir = std::filesystem::temp_directory_path() / ("alignkit-config-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    return dir;
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  {
    std::ofstream out(model_dir() / "config.json", std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  try {
    auto config = alignkit::hf::read_config(model_dir());
    if (alignkit::hf::parameter_count(config) <= 0 || alignkit::hf::parameter_count(config) > (std::int64_t{1} << 50))
      std::abort();
    config = alignkit::hf::as_classifier(std::move(config), 1, model_dir());
    (void)alignkit::hf::parameter_count(config);
  } catch (const alignkit::DiagnosticError&) {
  }
  return 0;
}
