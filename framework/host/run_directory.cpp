#include "run_directory.hpp"

#include <fmt/format.h>

#include <alignkit/atomic_file.hpp>
#include "recipe_render.hpp"

namespace alignkit {

namespace fs = std::filesystem;

fs::path run_directory(const ValidatedRecipe& recipe, const fs::path& override_dir) {
  if (!override_dir.empty()) return override_dir;
  const RecipeSection run = recipe.section("run");
  if (run.has("output_dir")) return run.get_path("output_dir");
  return fs::path("runs") / run.get_string("name");
}

void prepare_run_directory(const fs::path& dir, const ValidatedRecipe& recipe, const std::string& effective) {
  std::error_code ec;
  const fs::path target = dir / "recipe.toml";
  for (const auto& file : recipe.tree.files)
    if (fs::exists(target, ec) && fs::equivalent(target, file, ec))
      throw DiagnosticError(make_error(
          fmt::format("{}: the run would write its effective recipe over {}, which this run reads", dir.string(),
                      file.string()),
          "choose another folder with --output or [run] output_dir"));
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw DiagnosticError(make_error(fmt::format("{}: cannot create the run's output folder: {}", dir.string(),
                                                 ec ? ec.message() : "a file of that name exists"),
                                     "choose another folder with --output or [run] output_dir"));
  write_file_atomically(dir / "recipe.toml", effective.empty() ? render_effective_recipe(recipe) : effective);
}

}  // namespace alignkit
