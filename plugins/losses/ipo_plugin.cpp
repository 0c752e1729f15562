// ipo: Identity Preference Optimization, as TRL's DPOTrainer with loss_type="ipo".
//
//   u    = (avg log pi(y_w) - avg log pi(y_l)) - (avg log ref(y_w) - avg log ref(y_l))
//   loss = mean (u - 1 / (2 beta))^2                                          eq. 17
//
// Azar et al., 2023, "A general theoretical paradigm to understand learning from human
// preferences", https://arxiv.org/abs/2310.12036. Follows TRL 0.19.1's DPOTrainer.dpo_loss "ipo"
// branch; the log-probs are averaged over each completion's tokens (concatenated_forward divides
// them by the completion length when the loss type is ipo), for the policy and the reference.
// Defaults are DPOConfig's (beta 0.1, here the paper's tau).
#include <alignkit/recipe_section.hpp>

#include "dpo_loss.hpp"

namespace {

using alignkit::OptionType;

const alignkit::OptionSpec kOptions[] = {
    {.key = "beta", .type = OptionType::floating, .default_value = "0.1",
     .doc = "The paper's tau: the loss pulls the length-averaged log-ratio margin towards 1 / (2 beta).",
     .min = 0, .min_exclusive = true},
    {.key = "reference_free", .type = OptionType::boolean, .default_value = "false",
     .doc = "Compare against a uniform reference (log-ratio 0) instead of the reference model, which is then "
            "not run; rewards are then beta times the policy log-probs."},
    {.key = "rpo_alpha", .type = OptionType::floating,
     .doc = "Add rpo_alpha times the policy's NLL on the chosen completions to each example's loss (RPO); unset: "
            "off.",
     .min = 0},
};

std::unique_ptr<alignkit::losses::DpoLoss> make(const alignkit::RecipeSection& options) {
  alignkit::losses::DpoSettings s;
  s.beta = options.get_float("beta");
  s.loss_types = {"ipo"};
  s.reference_free = options.get_bool("reference_free");
  if (options.has("rpo_alpha")) s.rpo_alpha = options.get_float("rpo_alpha");
  return std::make_unique<alignkit::losses::DpoLoss>(std::move(s));
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::loss, "ipo", "1.0.0",
                                            "IPO: squared loss on the length-averaged DPO margin (TRL's DPO "
                                            "loss_type ipo)",
                                            kOptions))
