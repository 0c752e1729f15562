#include "dpo_loss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include <alignkit/diagnostic.hpp>

#include "loss_support.hpp"

namespace alignkit::losses {

namespace {

bool contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

// Loss types whose TRL formula reads the reference log-probs even when reference_free is set.
const std::vector<std::string> kReferenceAlways = {"bco_pair", "sppo_hard", "nca_pair", "aot", "aot_pair", "discopop"};

// TRL's cap_exp: exp(min(value, floor(log(dtype max) * 1e4) / 1e4)), the cap computed in the dtype.
torch::Tensor cap_exp(const torch::Tensor& value) {
  const double max = value.scalar_type() == torch::kDouble ? std::numeric_limits<double>::max()
                     : value.scalar_type() == torch::kFloat ? std::numeric_limits<float>::max()
                                                            : std::numeric_limits<double>::max();
  const auto log_max = torch::log(torch::zeros({1}, value.options()) + max);
  const auto cap = torch::floor(log_max * 10000) / 10000;
  return torch::exp(torch::clamp_max(value, cap.item<double>()));
}

// -(1 - ls) log sigmoid(x) - ls log sigmoid(-x): DPO's sigmoid loss with cDPO's label smoothing.
torch::Tensor smoothed_sigmoid_loss(const torch::Tensor& scaled, double label_smoothing) {
  return -torch::log_sigmoid(scaled) * (1 - label_smoothing) - torch::log_sigmoid(-scaled) * label_smoothing;
}

}  // namespace

const std::vector<std::string>& dpo_loss_types() {
  static const std::vector<std::string> names = {"sigmoid", "hinge",    "ipo",      "exo_pair", "nca_pair",
                                                 "robust",  "bco_pair", "sppo_hard", "aot",     "aot_pair",
                                                 "discopop", "apo_zero", "apo_down", "sft"};
  return names;
}

void RunningMoments::update(const torch::Tensor& xs) {
  torch::NoGradGuard no_grad;
  const std::int64_t xs_count = xs.numel();
  auto [xs_var, xs_mean] = torch::var_mean(xs, /*unbiased=*/false);
  xs_mean = xs_mean.to(torch::kFloat);
  xs_var = xs_var.to(torch::kFloat);

  const auto delta = xs_mean - mean;
  const double tot_count = count + static_cast<double>(xs_count);
  const auto new_sum = xs_var * xs_count;
  // correct the old sum for the new mean
  const auto old_sum = delta.pow(2) * count * xs_count / tot_count + var * count;
  const auto tot_sum = old_sum + new_sum;

  mean += (delta * xs_count / tot_count).item<double>();
  var = (tot_sum / tot_count).item<double>();
  count = tot_count;
}

DpoLoss::DpoLoss(DpoSettings settings)
    : settings_(std::move(settings)), label_smoothing_(settings_.label_smoothing) {}

// Doubles as float64 scalars: a checkpoint restores them bit for bit.
std::map<std::string, torch::Tensor> DpoLoss::state() const {
  auto scalar = [](double v) { return torch::tensor(v, torch::kFloat64); };
  return {{"running_mean", scalar(running_.mean)},
          {"running_var", scalar(running_.var)},
          {"running_count", scalar(running_.count)},
          {"label_smoothing", scalar(label_smoothing_)}};
}

void DpoLoss::load_state(const std::map<std::string, torch::Tensor>& state) {
  auto get = [&](const char* name) {
    auto it = state.find(name);
    if (it == state.end() || it->second.numel() != 1)
      throw DiagnosticError(make_error(fmt::format("dpo: the checkpoint's loss state has no scalar '{}'", name)));
    return it->second.to(torch::kFloat64).item<double>();
  };
  running_.mean = get("running_mean");
  running_.var = get("running_var");
  running_.count = get("running_count");
  label_smoothing_ = get("label_smoothing");
}

LossRequirements DpoLoss::requirements() const {
  const auto& types = settings_.loss_types;
  LossRequirements r;
  r.examples = ExampleLayout::paired;
  r.reference_model = !settings_.reference_free ||
                      std::any_of(types.begin(), types.end(), [](const std::string& t) { return contains(kReferenceAlways, t); });
  // TRL's concatenated_forward: `if "ipo" in self.loss_type: all_logps = all_logps / loss_mask.sum(-1)`,
  // for the policy and the reference, whatever else the list holds.
  r.reduction = contains(types, "ipo") ? LogProbReduction::mean : LogProbReduction::sum;
  r.policy_nll = settings_.rpo_alpha.has_value() || contains(types, "sft");
  return r;
}

DpoTerms DpoLoss::dpo_loss(const torch::Tensor& chosen_logps, const torch::Tensor& rejected_logps,
                           const torch::Tensor& ref_chosen_logps_in, const torch::Tensor& ref_rejected_logps_in,
                           const std::string& loss_type, const torch::Tensor& nll) {
  const double beta = settings_.beta;
  const bool reference_free = settings_.reference_free;
  const bool have_reference = ref_chosen_logps_in.defined() && ref_rejected_logps_in.defined();
  if (!have_reference && (!reference_free || contains(kReferenceAlways, loss_type)))
    throw std::invalid_argument("dpo loss type '" + loss_type + "' needs the reference log-probs");
  // Without a reference (reference_free), its log-probs count as 0 in the rewards.
  const auto ref_chosen_logps = have_reference ? ref_chosen_logps_in : torch::zeros_like(chosen_logps);
  const auto ref_rejected_logps = have_reference ? ref_rejected_logps_in : torch::zeros_like(rejected_logps);

  // chosen_logratios = chosen_logps - (not reference_free) * ref_chosen_logps
  const auto chosen_logratios = reference_free ? chosen_logps : chosen_logps - ref_chosen_logps;
  const auto rejected_logratios = reference_free ? rejected_logps : rejected_logps - ref_rejected_logps;

  torch::Tensor logits;
  if (settings_.f_divergence_type == "alpha_divergence") {
    // (1 - u^-a) / a for each side; the difference is (u_l^-a - u_w^-a) / a, u the probability ratio.
    const double alpha = settings_.f_alpha_divergence_coef;
    logits = (cap_exp(rejected_logratios * -alpha) - cap_exp(chosen_logratios * -alpha)) / alpha;
  } else {
    const auto logratios = chosen_logps - rejected_logps;
    const auto ref_logratios = reference_free ? torch::zeros({1}, logratios.options())
                                              : ref_chosen_logps - ref_rejected_logps;
    logits = logratios - ref_logratios;
    if (settings_.f_divergence_type == "js_divergence") {
      // log(2u / (1 + u)) for each side: the difference drops log(1 + u_w) - log(1 + u_l).
      logits = logits - (torch::softplus(chosen_logratios) - torch::softplus(rejected_logratios));
    }
  }

  torch::Tensor losses;
  torch::Tensor chosen_rewards, rejected_rewards;  // set only by "sft"
  if (loss_type == "sigmoid") {
    losses = smoothed_sigmoid_loss(beta * logits, label_smoothing_);
  } else if (loss_type == "robust") {
    losses = (-torch::log_sigmoid(beta * logits) * (1 - label_smoothing_) +
              torch::log_sigmoid(-beta * logits) * label_smoothing_) /
             (1 - 2 * label_smoothing_);
  } else if (loss_type == "exo_pair") {
    // EXO eq. 16. TRL replaces a label smoothing of 0 by 1e-3 on its trainer, for good.
    if (label_smoothing_ == 0) label_smoothing_ = 1e-3;
    losses = (beta * logits).sigmoid() * (torch::log_sigmoid(beta * logits) - std::log(1 - label_smoothing_)) +
             (-beta * logits).sigmoid() * (torch::log_sigmoid(-beta * logits) - std::log(label_smoothing_));
  } else if (loss_type == "hinge") {
    losses = torch::relu(1 - beta * logits);
  } else if (loss_type == "ipo") {
    // IPO eq. 17; beta is the paper's tau.
    losses = (logits - 1 / (2 * beta)).pow(2);
  } else if (loss_type == "bco_pair") {
    const auto bco_chosen_logratios = chosen_logps - ref_chosen_logps;
    const auto bco_rejected_logratios = rejected_logps - ref_rejected_logps;
    const auto rewards =
        torch::cat({beta * bco_chosen_logratios, beta * bco_rejected_logratios}, 0).mean().detach();
    running_.update(rewards);
    const double delta = running_.mean;
    losses = -torch::log_sigmoid((beta * bco_chosen_logratios) - delta) -
             torch::log_sigmoid(-(beta * bco_rejected_logratios - delta));
  } else if (loss_type == "sppo_hard") {
    // SPPO's hard-probability variant: P = 1 for the winner, 0 for the loser in eq. 4.7.
    const auto a = chosen_logps - ref_chosen_logps;
    const auto b = rejected_logps - ref_rejected_logps;
    losses = (a - 0.5 / beta).pow(2) + (b + 0.5 / beta).pow(2);
  } else if (loss_type == "nca_pair") {
    const auto nca_chosen_rewards = (chosen_logps - ref_chosen_logps) * beta;
    const auto nca_rejected_rewards = (rejected_logps - ref_rejected_logps) * beta;
    losses = -torch::log_sigmoid(nca_chosen_rewards) - 0.5 * torch::log_sigmoid(-nca_chosen_rewards) -
             0.5 * torch::log_sigmoid(-nca_rejected_rewards);
  } else if (loss_type == "aot_pair") {
    const auto chosen_sorted = std::get<0>(torch::sort(chosen_logps - ref_chosen_logps, 0));
    const auto rejected_sorted = std::get<0>(torch::sort(rejected_logps - ref_rejected_logps, 0));
    losses = smoothed_sigmoid_loss(beta * (chosen_sorted - rejected_sorted), label_smoothing_);
  } else if (loss_type == "aot") {
    const auto logratios_sorted = std::get<0>(torch::sort(chosen_logps - rejected_logps, 0));
    const auto ref_logratios_sorted = std::get<0>(torch::sort(ref_chosen_logps - ref_rejected_logps, 0));
    losses = smoothed_sigmoid_loss(beta * (logratios_sorted - ref_logratios_sorted), label_smoothing_);
  } else if (loss_type == "apo_zero") {
    // APO eq. 7: raise the chosen likelihood, lower the rejected one.
    losses = (1 - torch::sigmoid(beta * chosen_logratios)) + torch::sigmoid(beta * rejected_logratios);
  } else if (loss_type == "apo_down") {
    // APO eq. 8: lower both, the rejected more.
    losses = torch::sigmoid(beta * chosen_logratios) +
             (1 - torch::sigmoid(beta * (chosen_logratios - rejected_logratios)));
  } else if (loss_type == "discopop") {
    // DiscoPOP eq. 5 (log-ratio modulated loss), on the plain DPO margin.
    const auto scaled = ((chosen_logps - rejected_logps) - (ref_chosen_logps - ref_rejected_logps)) * beta;
    const auto modulation = torch::sigmoid(scaled / settings_.discopop_tau);
    const auto logistic_component = -torch::log_sigmoid(scaled);
    const auto exp_component = torch::exp(-scaled);
    losses = logistic_component * (1 - modulation) + exp_component * modulation;
  } else if (loss_type == "sft") {
    if (!nll.defined()) throw std::invalid_argument("dpo loss type 'sft' needs the policy's NLL");
    losses = nll.expand({chosen_logps.size(0)});
    chosen_rewards = torch::zeros_like(chosen_logps);
    rejected_rewards = torch::zeros_like(rejected_logps);
  } else {
    throw std::invalid_argument("unknown dpo loss type '" + loss_type + "'");
  }

  if (!chosen_rewards.defined()) {
    chosen_rewards = beta * (chosen_logps - ref_chosen_logps).detach();
    rejected_rewards = beta * (rejected_logps - ref_rejected_logps).detach();
  }
  return {losses, chosen_rewards, rejected_rewards};
}

LossResult DpoLoss::compute(const LossBatch& batch) {
  require_logps(batch.chosen, -1, "chosen");
  const std::int64_t n = batch.chosen.logps.size(0);
  require_logps(batch.rejected, n, "rejected");
  const bool have_reference = batch.reference_chosen.logps.defined();
  if (have_reference) {
    require_logps(batch.reference_chosen, n, "reference_chosen");
    require_logps(batch.reference_rejected, n, "reference_rejected");
  }
  const auto nll = requirements().policy_nll ? batch_nll(batch.chosen) : torch::Tensor();

  torch::Tensor losses, chosen_rewards, rejected_rewards;
  const auto& types = settings_.loss_types;
  for (std::size_t i = 0; i < types.size(); ++i) {
    const double weight = settings_.loss_weights.empty() ? 1.0 : settings_.loss_weights[i];
    auto terms = dpo_loss(batch.chosen.logps, batch.rejected.logps, batch.reference_chosen.logps,
                          batch.reference_rejected.logps, types[i], nll);
    // TRL 0.20: losses = losses + _losses * weight, starting from 0; the rewards likewise.
    losses = losses.defined() ? losses + terms.losses * weight : terms.losses * weight;
    chosen_rewards = chosen_rewards.defined() ? chosen_rewards + terms.chosen_rewards * weight
                                              : terms.chosen_rewards * weight;
    rejected_rewards = rejected_rewards.defined() ? rejected_rewards + terms.rejected_rewards * weight
                                                  : terms.rejected_rewards * weight;
  }
  // RPO (v3 of the paper): the NLL of the chosen completions added to every example's loss.
  if (settings_.rpo_alpha) losses = losses + *settings_.rpo_alpha * nll;

  LossResult result;
  result.loss = losses.mean();
  result.metrics = paired_metrics(chosen_rewards, rejected_rewards, batch.chosen, batch.rejected);
  if (nll.defined()) result.metrics.push_back(scalar_metric("nll_loss", nll));
  return result;
}

std::vector<MetricSpec> DpoLoss::metrics() const { return paired_metric_specs(); }

}  // namespace alignkit::losses
