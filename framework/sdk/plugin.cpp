// The plugin ABI's own definitions. Each interface's out-of-line members live beside it
// (loss.cpp, scheduler.cpp, ...): defining a destructor in the SDK library gives the interface
// one type_info, shared by the host and every plugin.
#include <alignkit/plugin.hpp>

#include <alignkit/options.hpp>

namespace alignkit {

PluginObject::~PluginObject() = default;

const char* to_string(PluginKind kind) {
  switch (kind) {
    case PluginKind::scheduler: return "scheduler";
    case PluginKind::loss: return "loss";
    case PluginKind::dataset: return "dataset";
    case PluginKind::model_loader: return "model_loader";
    case PluginKind::judge: return "judge";
    case PluginKind::online_method: return "online_method";
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
