// simpo: Simple Preference Optimization, as TRL's CPOTrainer with loss_type="simpo".
//
//   u    = avg log pi(y_w) - avg log pi(y_l)            (token-averaged, no reference model)
//   loss = mean(-log sigmoid(beta * u - simpo_gamma)) + cpo_alpha * NLL(y_w)
//
// Meng et al., 2024, https://arxiv.org/abs/2405.14734, eq. 6. Follows TRL 0.19.1's
// CPOTrainer.cpo_loss "simpo" branch. Defaults are TRL's for that path, CPOConfig with
// loss_type="simpo" and cpo_alpha=0.0 (the TRL docs' SimPO): beta 0.1, simpo_gamma 0.5,
// label_smoothing 0, cpo_alpha 0. The SimPO paper itself tunes beta in 2.0-2.5 (with
// gamma / beta about 0.5); set them in the recipe to follow it.
#include <alignkit/recipe_section.hpp>

#include "cpo_loss.hpp"

namespace {

using alignkit::OptionType;

const alignkit::OptionSpec kOptions[] = {
    {.key = "beta", .type = OptionType::floating, .default_value = "0.1",
     .doc = "Reward scale beta on the token-averaged log-probs (TRL's CPOConfig default; the paper uses 2.0-2.5).",
     .min = 0, .min_exclusive = true},
    {.key = "simpo_gamma", .type = OptionType::floating, .default_value = "0.5",
     .doc = "Target reward margin gamma."},
    {.key = "label_smoothing", .type = OptionType::floating, .default_value = "0.0",
     .doc = "Probability that a preference label is flipped.", .min = 0, .max = 0.5, .max_exclusive = true},
    {.key = "cpo_alpha", .type = OptionType::floating, .default_value = "0.0",
     .doc = "Weight of an NLL term on the chosen completions: 0 is SimPO, > 0 CPO-SimPO.", .min = 0},
};

std::unique_ptr<alignkit::losses::CpoLoss> make(const alignkit::RecipeSection& options) {
  alignkit::losses::CpoSettings s;
  s.loss_type = "simpo";
  s.beta = options.get_float("beta");
  s.simpo_gamma = options.get_float("simpo_gamma");
  s.label_smoothing = options.get_float("label_smoothing");
  s.cpo_alpha = options.get_float("cpo_alpha");
  return std::make_unique<alignkit::losses::CpoLoss>(std::move(s));
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::loss, "simpo", "1.0.0",
                                            "SimPO: reference-free sigmoid loss on the length-averaged margin minus "
                                            "gamma (TRL's CPO loss_type simpo)",
                                            kOptions))
