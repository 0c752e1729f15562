// The default state()/load_state() of plugin objects that may carry state between steps (Loss,
// OnlineMethod): none, and a checkpoint that holds some is refused by name.
#pragma once

#include <map>
#include <string>

#include <fmt/format.h>

#include <alignkit/diagnostic.hpp>

#include <torch/types.h>

namespace alignkit::detail {

inline void refuse_unexpected_state(const std::map<std::string, torch::Tensor>& state, const char* what) {
  if (!state.empty())
    throw DiagnosticError(make_error(fmt::format("this {} keeps no state between steps, but a checkpoint holds '{}'",
                                                 what, state.begin()->first)));
}

}  // namespace alignkit::detail
