// The host's part of the recipe: its sections, their keys, and which sections select a plugin.
//
// A plugin-backed section ([scheduler], [method], [model], [data], [judge]) holds the host's
// keys (the plugin selector and what the host itself uses, such as warmup) plus the selected
// plugin's own declared keys. Host and plugin keys are validated by the same rules and documented
// by the same generator.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <alignkit/options.hpp>
#include <alignkit/plugin.hpp>

namespace alignkit {

struct SectionSchema {
  const char* name;
  const char* doc;
  std::vector<OptionSpec> host_options;
  // Not empty: the section selects a plugin of one of these kinds ([method]: a loss or an
  // online method), which `plugin_noun` names in messages ("method", "scheduler", ...).
  std::vector<PluginKind> plugin_kinds;
  const char* selector_key = nullptr;  // the host key naming that plugin
  bool implicit = true;  // present with its defaults when the recipe omits it
  const char* plugin_noun = nullptr;   // default: the kind's name

  bool selects_plugin() const { return !plugin_kinds.empty(); }
  std::string noun() const { return plugin_noun ? plugin_noun : to_string(plugin_kinds.at(0)); }
};

const std::vector<SectionSchema>& host_sections();
const SectionSchema* find_section(std::string_view name);
// The section a plugin kind's options live in, e.g. scheduler -> [scheduler], loss and
// online_method -> [method].
const SectionSchema* section_for_kind(PluginKind kind);

}  // namespace alignkit
