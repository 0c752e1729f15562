// cpo: Contrastive Preference Optimization (formulas in cpo_loss.hpp).
//
//   loss = mean(-log sigmoid(beta * (log pi(y_w) - log pi(y_l)))) + cpo_alpha * NLL(y_w)
//
// Xu et al., 2024, https://arxiv.org/abs/2401.08417, eq. 3. Follows TRL 0.19.1's CPOTrainer
// (cpo_loss, get_batch_loss_metrics) and CPOConfig's defaults: beta 0.1, loss_type sigmoid,
// label_smoothing 0, cpo_alpha 1.0, simpo_gamma 0.5. Reference-free; preference pairs; summed
// log-probs, or averaged over tokens for ipo and simpo.
#include <alignkit/recipe_section.hpp>

#include "cpo_loss.hpp"

namespace {

using alignkit::OptionType;

const alignkit::OptionSpec kOptions[] = {
    {.key = "beta", .type = OptionType::floating, .default_value = "0.1",
     .doc = "Temperature of the margin beta * (log pi(y_w) - log pi(y_l)).", .min = 0, .min_exclusive = true},
    {.key = "loss_type", .type = OptionType::string, .default_value = "\"sigmoid\"",
     .doc = "sigmoid (CPO), hinge, ipo, or simpo (SimPO's margin; with cpo_alpha > 0, CPO-SimPO).",
     .choices = "sigmoid|hinge|ipo|simpo"},
    {.key = "label_smoothing", .type = OptionType::floating, .default_value = "0.0",
     .doc = "Probability that a preference label is flipped (sigmoid and simpo).", .min = 0, .max = 0.5,
     .max_exclusive = true},
    {.key = "cpo_alpha", .type = OptionType::floating, .default_value = "1.0",
     .doc = "Weight of the behaviour-cloning term, the NLL of the chosen completions.", .min = 0},
    {.key = "simpo_gamma", .type = OptionType::floating, .default_value = "0.5",
     .doc = "SimPO's target reward margin gamma (loss_type simpo only)."},
};

std::unique_ptr<alignkit::losses::CpoLoss> make(const alignkit::RecipeSection& options) {
  alignkit::losses::CpoSettings s;
  s.beta = options.get_float("beta");
  s.loss_type = options.get_string("loss_type");
  s.label_smoothing = options.get_float("label_smoothing");
  s.cpo_alpha = options.get_float("cpo_alpha");
  s.simpo_gamma = options.get_float("simpo_gamma");
  return std::make_unique<alignkit::losses::CpoLoss>(std::move(s));
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::loss, "cpo", "1.0.0",
                                            "CPO: reference-free sigmoid preference loss plus NLL on chosen "
                                            "(TRL's CPOTrainer)",
                                            kOptions))
