// safetensors: reading and writing Hugging Face's tensor file format.
//
// A file is an 8-byte little-endian header length N, N bytes of JSON mapping each tensor name to
// {dtype, shape, data_offsets: [begin, end]} (plus an optional "__metadata__" of strings), then
// the data. The header is untrusted input: its length is bounded, every dtype, shape and offset
// range is checked against the file, and the tensors must cover the data exactly, with no overlap
// and no gap. Any violation is a DiagnosticError naming the file, the tensor and what is wrong.
//
// Reading memory-maps the file; tensor() returns a tensor viewing the mapping, with no copy until
// it is written to or converted (the mapping is private, so writes never reach the file).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <torch/types.h>

#include <alignkit/safetensors_header.hpp>

namespace alignkit::safetensors {

class File {
 public:
  // Maps the file and checks its header. Throws DiagnosticError.
  static File open(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }
  const Header& header() const { return header_; }
  const TensorInfo* find(std::string_view name) const;
  // A CPU tensor viewing the mapping (copied only when the data is misaligned for its type).
  // The tensor keeps the mapping alive. Throws DiagnosticError for an unknown name or a dtype
  // this LibTorch lacks.
  torch::Tensor tensor(std::string_view name) const;

 private:
  struct Mapping;
  std::filesystem::path path_;
  std::shared_ptr<const Mapping> mapping_;
  Header header_;
};

torch::ScalarType to_scalar_type(DType dtype);

// Writes tensors (made contiguous, moved to the CPU) in file order, with 8-byte aligned data,
// atomically: a temporary file beside `path`, fsync, rename. Throws DiagnosticError.
void save(const std::filesystem::path& path,
          const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
          const std::map<std::string, std::string>& metadata = {});

}  // namespace alignkit::safetensors
