#include "runtime_setup.hpp"

#include <dlfcn.h>
#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>

#include <filesystem>

#include <ATen/Parallel.h>
#include <fmt/format.h>

namespace alignkit {

BlasInfo detect_blas() {
  BlasInfo info;
  // Ask the dynamic linker which library answers LibTorch's calls to sgemm_: several BLAS
  // libraries may be loaded (Debian's LibTorch pulls OpenBLAS in for LAPACK even when libblas.so.3
  // is the reference BLAS), and only the first in the global scope matters.
  void* gemm = dlsym(RTLD_DEFAULT, "sgemm_");
  Dl_info where{};
  if (!gemm || !dladdr(gemm, &where) || !where.dli_fname) return info;  // e.g. MKL linked in statically
  info.library = where.dli_fname;
  std::error_code ec;
  const auto real = std::filesystem::canonical(info.library, ec);
  if (!ec) info.library = real.string();
  void* handle = dlopen(where.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
  auto exports = [&](const char* symbol) { return handle && dlsym(handle, symbol); };
  // Each optimised BLAS exports a symbol of its own; the reference BLAS exports none of them.
  if (exports("openblas_get_config")) info.implementation = "OpenBLAS";
  else if (exports("bli_info_get_version_str")) info.implementation = "BLIS";
  else if (exports("mkl_get_version")) info.implementation = "MKL";
  else if (exports("ATL_buildinfo")) info.implementation = "ATLAS";
  else {
    info.implementation = "reference BLAS";
    info.slow = true;
  }
  if (handle) dlclose(handle);
  return info;
}

std::string blas_warning(const BlasInfo& blas) {
  if (!blas.slow) return {};
  return fmt::format(
      "warning: LibTorch is using the reference BLAS ({}); matrix products run ~30x slower than "
      "with OpenBLAS\nhelp: install OpenBLAS, which Debian then selects for libblas.so.3: "
      "apt-get install libopenblas0-openmp\n",
      blas.library);
}

int available_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return 1;
}

namespace {

// jemalloc's control entry point, present only where jemalloc is loaded; linked into the binary,
// jemalloc answers malloc for the whole process, LibTorch included.
using Mallctl = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
Mallctl jemalloc_mallctl() { return reinterpret_cast<Mallctl>(dlsym(RTLD_DEFAULT, "mallctl")); }

}  // namespace

std::string allocator_description() {
  const auto mallctl = jemalloc_mallctl();
  if (!mallctl) return "glibc malloc";
  const char* version = nullptr;
  std::size_t size = sizeof(version);
  if (mallctl("version", &version, &size, nullptr, 0) == 0 && version) return fmt::format("jemalloc {}", version);
  return "jemalloc";
}

int configure_runtime(int threads) {
  if (!jemalloc_mallctl()) {
    // Without jemalloc (a build that did not find it): blocks of 256 KiB and more (every
    // activation of a real model) are mapped afresh and returned on free, at a fixed threshold
    // (mallopt turns glibc's adaptive one off). Served from the heap instead, a layer's large
    // transients were split by the small tensors kept after them, and each layer grew the heap by
    // about their size: peak RSS was up to twice the live tensors (docs/memory-planner.md,
    // "Calibration on CPU"). The price is a page fault for every page of every activation, every
    // step (docs/performance.md), which jemalloc avoids.
    mallopt(M_MMAP_THRESHOLD, 256 << 10);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);  // keep up to 1 GiB of freed heap instead of trimming it
  }
  const int n = threads > 0 ? threads : available_cpus();
  at::set_num_threads(n);  // Debian's LibTorch defaults to one intra-op thread
  return n;
}

void restart_with_bounded_openmp_spinning(char** argv) {
  // The user's own choice (either variable) stands; once set, the restarted process sees it and
  // goes on, so this restarts at most once.
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  if (setenv("GOMP_SPINCOUNT", kOpenMpSpinCount, 1) != 0) return;
  execv("/proc/self/exe", argv);
  // No /proc (or no exec rights): run on with libgomp's default spinning, as before.
}

}  // namespace alignkit
