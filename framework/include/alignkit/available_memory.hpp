// The memory there is for new tensors, so that work which cannot fit is refused before it starts
// with both figures, instead of failing in LibTorch's allocator half-way.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace alignkit {

// MemAvailable from /proc/meminfo, in bytes: what the kernel estimates can be allocated without
// swapping. nullopt where it cannot be read (not Linux, no /proc).
std::optional<std::int64_t> cpu_available_bytes();

// Throws DiagnosticError located at `file` when `needed` bytes, for `what` (e.g. "building the
// model's 8.0e9 float32 parameters"), exceed cpu_available_bytes(); does nothing where that is unknown.
void require_cpu_memory(std::int64_t needed, const std::string& what, const std::string& file);

}  // namespace alignkit
