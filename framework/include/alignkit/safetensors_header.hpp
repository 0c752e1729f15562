// The safetensors header: its types and the checks on its untrusted bytes. Free of LibTorch, so
// the fuzzer builds it alone; alignkit/safetensors.hpp adds reading and writing tensors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <alignkit/diagnostic.hpp>

namespace alignkit::safetensors {

// The header may not exceed this (the reference implementation's own limit).
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;

enum class DType { BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64 };

std::string_view to_string(DType dtype);
std::size_t element_size(DType dtype);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // byte offsets into the data section
  std::uint64_t end = 0;
};

struct Header {
  std::vector<TensorInfo> tensors;  // in file order (by begin offset)
  std::map<std::string, std::string> metadata;
  std::uint64_t data_offset = 0;  // where the data section starts in the file
};

// Parses and checks the header of a complete file image. `file_name` only labels messages.
// Throws DiagnosticError. Needs no LibTorch, so the fuzzer can drive it directly.
Header parse_header(std::span<const std::byte> file, const std::string& file_name);

}  // namespace alignkit::safetensors
