// reward: trains a reward model, as TRL's RewardTrainer (formulas in reward_loss.hpp). The host
// turns the model into a one-output sequence classifier (a fresh score head on a causal-LM
// checkpoint) and scores prompt + chosen and prompt + rejected at their last token; the saved
// model is a ...ForSequenceClassification directory that [reward_model] and `alignkit score` read.
#include <alignkit/recipe_section.hpp>

#include "reward_loss.hpp"

namespace {

using alignkit::OptionType;

const alignkit::OptionSpec kOptions[] = {
    {.key = "center_rewards_coefficient", .type = OptionType::floating,
     .doc = "Weight of mean((r_chosen + r_rejected)^2), which keeps the rewards centred on 0 (unset: none, as "
            "RewardConfig's default; Eisenstein et al. use 0.01).",
     .min = 0},
};

std::unique_ptr<alignkit::losses::RewardLoss> make(const alignkit::RecipeSection& options) {
  alignkit::losses::RewardSettings s;
  if (options.has("center_rewards_coefficient")) s.center_rewards_coefficient = options.get_float("center_rewards_coefficient");
  return std::make_unique<alignkit::losses::RewardLoss>(s);
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::loss, "reward", "1.0.0",
                                            "Reward modelling: Bradley-Terry loss on a sequence-classification head's "
                                            "scores of chosen and rejected (TRL's RewardTrainer)",
                                            kOptions))
