// dpo: Direct Preference Optimization and TRL's loss-type variants (formulas in dpo_loss.hpp).
//
//   loss = mean_i sum_k w_k * loss_type_k(i) [+ rpo_alpha * NLL(chosen)]
//
// Rafailov et al., 2023, https://arxiv.org/abs/2305.18290. Follows TRL 0.19.1's DPOTrainer
// (dpo_loss, concatenated_forward, get_batch_loss_metrics) and DPOConfig's defaults; lists of
// loss types with loss_weights follow TRL 0.20 (MPO). Needs the reference model (unless
// reference_free, and the loss types read it regardless), preference pairs, and summed log-probs,
// averaged over each completion's tokens when the list holds "ipo", as TRL does.
#include <alignkit/diagnostic.hpp>
#include <alignkit/recipe_section.hpp>

#include "dpo_loss.hpp"
#include "loss_support.hpp"

namespace {

using alignkit::OptionType;

const alignkit::OptionSpec kOptions[] = {
    {.key = "beta", .type = OptionType::floating, .default_value = "0.1",
     .doc = "Temperature of the implicit reward beta * log(pi / ref); higher keeps the policy closer to the "
            "reference. For ipo it is the paper's tau.",
     .min = 0, .min_exclusive = true},
    {.key = "loss_type", .type = OptionType::string_list, .default_value = "[\"sigmoid\"]",
     .doc = "Loss types, summed (with loss_weights): sigmoid, hinge, ipo, exo_pair, nca_pair, robust, bco_pair, "
            "sppo_hard, aot, aot_pair, discopop, apo_zero, apo_down, sft (NLL on chosen). MPO is "
            "[\"sigmoid\", \"bco_pair\", \"sft\"]. With ipo in the list, every term sees length-averaged "
            "log-probs, as in TRL."},
    {.key = "loss_weights", .type = OptionType::float_list,
     .doc = "One weight per loss_type entry (e.g. [0.8, 0.2, 1.0] for MPO); unset: 1.0 each. The rewards are "
            "combined with the same weights."},
    {.key = "label_smoothing", .type = OptionType::floating, .default_value = "0.0",
     .doc = "Probability that a preference label is flipped (cDPO, robust, exo_pair, aot, aot_pair); ignored by "
            "the other types.",
     .min = 0, .max = 0.5, .max_exclusive = true},
    {.key = "rpo_alpha", .type = OptionType::floating,
     .doc = "RPO: add rpo_alpha times the policy's NLL on the chosen completions to each example's loss; unset: "
            "off. The paper recommends 1.0.",
     .min = 0},
    {.key = "reference_free", .type = OptionType::boolean, .default_value = "false",
     .doc = "Compare against a uniform reference (log-ratio 0) instead of the reference model; no reference "
            "model is run unless a loss type reads it (bco_pair, sppo_hard, nca_pair, aot, aot_pair, discopop). "
            "Without one, rewards are beta times the policy log-probs."},
    {.key = "f_divergence_type", .type = OptionType::string, .default_value = "\"reverse_kl\"",
     .doc = "f-DPO's divergence between policy and reference.",
     .choices = "reverse_kl|js_divergence|alpha_divergence"},
    {.key = "f_alpha_divergence_coef", .type = OptionType::floating, .default_value = "1.0",
     .doc = "alpha of the alpha_divergence.", .min = 0, .min_exclusive = true},
    {.key = "discopop_tau", .type = OptionType::floating, .default_value = "0.05",
     .doc = "Temperature of DiscoPOP's log-ratio modulation (the paper's default).", .min = 0,
     .min_exclusive = true},
    {.key = "use_weighting", .type = OptionType::boolean, .default_value = "false",
     .doc = "WPO weighting. Not available yet: it needs per-token vocabulary log-probs that the loss interface "
            "does not carry; true is refused."},
};

std::unique_ptr<alignkit::losses::DpoLoss> make(const alignkit::RecipeSection& options) {
  alignkit::losses::DpoSettings s;
  s.beta = options.get_float("beta");
  s.loss_types = options.get_string_list("loss_type");
  alignkit::losses::check_names(options, "loss_type", s.loss_types, alignkit::losses::dpo_loss_types(),
                                {{"kto_pair", "TRL removed kto_pair from DPO; use the kto method: name = \"kto\""}});
  if (options.has("loss_weights")) {
    s.loss_weights = options.get_float_list("loss_weights");
    if (s.loss_weights.size() != s.loss_types.size())
      throw alignkit::DiagnosticError(options.error(
          "loss_weights",
          std::to_string(s.loss_weights.size()) + " weights for " + std::to_string(s.loss_types.size()) +
              " loss types",
          "give one weight per loss type, in the same order"));
  }
  s.label_smoothing = options.get_float("label_smoothing");
  if (options.has("rpo_alpha")) s.rpo_alpha = options.get_float("rpo_alpha");
  s.reference_free = options.get_bool("reference_free");
  s.f_divergence_type = options.get_string("f_divergence_type");
  s.f_alpha_divergence_coef = options.get_float("f_alpha_divergence_coef");
  s.discopop_tau = options.get_float("discopop_tau");
  if (options.get_bool("use_weighting"))
    throw alignkit::DiagnosticError(options.error(
        "use_weighting", "WPO weighting is not available",
        "it needs per-token log-probs over the vocabulary, which the host does not give losses yet; remove the key"));
  return std::make_unique<alignkit::losses::DpoLoss>(std::move(s));
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::loss, "dpo", "1.0.0",
                                            "DPO and TRL's loss types (sigmoid, ipo, hinge, robust, bco_pair, "
                                            "apo_zero, discopop, ...), combinable with weights (MPO), plus RPO",
                                            kOptions))
