#include <alignkit/loss.hpp>

#include "plugin_state.hpp"

namespace alignkit {

Loss::~Loss() = default;
std::vector<MetricSpec> Loss::metrics() const { return {}; }
std::map<std::string, torch::Tensor> Loss::state() const { return {}; }
void Loss::load_state(const std::map<std::string, torch::Tensor>& state) { detail::refuse_unexpected_state(state, "loss"); }

}  // namespace alignkit
