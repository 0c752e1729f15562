// safetensors: memory-mapped reading and atomic writing (the header checks are in
// safetensors_header.cpp).
#include <alignkit/safetensors.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/atomic_file.hpp>

namespace alignkit::safetensors {

namespace fs = std::filesystem;

namespace {

// Errors about a whole file (alignkit/diagnostic.hpp).
[[noreturn]] void fail(const fs::path& file, std::string message, std::string help = {}) {
  throw_file_error(file.string(), std::move(message), std::move(help));
}

}  // namespace

struct File::Mapping {
  void* address = nullptr;
  std::size_t size = 0;
  ~Mapping() {
    if (address && address != MAP_FAILED) munmap(address, size);
  }
};

torch::ScalarType to_scalar_type(DType dtype) {
  switch (dtype) {
    case DType::BOOL: return torch::kBool;
    case DType::U8: return torch::kUInt8;
    case DType::I8: return torch::kInt8;
    case DType::I16: return torch::kInt16;
    case DType::F16: return torch::kFloat16;
    case DType::BF16: return torch::kBFloat16;
    case DType::I32: return torch::kInt32;
    case DType::F32: return torch::kFloat32;
    case DType::F64: return torch::kFloat64;
    case DType::I64: return torch::kInt64;
    default: return torch::ScalarType::Undefined;  // F8 and unsigned 16-64: not in every LibTorch
  }
}

namespace {

std::optional<DType> from_scalar_type(torch::ScalarType type) {
  for (DType d : {DType::BOOL, DType::U8, DType::I8, DType::I16, DType::F16, DType::BF16, DType::I32,
                  DType::F32, DType::F64, DType::I64})
    if (to_scalar_type(d) == type) return d;
  return std::nullopt;
}

}  // namespace

File File::open(const fs::path& path) {
  File file;
  file.path_ = path;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, fmt::format("cannot open: {}", std::strerror(errno)));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, "not a regular file");
  }
  auto mapping = std::make_shared<Mapping>();
  mapping->size = static_cast<std::size_t>(st.st_size);
  if (mapping->size > 0) {
    // Private and writable: tensors may be modified in place without touching the file.
    mapping->address = ::mmap(nullptr, mapping->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (mapping->address == MAP_FAILED) {
      const int error = errno;
      ::close(fd);
      fail(path, fmt::format("cannot map: {}", std::strerror(error)));
    }
  }
  ::close(fd);
  file.header_ = parse_header(
      std::span<const std::byte>(static_cast<const std::byte*>(mapping->address), mapping->size), path.string());
  file.mapping_ = std::move(mapping);
  return file;
}

const TensorInfo* File::find(std::string_view name) const {
  for (const auto& t : header_.tensors)
    if (t.name == name) return &t;
  return nullptr;
}

torch::Tensor File::tensor(std::string_view name) const {
  const TensorInfo* info = find(name);
  if (!info) fail(path_, fmt::format("has no tensor '{}'", name));
  const auto type = to_scalar_type(info->dtype);
  if (type == torch::ScalarType::Undefined)
    fail(path_, fmt::format("tensor '{}' has dtype {}, which this LibTorch cannot hold", name, to_string(info->dtype)));
  auto* data = static_cast<std::byte*>(mapping_->address) + header_.data_offset + info->begin;
  const auto options = torch::TensorOptions().dtype(type);
  if (info->begin == info->end) return torch::empty(info->shape, options);
  if (reinterpret_cast<std::uintptr_t>(data) % element_size(info->dtype) != 0)
    return torch::from_blob(data, info->shape, options).clone();  // misaligned: copy once
  auto keep = mapping_;
  return torch::from_blob(data, info->shape, [keep](void*) {}, options);
}

void save(const fs::path& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
          const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const auto dtype = from_scalar_type(tensor.scalar_type());
    if (!dtype) fail(path, fmt::format("tensor '{}': dtype {} has no safetensors equivalent", name,
                                       c10::toString(tensor.scalar_type())));
    if (header.contains(name)) fail(path, fmt::format("tensor '{}' is given twice", name));
    auto contiguous = tensor.detach().to(torch::kCPU).contiguous();
    const std::uint64_t bytes = static_cast<std::uint64_t>(contiguous.numel()) * contiguous.element_size();
    header[name] = {{"dtype", std::string(to_string(*dtype))},
                    {"shape", contiguous.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    data.push_back(std::move(contiguous));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned, as the reference writer does

  AtomicFile out(path);
  std::array<unsigned char, 8> length{};
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>((text.size() >> (8 * i)) & 0xff);
  out.write(length.data(), length.size());
  out.write(text);
  for (const auto& t : data) out.write(t.data_ptr(), static_cast<std::size_t>(t.numel()) * t.element_size());
  out.commit();
}

}  // namespace alignkit::safetensors
