// DPO and its variants: the loss behind the `dpo` and `ipo` plugins.
//
// Direct Preference Optimization (Rafailov et al., 2023, https://arxiv.org/abs/2305.18290):
//
//   "Your language model is secretly a reward model."
//
//   logits = (log pi(y_w|x) - log pi(y_l|x)) - (log ref(y_w|x) - log ref(y_l|x))
//   loss   = -log sigmoid(beta * logits)                                       (loss_type "sigmoid")
//
// Follows TRL 0.19.1's DPOTrainer.dpo_loss (trl/trainer/dpo_trainer.py), one branch per loss
// type, and DPOTrainer.get_batch_loss_metrics for RPO and the metrics; a list of loss types with
// loss_weights follows the combination TRL added next, in 0.20 (MPO): every term is computed from
// the same log-probs and the losses and rewards are summed with their weights.
//
// The loss types (beta is beta; ls the label smoothing; u = logits unless noted):
//   sigmoid    -(1-ls) log s(beta u) - ls log s(-beta u)                 DPO, cDPO
//   robust     ((1-ls)(-log s(beta u)) + ls log s(-beta u)) / (1 - 2 ls)  rDPO, arXiv 2403.00409
//   exo_pair   s(beta u)(log s(beta u) - log(1-ls)) + s(-beta u)(log s(-beta u) - log ls),
//              ls = 1e-3 when 0 (and it stays so, as in TRL)           EXO eq. 16, arXiv 2402.00856
//   hinge      relu(1 - beta u)                                         SLiC, arXiv 2305.10425
//   ipo        (u - 1/(2 beta))^2 on length-averaged log-probs          IPO eq. 17, arXiv 2310.12036
//   bco_pair   -log s(beta r_w - delta) - log s(-(beta r_l - delta)), r = policy - reference
//              log-ratio, delta the running mean of the rewards         BCO, arXiv 2404.04656
//   sppo_hard  (r_w - 1/(2 beta))^2 + (r_l + 1/(2 beta))^2             SPPO eq. 4.7, arXiv 2405.00675
//   nca_pair   -log s(beta r_w) - 0.5 log s(-beta r_w) - 0.5 log s(-beta r_l)   NCA, arXiv 2402.05369
//   aot_pair   sigmoid loss on sort(r_w) - sort(r_l)                    AOT, arXiv 2406.05882
//   aot        sigmoid loss on sort(policy margin) - sort(reference margin)
//   apo_zero   1 - s(beta r_w) + s(beta r_l)                            APO eq. 7, arXiv 2408.06266
//   apo_down   s(beta r_w) + 1 - s(beta (r_w - r_l))                    APO eq. 8
//   discopop   v = beta u: -log s(v) (1 - s(v/tau)) + exp(-v) s(v/tau)  DiscoPOP eq. 5, arXiv 2406.08414
//   sft        the policy's NLL on the chosen completions (MPO's generation term, arXiv 2411.10442)
//
// f_divergence_type (f-DPO, arXiv 2309.16240) changes u: js_divergence subtracts
// softplus(r_w) - softplus(r_l); alpha_divergence uses (e^{-a r_l} - e^{-a r_w}) / a with the
// exponent capped below the dtype's overflow. rpo_alpha (RPO, arXiv 2404.19733) adds
// rpo_alpha * NLL(chosen) to every example's loss. Rewards are beta * (policy - reference) log-probs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <torch/types.h>

#include <alignkit/loss.hpp>

namespace alignkit::losses {

// Every DPO loss type, in TRL's order, plus "sft".
const std::vector<std::string>& dpo_loss_types();

struct DpoSettings {
  double beta = 0.1;
  std::vector<std::string> loss_types{"sigmoid"};
  std::vector<double> loss_weights;  // empty: 1.0 for every loss type
  double label_smoothing = 0.0;
  std::optional<double> rpo_alpha;
  bool reference_free = false;
  std::string f_divergence_type = "reverse_kl";  // reverse_kl | js_divergence | alpha_divergence
  double f_alpha_divergence_coef = 1.0;
  double discopop_tau = 0.05;
};

// TRL's RunningMoments (trl/trainer/utils.py) on one process: the running mean of the batch
// reward means that bco_pair subtracts. Updated in float32, as TRL's is.
struct RunningMoments {
  double mean = 0.0;
  double var = 1.0;
  double count = 1e-24;
  void update(const torch::Tensor& xs);
};

// One loss type's per-example losses and rewards (TRL's dpo_loss return value).
struct DpoTerms {
  torch::Tensor losses;
  torch::Tensor chosen_rewards;
  torch::Tensor rejected_rewards;
};

class DpoLoss final : public Loss {
 public:
  explicit DpoLoss(DpoSettings settings);

  LossRequirements requirements() const override;
  LossResult compute(const LossBatch& batch) override;
  std::vector<MetricSpec> metrics() const override;
  // bco_pair's running moments and the label smoothing exo_pair may have set.
  std::map<std::string, torch::Tensor> state() const override;
  void load_state(const std::map<std::string, torch::Tensor>& state) override;

  // TRL's dpo_loss for one loss type. The reference log-probs may be undefined when the loss is
  // reference-free (then they count as 0); `nll` is the batch NLL, needed by "sft" only.
  // Not const: bco_pair updates the running mean and exo_pair may set the label smoothing.
  DpoTerms dpo_loss(const torch::Tensor& chosen_logps, const torch::Tensor& rejected_logps,
                    const torch::Tensor& ref_chosen_logps, const torch::Tensor& ref_rejected_logps,
                    const std::string& loss_type, const torch::Tensor& nll = {});

  const DpoSettings& settings() const { return settings_; }
  double label_smoothing() const { return label_smoothing_; }
  const RunningMoments& running() const { return running_; }

 private:
  DpoSettings settings_;
  double label_smoothing_;  // TRL's self.label_smoothing, which exo_pair may change
  RunningMoments running_;
};

}  // namespace alignkit::losses
