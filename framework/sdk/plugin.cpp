// Out-of-line members of the plugin-facing interfaces: defining the destructors here gives each
// interface one type_info, in the SDK library, shared by the host and every plugin.
#include <fmt/format.h>

#include <alignkit/dataset.hpp>
#include <alignkit/diagnostic.hpp>
#include <alignkit/judge.hpp>
#include <alignkit/loss.hpp>
#include <alignkit/model_loader.hpp>
#include <alignkit/plugin.hpp>
#include <alignkit/scheduler.hpp>

namespace alignkit {

PluginObject::~PluginObject() = default;
Scheduler::~Scheduler() = default;
Loss::~Loss() = default;

std::map<std::string, torch::Tensor> Loss::state() const { return {}; }

void Loss::load_state(const std::map<std::string, torch::Tensor>& state) {
  if (!state.empty())
    throw DiagnosticError(make_error(fmt::format("this loss keeps no state between steps, but a checkpoint holds '{}'",
                                                 state.begin()->first)));
}
Dataset::~Dataset() = default;
ExampleSink::~ExampleSink() = default;
ModelLoader::~ModelLoader() = default;
Judge::~Judge() = default;
CausalLM::~CausalLM() = default;

torch::Tensor CausalLM::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                const torch::Tensor& position_ids) {
  return torch::matmul(hidden_states(input_ids, attention_mask, position_ids), output_weight().t());
}

void Scheduler::check(const ScheduleShape&) const {}

const char* to_string(PluginKind kind) {
  switch (kind) {
    case PluginKind::scheduler: return "scheduler";
    case PluginKind::loss: return "loss";
    case PluginKind::dataset: return "dataset";
    case PluginKind::model_loader: return "model_loader";
    case PluginKind::judge: return "judge";
  }
  return nullptr;
}

const char* to_string(OptionType type) {
  switch (type) {
    case OptionType::boolean: return "boolean";
    case OptionType::integer: return "integer";
    case OptionType::floating: return "float";
    case OptionType::string: return "string";
    case OptionType::path: return "path";
    case OptionType::float_list: return "list of floats";
    case OptionType::int_list: return "list of integers";
    case OptionType::string_list: return "list of strings";
    case OptionType::path_list: return "list of paths";
  }
  return nullptr;
}

}  // namespace alignkit
