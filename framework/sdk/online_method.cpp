#include <alignkit/online_method.hpp>

#include "plugin_state.hpp"

namespace alignkit {

OnlineMethod::~OnlineMethod() = default;
std::vector<MetricSpec> OnlineMethod::metrics() const { return {}; }
std::map<std::string, torch::Tensor> OnlineMethod::state() const { return {}; }
void OnlineMethod::load_state(const std::map<std::string, torch::Tensor>& state) {
  detail::refuse_unexpected_state(state, "online method");
}

}  // namespace alignkit
