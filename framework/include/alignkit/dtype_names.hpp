// The names of the dtypes models compute and store weights in, spelt as recipes ([training] and
// [reference] precision), the command line (--dtype) and Hugging Face's config.json (torch_dtype)
// spell them: one table, read both ways.
#pragma once

#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <torch/types.h>

namespace alignkit {

struct DtypeName {
  std::string_view name;
  torch::ScalarType dtype;
};

inline constexpr std::array<DtypeName, 3> kDtypeNames{
    {{"float32", torch::kFloat32}, {"bfloat16", torch::kBFloat16}, {"float16", torch::kFloat16}}};

// The dtype called `name` ("bfloat16" -> torch::kBFloat16), or nullopt for a name not in the table.
inline std::optional<torch::ScalarType> dtype_from_name(std::string_view name) {
  for (const auto& entry : kDtypeNames)
    if (entry.name == name) return entry.dtype;
  return std::nullopt;
}

// The name of `dtype` (torch::kFloat16 -> "float16"); throws std::invalid_argument for a dtype not
// in the table.
inline std::string_view dtype_name(torch::ScalarType dtype) {
  for (const auto& entry : kDtypeNames)
    if (entry.dtype == dtype) return entry.name;
  throw std::invalid_argument(std::string("no name for dtype ") + c10::toString(dtype) +
                              "; models are float32, bfloat16 or float16");
}

}  // namespace alignkit
