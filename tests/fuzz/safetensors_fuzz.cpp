// libFuzzer target for the safetensors header parser: any bytes either parse into a header whose
// tensors tile the data section exactly, or are refused with a DiagnosticError; nothing else.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include <alignkit/safetensors_header.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto header = alignkit::safetensors::parse_header(
        std::span<const std::byte>(reinterpret_cast<const std::byte*>(data), size), "fuzz-input");
    std::uint64_t covered = 0;
    for (const auto& t : header.tensors) {
      if (t.begin != covered || t.end < t.begin) std::abort();  // the checks let a hole or overlap through
      covered = t.end;
    }
    if (header.data_offset + covered != size) std::abort();
  } catch (const alignkit::DiagnosticError&) {
  }
  return 0;
}
