#include <alignkit/torch_compat.hpp>

#include <dlfcn.h>

#include <cstddef>

#include <torch/cuda.h>

namespace alignkit::compat {

bool cuda_available() { return torch::cuda::is_available(); }

std::optional<CudaMemory> cuda_memory(int index) {
  if (!cuda_available() || index < 0 || static_cast<std::size_t>(index) >= torch::cuda::device_count()) return std::nullopt;
  // The driver API's own names (cuda.h), resolved at run time; CUresult 0 is CUDA_SUCCESS.
  void* driver = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!driver) return std::nullopt;
  using Init = int (*)(unsigned);
  using DeviceGet = int (*)(int*, int);
  using Retain = int (*)(void**, int);
  using Release = int (*)(int);
  using Push = int (*)(void*);
  using Pop = int (*)(void**);
  using MemGetInfo = int (*)(std::size_t*, std::size_t*);
  const auto init = reinterpret_cast<Init>(dlsym(driver, "cuInit"));
  const auto device_get = reinterpret_cast<DeviceGet>(dlsym(driver, "cuDeviceGet"));
  const auto retain = reinterpret_cast<Retain>(dlsym(driver, "cuDevicePrimaryCtxRetain"));
  const auto release = reinterpret_cast<Release>(dlsym(driver, "cuDevicePrimaryCtxRelease_v2"));
  const auto push = reinterpret_cast<Push>(dlsym(driver, "cuCtxPushCurrent_v2"));
  const auto pop = reinterpret_cast<Pop>(dlsym(driver, "cuCtxPopCurrent_v2"));
  const auto mem_get_info = reinterpret_cast<MemGetInfo>(dlsym(driver, "cuMemGetInfo_v2"));
  std::optional<CudaMemory> result;
  int device = 0;
  void* context = nullptr;
  if (init && device_get && retain && release && push && pop && mem_get_info && init(0) == 0 &&
      device_get(&device, index) == 0 && retain(&context, device) == 0) {
    if (push(context) == 0) {
      std::size_t free = 0, total = 0;
      if (mem_get_info(&free, &total) == 0)
        result = CudaMemory{static_cast<std::int64_t>(free), static_cast<std::int64_t>(total)};
      void* popped = nullptr;
      pop(&popped);
    }
    release(device);
  }
  dlclose(driver);
  return result;
}

}  // namespace alignkit::compat

#ifdef ALIGNKIT_TORCH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace alignkit::compat {

std::optional<std::int64_t> cuda_peak_reserved_bytes(int index) {
#ifdef ALIGNKIT_TORCH_CUDA
  if (!cuda_available() || index < 0 || static_cast<std::size_t>(index) >= torch::cuda::device_count()) return std::nullopt;
  try {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(static_cast<c10::DeviceIndex>(index));
    // Entry 0 is StatType::AGGREGATE (all pools) in every release; the enum itself moved namespace.
    return static_cast<std::int64_t>(stats.reserved_bytes[0].peak);
  } catch (const c10::Error&) {  // the allocator was never initialised on that device
    return std::nullopt;
  }
#else
  (void)index;
  return std::nullopt;
#endif
}

}  // namespace alignkit::compat
