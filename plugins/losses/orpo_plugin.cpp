// orpo: Odds Ratio Preference Optimization (formulas in orpo_loss.hpp).
//
//   loss = NLL(prompt + y_w) - mean(beta * log sigmoid(log odds(y_w) - log odds(y_l)))
//
// Hong et al., 2024, https://arxiv.org/abs/2403.07691. Follows TRL 0.19.1's ORPOTrainer
// (odds_ratio_loss, get_batch_loss_metrics) and ORPOConfig's default beta 0.1 (the paper's
// lambda). Reference-free; preference pairs; token-averaged log-probs; the NLL over the prompt
// and the chosen completion, as TRL computes it.
#include <alignkit/recipe_section.hpp>

#include "orpo_loss.hpp"

namespace {

using alignkit::OptionType;

const alignkit::OptionSpec kOptions[] = {
    {.key = "beta", .type = OptionType::floating, .default_value = "0.1",
     .doc = "Weight of the odds-ratio term against the NLL (the paper's lambda).", .min = 0},
};

std::unique_ptr<alignkit::losses::OrpoLoss> make(const alignkit::RecipeSection& options) {
  return std::make_unique<alignkit::losses::OrpoLoss>(options.get_float("beta"));
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::loss, "orpo", "1.0.0",
                                            "ORPO: NLL plus an odds-ratio preference term, no reference model "
                                            "(TRL's ORPOTrainer)",
                                            kOptions))
