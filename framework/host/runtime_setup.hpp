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

}  // namespace alignkit
