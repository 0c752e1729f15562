// Process-wide set-up the host does so users tune nothing: CPU threads, allocator behaviour, and
// a check that LibTorch is not running on the reference BLAS.
#pragma once

#include <optional>
#include <string>

namespace alignkit {

struct BlasInfo {
  std::string library;       // path of the loaded libblas, empty if LibTorch does not use one
  std::string implementation;  // "OpenBLAS", "BLIS", "reference BLAS", ...
  bool slow = false;           // the netlib reference BLAS: ~30x slower matrix products
};

// Which BLAS the process uses for LibTorch's matrix products.
BlasInfo detect_blas();

// The warning to print for a slow BLAS, naming the fix; empty when the BLAS is fine.
std::string blas_warning(const BlasInfo& blas);

// CPUs this process may run on (its affinity mask), at least 1.
int available_cpus();

// Sets LibTorch's intra-op threads (0: available_cpus()) and keeps freed memory in the heap
// instead of returning it to the kernel between steps. Returns the thread count in use.
int configure_runtime(int threads);

// The allocator answering malloc in this process ("jemalloc 5.3.0-..." or "glibc malloc").
std::string allocator_description();

// How long libgomp's idle workers spin before sleeping (GOMP_SPINCOUNT, in spins). libgomp's
// default, 300000, keeps a tiny model's thousands of small parallel regions cheap on a quiet
// machine but makes each wait for a descheduled worker when other processes share the CPUs (a
// 60x slowdown measured); passive waiting (0) costs 25% quiet. 10000 matched the default quiet
// and passive waiting under load (docs/performance.md, "What changed the numbers").
inline constexpr const char* kOpenMpSpinCount = "10000";

// Restarts the process (execv of /proc/self/exe with the same arguments) with GOMP_SPINCOUNT set
// to kOpenMpSpinCount, unless the environment already chooses a wait policy or spin count.
// libgomp reads both once, when it is loaded, before main. Returns only when no restart happens
// (already set, or exec failed).
void restart_with_bounded_openmp_spinning(char** argv);

}  // namespace alignkit
