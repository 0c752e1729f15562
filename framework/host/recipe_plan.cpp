#include "recipe_plan.hpp"

#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/atomic_file.hpp>
#include <alignkit/online_method.hpp>
#include <alignkit/torch_compat.hpp>

namespace alignkit {

namespace fs = std::filesystem;

MethodNeeds method_needs(const ValidatedRecipe& recipe) {
  const auto* plugin = recipe.plugins.at("method");
  if (auto online = recipe.object<OnlineMethod>("method"))
    return call_plugin(*plugin, "to declare its spec", [&] { return online->spec(); });
  auto loss = recipe.object<Loss>("method");
  return call_plugin(*plugin, "to declare its requirements", [&] { return loss->requirements(); });
}

MemoryPlan plan_recipe(const ValidatedRecipe& recipe, const MemoryBudget& budget, const fs::path& model_dir) {
  const auto* model_plugin = recipe.plugins.at("model");
  auto loader = recipe.object<ModelLoader>("model");
  const auto model = call_plugin(*model_plugin, "to describe the model", [&] { return loader->describe(model_dir); });
  const auto* loss_plugin = recipe.plugins.at("method");
  const auto needs = method_needs(recipe);
  auto settings = settings_from_recipe(recipe);
  // The further models an online method declares, described by the same loader (nothing loaded).
  auto describe_online = [&](const char* section_name, const char* what, const char* doing, bool declared,
                             bool declared_trained, PlanOnlineModel& online, const std::optional<fs::path>& fallback_path) {
    if (!declared) return;
    const auto method = recipe.section("method");
    if (!recipe.has_section(section_name) && !fallback_path && !online.share_base)
      throw RecipeInvalid({method.error("name", fmt::format("'{}' needs a {} model", loss_plugin->name, what),
                                        fmt::format("add a [{}] section with its path (or share_base = true)", section_name))},
                          false);
    // Where the settings came from: the model's own section, or the reward model's it inherits.
    const auto from = recipe.section(recipe.has_section(section_name) ? section_name : "reward_model");
    if (online.share_base && !settings.lora)
      throw RecipeInvalid({from.error("share_base", "share_base puts an adapter on the policy's base, which needs [lora]",
                                      "add a [lora] section, or give the model its own path")},
                          false);
    if (declared_trained && online.quantization != BaseQuantization::none && !settings.lora)
      throw RecipeInvalid({from.error("quantization", fmt::format("a quantized {} model trains through adapters, which needs [lora]", what),
                                      "add a [lora] section, or set quantization = \"none\"")},
                          false);
    if (online.share_base) return;
    std::optional<fs::path> path = fallback_path;
    if (recipe.has_section(section_name) && recipe.section(section_name).has("path")) path = recipe.section(section_name).get_path("path");
    if (!path) throw RecipeInvalid({from.error("path", "a model directory is needed unless share_base = true")}, false);
    online.model = call_plugin(*model_plugin, doing, [&] { return loader->describe(*path); });
  };
  std::optional<fs::path> reward_path;
  if (recipe.has_section("reward_model") && recipe.section("reward_model").has("path"))
    reward_path = recipe.section("reward_model").get_path("path");
  describe_online("reward_model", "reward", "to describe the reward model", needs.online && needs.online->reward_model, false,
                  settings.reward_model, std::nullopt);
  describe_online("value_model", "value", "to describe the value model", needs.online && needs.online->value_model, true,
                  settings.value_model, reward_path);
  return plan_memory(model, needs, settings, budget);
}

void report_cuda_memory(const MemoryPlan& plan, const fs::path& dir, int device) {
  const auto reserved = compat::cuda_peak_reserved_bytes(device);
  if (!reserved || *reserved <= 0) return;
  std::int64_t margin = 0, context = 0;
  for (const auto& c : plan.components) {
    if (c.name == kAllocatorMarginComponent) margin += c.bytes;
    if (c.name == "CUDA context") context += c.bytes;
  }
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  const std::int64_t comparable = plan.peak - context;
  std::cerr << fmt::format("memory: CUDA peak reserved {:.2f} GiB; planned {:.2f} GiB without the context ({:+.1f}%)\n",
                           static_cast<double>(*reserved) / kGiB, static_cast<double>(comparable) / kGiB,
                           100.0 * static_cast<double>(comparable - *reserved) / static_cast<double>(*reserved));
  const nlohmann::json check = {{"schema", "alignkit.memory-check/1"},
                                {"device", fmt::format("cuda:{}", device)},
                                {"planned_peak_bytes", plan.peak},
                                {"planned_allocator_margin_bytes", margin},
                                {"planned_cuda_context_bytes", context},
                                {"planned_peak_phase", phase_name(plan.peak_phase)},
                                {"measured_peak_bytes", *reserved},
                                {"measured_by", "CUDA caching allocator: peak reserved bytes (torch.cuda.max_memory_reserved)"}};
  write_file_atomically(dir / "memory.json", check.dump(2) + "\n");
}

void report_cpu_memory(const MemoryPlan& plan, const fs::path& dir) {
  const std::int64_t measured = peak_resident_bytes();
  if (measured <= 0) return;
  constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
  const double error = static_cast<double>(plan.peak - measured) / static_cast<double>(measured);
  std::cerr << fmt::format("memory: peak resident {:.2f} GiB; planned {:.2f} GiB ({:+.1f}%), {:.2f} GiB of it resident "
                           "before loading\n",
                           static_cast<double>(measured) / kGiB, static_cast<double>(plan.peak) / kGiB, 100 * error,
                           static_cast<double>(plan.budget.resident) / kGiB);
  std::int64_t margin = 0;
  for (const auto& c : plan.components)
    if (c.name == kAllocatorMarginComponent) margin += c.bytes;
  const nlohmann::json check = {{"schema", "alignkit.memory-check/1"},
                                {"device", "cpu"},
                                {"planned_peak_bytes", plan.peak},
                                {"planned_allocator_margin_bytes", margin},
                                {"planned_peak_phase", phase_name(plan.peak_phase)},
                                {"measured_peak_bytes", measured},
                                {"resident_before_bytes", plan.budget.resident},
                                {"measured_by", "VmHWM of /proc/self/status"}};
  write_file_atomically(dir / "memory.json", check.dump(2) + "\n");
}

}  // namespace alignkit
