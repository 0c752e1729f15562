// The safetensors header parser: pure checks on untrusted bytes, no LibTorch (the fuzzer links
// this file alone).
#include <alignkit/safetensors_header.hpp>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace alignkit::safetensors {

namespace {

struct DTypeEntry {
  DType dtype;
  std::string_view name;
  std::size_t size;
};

constexpr std::array<DTypeEntry, 15> kDTypes = {{
    {DType::BOOL, "BOOL", 1},   {DType::U8, "U8", 1},     {DType::I8, "I8", 1},
    {DType::F8_E5M2, "F8_E5M2", 1}, {DType::F8_E4M3, "F8_E4M3", 1}, {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},     {DType::F16, "F16", 2},   {DType::BF16, "BF16", 2},
    {DType::I32, "I32", 4},     {DType::U32, "U32", 4},   {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},     {DType::I64, "I64", 8},   {DType::U64, "U64", 8},
}};

[[noreturn]] void fail(const std::string& file, std::string message, std::string help = {}) {
  Diagnostic d;
  d.where = SourceLocation{file, 0, 0};
  d.message = fmt::format("not a valid safetensors file: {}", message);
  d.help = std::move(help);
  throw DiagnosticError(std::move(d));
}

const DTypeEntry* find_dtype(std::string_view name) {
  for (const auto& e : kDTypes)
    if (e.name == name) return &e;
  return nullptr;
}

std::uint64_t read_u64_le(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint64_t>(p[i]);
  return v;
}

}  // namespace

std::string_view to_string(DType dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.name;
  return "?";
}

std::size_t element_size(DType dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e.size;
  return 0;
}

Header parse_header(std::span<const std::byte> file, const std::string& name) {
  if (file.size() < 8)
    fail(name, fmt::format("the file is {} bytes, shorter than the 8-byte header length", file.size()));
  const std::uint64_t header_size = read_u64_le(file.data());
  if (header_size > kMaxHeaderBytes)
    fail(name, fmt::format("header length {} exceeds the limit of {} bytes", header_size, kMaxHeaderBytes),
         "the file is corrupt or not safetensors");
  if (header_size > file.size() - 8)
    fail(name, fmt::format("header length {} runs past the end of the {}-byte file", header_size, file.size()),
         "the file is truncated or not safetensors");

  const auto* text = reinterpret_cast<const char*>(file.data() + 8);
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text, text + header_size);
  } catch (const nlohmann::json::parse_error& e) {
    fail(name, fmt::format("the header is not JSON (at header byte {}): {}", e.byte, e.what()));
  } catch (const nlohmann::json::exception& e) {  // e.g. a number out of range (found by the fuzzer)
    fail(name, fmt::format("the header is not usable JSON: {}", e.what()));
  }
  if (!json.is_object()) fail(name, "the header is not a JSON object");

  Header header;
  header.data_offset = 8 + header_size;
  const std::uint64_t data_size = file.size() - header.data_offset;
  for (auto item = json.begin(); item != json.end(); ++item) {
    // Not a structured binding: clang 14, which builds the fuzzer, cannot capture one in a lambda.
    const std::string key = item.key();
    const nlohmann::json& value = item.value();
    if (key == "__metadata__") {
      if (!value.is_object()) fail(name, "__metadata__ is not an object of strings");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail(name, fmt::format("__metadata__ value of '{}' is not a string", mk));
        header.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    auto bad = [&](std::string what) { fail(name, fmt::format("tensor '{}': {}", key, what)); };
    if (!value.is_object()) bad("its entry is not an object");
    const auto dtype = value.find("dtype");
    const auto shape = value.find("shape");
    const auto offsets = value.find("data_offsets");
    if (dtype == value.end() || shape == value.end() || offsets == value.end())
      bad("needs dtype, shape and data_offsets");
    if (value.size() != 3) bad("has keys other than dtype, shape and data_offsets");
    if (!dtype->is_string()) bad("dtype is not a string");
    const DTypeEntry* entry = find_dtype(dtype->get<std::string>());
    if (!entry) bad(fmt::format("unknown dtype '{}'", dtype->get<std::string>()));

    TensorInfo info;
    info.name = key;
    info.dtype = entry->dtype;
    if (!shape->is_array()) bad("shape is not a list");
    std::uint64_t elements = 1;
    for (const auto& dim : *shape) {
      if (!dim.is_number_unsigned()) bad("shape has an entry that is not a non-negative integer");
      const std::uint64_t d = dim.get<std::uint64_t>();
      if (d > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) ||
          (d != 0 && elements > std::numeric_limits<std::uint64_t>::max() / d))
        bad("shape overflows");
      elements *= d;
      info.shape.push_back(static_cast<std::int64_t>(d));
    }
    if (elements > std::numeric_limits<std::uint64_t>::max() / entry->size) bad("shape overflows");
    if (!offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
        !(*offsets)[1].is_number_unsigned())
      bad("data_offsets is not a pair of non-negative integers");
    info.begin = (*offsets)[0].get<std::uint64_t>();
    info.end = (*offsets)[1].get<std::uint64_t>();
    if (info.begin > info.end) bad(fmt::format("data_offsets [{}, {}] end before they begin", info.begin, info.end));
    if (info.end > data_size)
      bad(fmt::format("data_offsets [{}, {}] run past the {}-byte data section", info.begin, info.end, data_size));
    if (info.end - info.begin != elements * entry->size)
      bad(fmt::format("{} bytes at data_offsets [{}, {}], but shape {} of {} needs {}", info.end - info.begin,
                      info.begin, info.end, shape->dump(), entry->name, elements * entry->size));
    header.tensors.push_back(std::move(info));
  }

  // The data section must be covered exactly: sorted by offset, each tensor starts where the
  // previous ended, and the last ends at the end of the file.
  std::sort(header.tensors.begin(), header.tensors.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return std::tie(a.begin, a.end) < std::tie(b.begin, b.end); });
  std::uint64_t expected = 0;
  for (const auto& t : header.tensors) {
    if (t.begin < expected)
      fail(name, fmt::format("tensor '{}' at [{}, {}] overlaps the tensor before it, which ends at {}", t.name,
                             t.begin, t.end, expected));
    if (t.begin > expected)
      fail(name, fmt::format("{} bytes of the data section before tensor '{}' belong to no tensor",
                             t.begin - expected, t.name));
    expected = t.end;
  }
  if (expected != data_size)
    fail(name, fmt::format("the data section is {} bytes but its tensors cover {}", data_size, expected),
         expected < data_size ? "the file has trailing bytes" : "");
  return header;
}

}  // namespace alignkit::safetensors
