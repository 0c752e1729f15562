// The command line of one alignkit subcommand: its options, --help, and for recipe commands the
// recipe file (positional) and --set overrides.
#pragma once

#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include "commands.hpp"

namespace alignkit::cli {

namespace po = boost::program_options;

// A wrong command line: reported with exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};


class CommandLine {
 public:
  // optional_recipe: the recipe may come from elsewhere (train --resume takes the run's own).
  enum Recipe { no_recipe, takes_recipe, optional_recipe };

  CommandLine(std::string usage, Recipe recipe) : usage_(std::move(usage)), options_("options") {
    if (recipe != no_recipe) {
      auto* value = po::value<std::string>();
      if (recipe == takes_recipe) value->required();
      options_.add_options()("recipe", value, "Recipe file (TOML)")(
          "set", po::value<Args>()->composing(),
          "Override a recipe key: --set section.key=value (repeatable; validated like the recipe)");
      positional_.add("recipe", 1);
    }
    options_.add_options()("help,h", "Show this help");
  }

  po::options_description_easy_init add() { return options_.add_options(); }

  // Parses `args`; returns false after printing the help when --help was given.
  bool parse(const Args& args) {
    po::store(po::command_line_parser(args).options(options_).positional(positional_).run(), vm_);
    if (vm_.count("help")) {
      std::cout << "usage: " << usage_ << "\n\n" << options_ << "\n";
      return false;
    }
    po::notify(vm_);
    return true;
  }

  bool has(const char* name) const { return vm_.count(name) > 0; }
  template <typename T>
  T get(const char* name) const { return vm_[name].as<T>(); }
  std::string recipe() const { return get<std::string>("recipe"); }
  Args sets() const { return has("set") ? get<Args>("set") : Args{}; }

 private:
  std::string usage_;
  po::options_description options_;
  po::positional_options_description positional_;
  po::variables_map vm_;
};

}  // namespace alignkit::cli
