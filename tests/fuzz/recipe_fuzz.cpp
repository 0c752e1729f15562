// libFuzzer target for recipes: the input is a recipe TOML, then (optionally) a NUL byte and
// --set overrides, one per line. Loading the recipe, applying the overrides and deriving each
// [[stage]]'s tree either succeed or are refused with a DiagnosticError; nothing else.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <alignkit/diagnostic.hpp>

#include "host/recipe_loader.hpp"

namespace {

const std::filesystem::path& recipe_file() {
  static const auto path = [] {
    auto dir = std::filesystem::temp_directory_path() / ("alignkit-recipe-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    return dir / "recipe.toml";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto cut = input.find('\0');
  std::vector<std::string> overrides;
  if (cut != std::string_view::npos) {
    std::string_view rest = input.substr(cut + 1);
    while (!rest.empty()) {
      const auto end = rest.find('\n');
      overrides.emplace_back(rest.substr(0, end));
      rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    }
  }
  {
    std::ofstream out(recipe_file(), std::ios::binary | std::ios::trunc);
    const auto recipe = input.substr(0, cut);
    out.write(recipe.data(), static_cast<std::streamsize>(recipe.size()));
  }
  try {
    const auto tree = alignkit::load_recipe(recipe_file(), overrides);
    for (std::size_t i = 0; i < tree.stages.size(); ++i) {
      (void)alignkit::stage_name(tree, i);
      (void)alignkit::stage_tree(tree, i);
    }
  } catch (const alignkit::DiagnosticError&) {
  }
  return 0;
}
