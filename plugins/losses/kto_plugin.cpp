// kto: Kahneman-Tversky Optimization on unpaired examples (formulas in kto_loss.hpp).
//
//   loss = nanmean(w_d (1 - s(beta (r - z0))) for desirable, w_u (1 - s(beta (z0 - r))) for undesirable)
//
// Ethayarajh et al., 2024, https://arxiv.org/abs/2402.01306, eq. 7. Follows TRL 0.19.1's
// KTOTrainer (kto_loss, get_batch_loss_metrics) and KTOConfig's defaults: beta 0.1, loss_type kto,
// desirable_weight 1.0, undesirable_weight 1.0. Needs the reference model, unpaired examples with
// a desirable label, summed log-probs, and for loss_type kto the log-probs of mismatched
// prompt/completion pairs (TRL's KL completions) for the KL estimate z0.
#include <alignkit/recipe_section.hpp>

#include "kto_loss.hpp"

namespace {

using alignkit::OptionType;

const alignkit::OptionSpec kOptions[] = {
    {.key = "beta", .type = OptionType::floating, .default_value = "0.1",
     .doc = "Temperature of the implicit reward beta * log(pi / ref).", .min = 0, .min_exclusive = true},
    {.key = "loss_type", .type = OptionType::string, .default_value = "\"kto\"",
     .doc = "kto, or apo_zero_unpaired (APO-zero on unpaired data; no KL completions).",
     .choices = "kto|apo_zero_unpaired"},
    {.key = "desirable_weight", .type = OptionType::floating, .default_value = "1.0",
     .doc = "Weight of the desirable examples' losses; with unbalanced data, keep "
            "desirable_weight * n_desirable / (undesirable_weight * n_undesirable) in [1, 4/3] (the paper).",
     .min = 0},
    {.key = "undesirable_weight", .type = OptionType::floating, .default_value = "1.0",
     .doc = "Weight of the undesirable examples' losses.", .min = 0},
};

std::unique_ptr<alignkit::losses::KtoLoss> make(const alignkit::RecipeSection& options) {
  alignkit::losses::KtoSettings s;
  s.beta = options.get_float("beta");
  s.loss_type = options.get_string("loss_type");
  s.desirable_weight = options.get_float("desirable_weight");
  s.undesirable_weight = options.get_float("undesirable_weight");
  return std::make_unique<alignkit::losses::KtoLoss>(std::move(s));
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::loss, "kto", "1.0.0",
                                            "KTO: prospect-theoretic loss on unpaired desirable/undesirable "
                                            "examples (TRL's KTOTrainer)",
                                            kOptions))
