// jemalloc's options for the executables that link it (alignkit_allocator in framework/CMakeLists.txt).
//
// jemalloc reads them from this symbol at its first allocation; MALLOC_CONF still overrides them.
// Freed pages are kept for reuse rather than purged after a decay time: a training step frees and
// reallocates the same activation sizes every step, and every purged page faults again when
// touched (with glibc, ~150,000 faults per tiny DPO step, most of its time: docs/performance.md).
// A run's resident memory then stays at its peak, which it needed anyway; the planner's
// allocator margin covers what the kept pages add (docs/memory-planner.md).
extern "C" {
const char* malloc_conf = "dirty_decay_ms:-1,muzzy_decay_ms:-1";
}
