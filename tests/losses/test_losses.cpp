// The loss plugins against TRL: the oracle fixtures made by TRL 0.19.1 itself
// (tests/fixtures/oracle/*_losses.json, dpo_e2e.json) and, where they stop, the Python reference
// of TRL's formulas (tests/reference/trl_losses.py and trl_ppo.py -> tests/fixtures/loss_reference/). Plugins are
// created through the registry from a recipe's [method] section, so their option declarations
// and checks run as in a real recipe. Per-example losses and rewards, which a Loss does not
// return, are checked on the formula functions the plugins are built from.
//
// Tolerance, everywhere: |actual - expected| <= 1e-6 * max(1, |expected|) ("within_1e6_relative").
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/loss.hpp>
#include <alignkit/online_method.hpp>

#include "cpo_loss.hpp"
#include "dpo_loss.hpp"
#include "host/recipe_validator.hpp"
#include "kto_loss.hpp"
#include "orpo_loss.hpp"
#include "ppo_loss.hpp"
#include "test_support.hpp"

namespace alignkit {
namespace {

using json = nlohmann::json;

constexpr double kRelative = 1e-6;

::testing::AssertionResult within_1e6_relative(double actual, double expected) {
  const double bound = kRelative * std::max(1.0, std::abs(expected));
  if (std::abs(actual - expected) <= bound) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << fmt::format("{:.17g} differs from TRL's {:.17g} by {:.3g} (bound {:.3g})",
                                                      actual, expected, std::abs(actual - expected), bound);
}

double value(const torch::Tensor& t) { return t.item<double>(); }

json load_json(const std::string& relative) {
  std::ifstream in(testing::source_dir() / relative);
  EXPECT_TRUE(in) << relative;
  return json::parse(in);
}

torch::Tensor tensor_of(const json& values, torch::ScalarType dtype = torch::kDouble) {
  return torch::tensor(values.get<std::vector<double>>(), torch::dtype(torch::kDouble)).to(dtype);
}

double mean_of(const json& values) {
  const auto v = values.get<std::vector<double>>();
  double sum = 0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

// Per-completion scores for log-probs alone: one token each, mean logit 0.
CompletionScores scores(const torch::Tensor& logps) {
  CompletionScores s;
  s.logps = logps;
  s.token_counts = torch::ones_like(logps);
  s.mean_logits = torch::zeros_like(logps);
  return s;
}

// A method plugin (a Loss or an OnlineMethod) created as a recipe creates it: [method] name = <name>
// plus `options`.
template <typename T>
struct LoadedMethod {
  testing::RecipeFixture fixture;
  std::shared_ptr<T> method;

  LoadedMethod(const std::string& name, const std::string& options)
      : fixture("[method]\nname = \"" + name + "\"\n" + options),
        method(fixture.registry.create<T>(*fixture.recipe.plugins.at("method"), fixture.recipe.section("method"))) {}
};

struct LoadedLoss : LoadedMethod<Loss> {
  using LoadedMethod::LoadedMethod;
  std::shared_ptr<Loss>& loss = method;
};

std::map<std::string, double> metrics_of(const LossResult& result) {
  std::map<std::string, double> out;
  for (const auto& [name, v] : result.metrics) {
    EXPECT_EQ(v.numel(), 1) << name;
    EXPECT_FALSE(v.requires_grad()) << name;
    out[name] = value(v);
  }
  return out;
}

void expect_all_within(const torch::Tensor& actual, const json& expected, const std::string& what) {
  const auto e = expected.get<std::vector<double>>();
  ASSERT_EQ(actual.numel(), static_cast<std::int64_t>(e.size())) << what;
  const auto a = actual.to(torch::kDouble).reshape(-1);
  for (std::size_t i = 0; i < e.size(); ++i)
    EXPECT_TRUE(within_1e6_relative(a[static_cast<std::int64_t>(i)].item<double>(), e[i])) << what << "[" << i << "]";
}

std::string toml_bool(bool b) { return b ? "true" : "false"; }

// ------------------------------------------------------------------------------------------------
// DPO: dpo_losses.json (DPOTrainer.dpo_loss, every loss type) and dpo_e2e.json
// ------------------------------------------------------------------------------------------------

TEST(DpoLoss, EveryTrlFixtureCaseMatches) {
  const json oracle = load_json("tests/fixtures/oracle/dpo_losses.json");
  const auto& in = oracle["inputs"];
  const auto chosen = tensor_of(in["chosen_logps"]), rejected = tensor_of(in["rejected_logps"]);
  const auto ref_chosen = tensor_of(in["ref_chosen_logps"]), ref_rejected = tensor_of(in["ref_rejected_logps"]);
  std::set<std::string> types_seen;
  int compared = 0;
  for (const auto& c : oracle["cases"]) {
    const auto& p = c["params"];
    losses::DpoSettings s;
    s.beta = p["beta"];
    s.loss_types = {p["loss_type"].get<std::string>()};
    s.label_smoothing = p["label_smoothing"];
    s.reference_free = p["reference_free"];
    s.f_divergence_type = p["f_divergence_type"];
    s.discopop_tau = p["discopop_tau"];
    if (p["f_divergence_params"].is_object()) s.f_alpha_divergence_coef = p["f_divergence_params"]["alpha_divergence_coef"];
    const std::string options = fmt::format(
        "beta = {}\nloss_type = [\"{}\"]\nlabel_smoothing = {}\nreference_free = {}\nf_divergence_type = \"{}\"\n"
        "f_alpha_divergence_coef = {}\ndiscopop_tau = {}\n",
        s.beta, s.loss_types[0], s.label_smoothing, toml_bool(s.reference_free), s.f_divergence_type,
        s.f_alpha_divergence_coef, s.discopop_tau);
    SCOPED_TRACE(options);
    types_seen.insert(s.loss_types[0]);

    // Per example, through the formula the plugin runs.
    losses::DpoLoss direct(s);
    const auto terms = direct.dpo_loss(chosen, rejected, ref_chosen, ref_rejected, s.loss_types[0]);
    expect_all_within(terms.losses, c["losses"], "losses");
    expect_all_within(terms.chosen_rewards, c["chosen_rewards"], "chosen_rewards");
    expect_all_within(terms.rejected_rewards, c["rejected_rewards"], "rejected_rewards");
    if (c.contains("label_smoothing_used"))
      EXPECT_TRUE(within_1e6_relative(direct.label_smoothing(), c["label_smoothing_used"]));
    if (c.contains("running_mean_after_update"))
      EXPECT_TRUE(within_1e6_relative(direct.running().mean, c["running_mean_after_update"]));

    // The batch loss and the logged metrics, through the plugin. TRL's rewards use the reference
    // log-probs even when reference_free, so they are given here in every case.
    LoadedLoss plugin("dpo", options);
    LossBatch batch;
    batch.chosen = scores(chosen);
    batch.rejected = scores(rejected);
    batch.reference_chosen = scores(ref_chosen);
    batch.reference_rejected = scores(ref_rejected);
    const auto result = plugin.loss->compute(batch);
    EXPECT_TRUE(within_1e6_relative(value(result.loss), c["loss"]));
    auto m = metrics_of(result);
    const auto cr = tensor_of(c["chosen_rewards"]), rr = tensor_of(c["rejected_rewards"]);
    EXPECT_TRUE(within_1e6_relative(m.at("rewards/chosen"), mean_of(c["chosen_rewards"])));
    EXPECT_TRUE(within_1e6_relative(m.at("rewards/rejected"), mean_of(c["rejected_rewards"])));
    EXPECT_TRUE(within_1e6_relative(m.at("rewards/margins"), value((cr - rr).mean())));
    EXPECT_TRUE(within_1e6_relative(m.at("rewards/accuracies"), value((cr > rr).to(torch::kFloat).mean())));
    EXPECT_TRUE(within_1e6_relative(m.at("logps/chosen"), value(chosen.mean())));
    EXPECT_TRUE(within_1e6_relative(m.at("logps/rejected"), value(rejected.mean())));
    EXPECT_EQ(m.count("nll_loss"), 0u);
    ++compared;
  }
  EXPECT_EQ(compared, 44);
  EXPECT_EQ(types_seen.size(), 13u);
}

TEST(DpoLoss, ReferenceFreeNeedsNoReferenceModelAndGivesTrlsLoss) {
  const json oracle = load_json("tests/fixtures/oracle/dpo_losses.json");
  const auto& in = oracle["inputs"];
  for (const auto& c : oracle["cases"]) {
    if (!c["params"]["reference_free"].get<bool>()) continue;
    const double beta = c["params"]["beta"];
    LoadedLoss plugin("dpo", fmt::format("beta = {}\nreference_free = true\n", beta));
    EXPECT_FALSE(plugin.loss->requirements().reference_model);
    LossBatch batch;
    batch.chosen = scores(tensor_of(in["chosen_logps"]));
    batch.rejected = scores(tensor_of(in["rejected_logps"]));
    const auto result = plugin.loss->compute(batch);
    EXPECT_TRUE(within_1e6_relative(value(result.loss), c["loss"]));
    // Without a reference, the rewards are beta times the policy's log-probs.
    EXPECT_TRUE(within_1e6_relative(metrics_of(result).at("rewards/chosen"), beta * value(batch.chosen.logps.mean())));
  }
}

TEST(DpoLoss, EndToEndFixtureFromTrlForwardOutputs) {
  // dpo_e2e.json: TRL's concatenated_forward outputs (float32) fed to the loss; the batch-level
  // NLL and mean logits are spread over the rows so that their token-weighted means equal TRL's.
  const json oracle = load_json("tests/fixtures/oracle/dpo_e2e.json");
  const auto& b = oracle["batch"];
  auto counts = [](const json& mask) {
    std::vector<double> out;
    for (const auto& row : mask) {
      double n = 0;
      for (int v : row) n += v;
      out.push_back(n);
    }
    return torch::tensor(out, torch::kFloat);
  };
  const auto chosen_counts = counts(b["chosen_attention_mask"]), rejected_counts = counts(b["rejected_attention_mask"]);
  int compared = 0;
  for (const auto& c : oracle["cases"]) {
    const auto& p = c["params"];
    const std::string loss_type = p["loss_type"];
    const double beta = p["beta"];
    std::string options = fmt::format("beta = {}\nloss_type = [\"{}\"]\n", beta, loss_type);
    if (!p["rpo_alpha"].is_null()) options += fmt::format("rpo_alpha = {}\n", p["rpo_alpha"].get<double>());
    SCOPED_TRACE(options);
    LoadedLoss plugin("dpo", options);
    const auto req = plugin.loss->requirements();
    EXPECT_TRUE(req.reference_model);
    EXPECT_EQ(req.reduction, loss_type == "ipo" ? LogProbReduction::mean : LogProbReduction::sum);
    EXPECT_EQ(req.policy_nll, !p["rpo_alpha"].is_null());

    auto side = [&](const json& forward, const char* which, const torch::Tensor& n) {
      CompletionScores s;
      s.logps = tensor_of(forward[std::string(which) + "_logps"], torch::kFloat);
      s.token_counts = n;
      s.mean_logits = torch::full_like(s.logps, forward[std::string("mean_") + which + "_logits"].get<double>());
      if (forward.contains("nll_loss")) s.nll = torch::full_like(s.logps, forward["nll_loss"].get<double>());
      return s;
    };
    LossBatch batch;
    batch.chosen = side(c["policy_forward"], "chosen", chosen_counts);
    batch.rejected = side(c["policy_forward"], "rejected", rejected_counts);
    batch.reference_chosen = side(c["reference_forward"], "chosen", chosen_counts);
    batch.reference_rejected = side(c["reference_forward"], "rejected", rejected_counts);
    const auto result = plugin.loss->compute(batch);
    EXPECT_EQ(result.loss.scalar_type(), torch::kFloat);
    EXPECT_TRUE(within_1e6_relative(value(result.loss), c["loss"]));
    const auto m = metrics_of(result);
    EXPECT_TRUE(within_1e6_relative(m.at("rewards/chosen"), mean_of(c["chosen_rewards"])));
    EXPECT_TRUE(within_1e6_relative(m.at("rewards/rejected"), mean_of(c["rejected_rewards"])));
    EXPECT_TRUE(within_1e6_relative(m.at("logits/chosen"), c["policy_forward"]["mean_chosen_logits"]));
    EXPECT_TRUE(within_1e6_relative(m.at("logits/rejected"), c["policy_forward"]["mean_rejected_logits"]));
    if (!p["rpo_alpha"].is_null()) EXPECT_TRUE(within_1e6_relative(m.at("nll_loss"), c["policy_forward"]["nll_loss"]));
    else EXPECT_EQ(m.count("nll_loss"), 0u);

    losses::DpoSettings s;
    s.beta = beta;
    s.loss_types = {loss_type};
    losses::DpoLoss direct(s);
    const auto terms = direct.dpo_loss(batch.chosen.logps, batch.rejected.logps, batch.reference_chosen.logps,
                                       batch.reference_rejected.logps, loss_type);
    expect_all_within(terms.losses, c["losses"], "losses");
    expect_all_within(terms.chosen_rewards, c["chosen_rewards"], "chosen_rewards");
    expect_all_within(terms.rejected_rewards, c["rejected_rewards"], "rejected_rewards");
    ++compared;
  }
  EXPECT_EQ(compared, 6);
}

TEST(DpoLoss, RequirementsFollowTrl) {
  auto req = [](const std::string& options) { return LoadedLoss("dpo", options).loss->requirements(); };
  const auto plain = req("");
  EXPECT_TRUE(plain.reference_model);
  EXPECT_EQ(plain.examples, ExampleLayout::paired);
  EXPECT_EQ(plain.reduction, LogProbReduction::sum);
  EXPECT_FALSE(plain.policy_nll);
  EXPECT_FALSE(plain.mismatched_completions);
  // "ipo" anywhere in the list: every term sees length-averaged log-probs (TRL's concatenated_forward).
  EXPECT_EQ(req("loss_type = [\"ipo\"]\n").reduction, LogProbReduction::mean);
  EXPECT_EQ(req("loss_type = [\"sigmoid\", \"ipo\"]\n").reduction, LogProbReduction::mean);
  EXPECT_TRUE(req("rpo_alpha = 1.0\n").policy_nll);
  EXPECT_TRUE(req("loss_type = [\"sigmoid\", \"sft\"]\n").policy_nll);
  EXPECT_FALSE(req("reference_free = true\n").reference_model);
  // These formulas read the reference log-probs even when reference_free, as in TRL.
  EXPECT_TRUE(req("reference_free = true\nloss_type = [\"bco_pair\"]\n").reference_model);
  EXPECT_TRUE(req("reference_free = true\nloss_type = [\"discopop\"]\n").reference_model);
}

TEST(DpoLoss, GradientReachesThePolicyLogProbsAsTheFormulaSays) {
  // d/dc mean_i -log s(beta u_i) = -beta s(-beta u_i) / n, and the rewards carry no gradient.
  LoadedLoss plugin("dpo", "beta = 0.5\n");
  auto chosen = torch::tensor({-10.0, -12.0, -9.0}, torch::dtype(torch::kDouble).requires_grad(true));
  auto rejected = torch::tensor({-11.0, -10.5, -9.5}, torch::dtype(torch::kDouble).requires_grad(true));
  LossBatch batch;
  batch.chosen = scores(chosen);
  batch.rejected = scores(rejected);
  batch.reference_chosen = scores(torch::tensor({-10.5, -11.0, -9.0}, torch::kDouble));
  batch.reference_rejected = scores(torch::tensor({-10.0, -10.0, -10.0}, torch::kDouble));
  const auto result = plugin.loss->compute(batch);
  result.loss.backward();
  const auto u = (chosen - rejected - (batch.reference_chosen.logps - batch.reference_rejected.logps)).detach();
  const auto expected = -0.5 * torch::sigmoid(-0.5 * u) / 3;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(within_1e6_relative(chosen.grad()[i].item<double>(), expected[i].item<double>()));
    EXPECT_TRUE(within_1e6_relative(rejected.grad()[i].item<double>(), -expected[i].item<double>()));
  }
}

TEST(KtoLoss, KlEstimateIsDetached) {
  LoadedLoss plugin("kto", "");
  auto kl = torch::tensor({-3.0, -2.0}, torch::dtype(torch::kDouble).requires_grad(true));
  auto policy = torch::tensor({-3.0, -4.0}, torch::dtype(torch::kDouble).requires_grad(true));
  LossBatch batch;
  batch.completions = scores(policy);
  batch.reference_completions = scores(torch::tensor({-3.5, -3.0}, torch::kDouble));
  batch.desirable = torch::tensor({true, false});
  batch.kl = scores(kl);
  batch.reference_kl = scores(torch::tensor({-4.0, -4.0}, torch::kDouble));
  plugin.loss->compute(batch).loss.backward();
  EXPECT_TRUE(policy.grad().defined());
  EXPECT_FALSE(kl.grad().defined());
}

TEST(IpoLoss, AveragesLogProbsAndMatchesTrlsIpoFixture) {
  const json oracle = load_json("tests/fixtures/oracle/dpo_losses.json");
  const auto& in = oracle["inputs"];
  int compared = 0;
  for (const auto& c : oracle["cases"]) {
    const auto& p = c["params"];
    if (p["loss_type"] != "ipo" || p["label_smoothing"].get<double>() != 0 || p["reference_free"].get<bool>() ||
        p["f_divergence_type"] != "reverse_kl")
      continue;
    LoadedLoss plugin("ipo", fmt::format("beta = {}\n", p["beta"].get<double>()));
    const auto req = plugin.loss->requirements();
    EXPECT_TRUE(req.reference_model);
    EXPECT_EQ(req.reduction, LogProbReduction::mean);
    EXPECT_FALSE(req.policy_nll);
    LossBatch batch;
    batch.chosen = scores(tensor_of(in["chosen_logps"]));
    batch.rejected = scores(tensor_of(in["rejected_logps"]));
    batch.reference_chosen = scores(tensor_of(in["ref_chosen_logps"]));
    batch.reference_rejected = scores(tensor_of(in["ref_rejected_logps"]));
    const auto result = plugin.loss->compute(batch);
    EXPECT_TRUE(within_1e6_relative(value(result.loss), c["loss"]));
    EXPECT_TRUE(within_1e6_relative(metrics_of(result).at("rewards/chosen"), mean_of(c["chosen_rewards"])));
    ++compared;
  }
  EXPECT_EQ(compared, 2);
}

// ------------------------------------------------------------------------------------------------
// ORPO: orpo_losses.json (ORPOTrainer.odds_ratio_loss)
// ------------------------------------------------------------------------------------------------

TEST(OrpoLoss, EveryTrlFixtureCaseMatches) {
  const json oracle = load_json("tests/fixtures/oracle/orpo_losses.json");
  const auto chosen = tensor_of(oracle["inputs"]["policy_chosen_logps"]);
  const auto rejected = tensor_of(oracle["inputs"]["policy_rejected_logps"]);
  const double nll = 1.75;  // any NLL: the fixture gives the odds-ratio term; loss = nll - its mean
  int compared = 0;
  for (const auto& c : oracle["cases"]) {
    const double beta = c["params"]["beta"];
    SCOPED_TRACE(beta);
    const auto terms = losses::odds_ratio_loss(beta, chosen, rejected);
    expect_all_within(terms.losses, c["losses"], "losses");
    expect_all_within(terms.chosen_rewards, c["chosen_rewards"], "chosen_rewards");
    expect_all_within(terms.rejected_rewards, c["rejected_rewards"], "rejected_rewards");

    LoadedLoss plugin("orpo", fmt::format("beta = {}\n", beta));
    const auto req = plugin.loss->requirements();
    EXPECT_FALSE(req.reference_model);
    EXPECT_EQ(req.reduction, LogProbReduction::mean);
    EXPECT_TRUE(req.policy_nll);
    EXPECT_TRUE(req.nll_over_prompt);
    LossBatch batch;
    batch.chosen = scores(chosen);
    batch.chosen.nll = torch::full_like(chosen, nll);
    batch.rejected = scores(rejected);
    const auto result = plugin.loss->compute(batch);
    EXPECT_TRUE(within_1e6_relative(value(result.loss), nll - c["or_term_mean"].get<double>()));
    const auto m = metrics_of(result);
    EXPECT_TRUE(within_1e6_relative(m.at("log_odds_ratio"), c["log_odds_ratio"]));
    EXPECT_TRUE(within_1e6_relative(m.at("log_odds_chosen"), c["log_odds_chosen"]));
    EXPECT_TRUE(within_1e6_relative(m.at("nll_loss"), nll));
    EXPECT_TRUE(within_1e6_relative(m.at("rewards/chosen"), mean_of(c["chosen_rewards"])));
    EXPECT_TRUE(within_1e6_relative(m.at("rewards/rejected"), mean_of(c["rejected_rewards"])));
    ++compared;
  }
  EXPECT_EQ(compared, 2);
}

// ------------------------------------------------------------------------------------------------
// CPO and SimPO: cpo_simpo_losses.json (CPOTrainer.cpo_loss)
// ------------------------------------------------------------------------------------------------

TEST(CpoLoss, EveryTrlFixtureCaseMatchesThroughCpoAndSimpo) {
  const json oracle = load_json("tests/fixtures/oracle/cpo_simpo_losses.json");
  const double nll = 2.25;  // cpo adds cpo_alpha (1.0) times the NLL to the fixture's loss
  int compared = 0;
  for (const auto& c : oracle["cases"]) {
    const auto& p = c["params"];
    const auto& in = oracle["inputs"][c["inputs"].get<std::string>()];
    const auto chosen = tensor_of(in["policy_chosen_logps"]), rejected = tensor_of(in["policy_rejected_logps"]);
    losses::CpoSettings s;
    s.beta = p["beta"];
    s.loss_type = p["loss_type"];
    s.label_smoothing = p["label_smoothing"];
    s.simpo_gamma = p["simpo_gamma"];
    const std::string options = fmt::format("beta = {}\nlabel_smoothing = {}\nsimpo_gamma = {}\n", s.beta,
                                            s.label_smoothing, s.simpo_gamma);
    SCOPED_TRACE(s.loss_type + "\n" + options);
    const auto terms = losses::cpo_loss(s, chosen, rejected);
    expect_all_within(terms.losses, c["losses"], "losses");
    expect_all_within(terms.chosen_rewards, c["chosen_rewards"], "chosen_rewards");
    expect_all_within(terms.rejected_rewards, c["rejected_rewards"], "rejected_rewards");

    const bool averaged = s.loss_type == "ipo" || s.loss_type == "simpo";
    EXPECT_EQ(c["inputs"] == "averaged", averaged);
    LoadedLoss cpo("cpo", options + fmt::format("loss_type = \"{}\"\n", s.loss_type));
    EXPECT_EQ(cpo.loss->requirements().reduction, averaged ? LogProbReduction::mean : LogProbReduction::sum);
    EXPECT_TRUE(cpo.loss->requirements().policy_nll);
    EXPECT_FALSE(cpo.loss->requirements().reference_model);
    LossBatch batch;
    batch.chosen = scores(chosen);
    batch.chosen.nll = torch::full_like(chosen, nll);
    batch.rejected = scores(rejected);
    auto result = cpo.loss->compute(batch);
    EXPECT_TRUE(within_1e6_relative(value(result.loss), c["loss"].get<double>() + nll));
    auto m = metrics_of(result);
    EXPECT_TRUE(within_1e6_relative(m.at("nll_loss"), nll));
    EXPECT_TRUE(within_1e6_relative(m.at("rewards/margins"), mean_of(c["chosen_rewards"]) - mean_of(c["rejected_rewards"])));

    if (s.loss_type == "simpo") {
      // SimPO proper: cpo_alpha 0, no NLL asked for, logged as 0.
      LoadedLoss simpo("simpo", options);
      EXPECT_FALSE(simpo.loss->requirements().policy_nll);
      EXPECT_EQ(simpo.loss->requirements().reduction, LogProbReduction::mean);
      batch.chosen.nll = torch::Tensor();
      result = simpo.loss->compute(batch);
      EXPECT_TRUE(within_1e6_relative(value(result.loss), c["loss"]));
      m = metrics_of(result);
      EXPECT_EQ(m.at("nll_loss"), 0.0);
      EXPECT_TRUE(within_1e6_relative(m.at("rewards/chosen"), mean_of(c["chosen_rewards"])));
    }
    ++compared;
  }
  EXPECT_EQ(compared, 14);
}

// ------------------------------------------------------------------------------------------------
// KTO: kto_losses.json (KTOTrainer.kto_loss)
// ------------------------------------------------------------------------------------------------

TEST(KtoLoss, EveryTrlFixtureCaseMatches) {
  const json oracle = load_json("tests/fixtures/oracle/kto_losses.json");
  const auto& in = oracle["inputs"];
  const auto pc = tensor_of(in["policy_chosen_logps"]), pr = tensor_of(in["policy_rejected_logps"]);
  const auto rc = tensor_of(in["reference_chosen_logps"]), rr = tensor_of(in["reference_rejected_logps"]);
  const auto pkl = tensor_of(in["policy_KL_logps"]);
  // The batch interleaves desirable and undesirable examples: d u d d u d u d.
  const std::vector<bool> desirable = {true, false, true, true, false, true, false, true};
  auto interleave = [&](const torch::Tensor& good, const torch::Tensor& bad) {
    std::vector<torch::Tensor> rows;
    std::int64_t g = 0, u = 0;
    for (bool d : desirable) rows.push_back(d ? good[g++] : bad[u++]);
    return torch::stack(rows);
  };
  std::vector<std::int64_t> labels(desirable.begin(), desirable.end());
  int compared = 0, through_plugin = 0;
  for (const auto& c : oracle["cases"]) {
    const auto& p = c["params"];
    losses::KtoSettings s;
    s.beta = p["beta"];
    s.loss_type = p["loss_type"];
    s.desirable_weight = p["desirable_weight"];
    s.undesirable_weight = p["undesirable_weight"];
    const bool calculate_kl = p["calculate_KL"];
    const auto rkl = calculate_kl ? tensor_of(in[p["reference_KL_input"].get<std::string>()]) : torch::Tensor();
    SCOPED_TRACE(p.dump());
    const auto terms = losses::kto_loss(s, pc, pr, calculate_kl ? pkl : torch::Tensor(), rc, rr, rkl);
    expect_all_within(terms.losses, c["losses"], "losses");
    expect_all_within(terms.chosen_rewards, c["chosen_rewards"], "chosen_rewards");
    expect_all_within(terms.rejected_rewards, c["rejected_rewards"], "rejected_rewards");
    // TRL's kl is a 0-d tensor, or torch.zeros(1) without calculate_KL (stored as a list).
    const double kl = c["kl"].is_array() ? c["kl"][0].get<double>() : c["kl"].get<double>();
    EXPECT_TRUE(within_1e6_relative(value(terms.kl.reshape({})), kl));
    EXPECT_TRUE(within_1e6_relative(value(terms.losses.nanmean()), c["loss"]));
    ++compared;

    // The plugin computes the KL term exactly when TRL's trainer does (calculate_KL = loss_type
    // kto), so the fixture's kto-without-KL cases are checked on the formula alone.
    if (calculate_kl != (s.loss_type == "kto")) continue;
    LoadedLoss plugin("kto", fmt::format("beta = {}\nloss_type = \"{}\"\ndesirable_weight = {}\nundesirable_weight = {}\n",
                                         s.beta, s.loss_type, s.desirable_weight, s.undesirable_weight));
    const auto req = plugin.loss->requirements();
    EXPECT_TRUE(req.reference_model);
    EXPECT_EQ(req.examples, ExampleLayout::unpaired);
    EXPECT_EQ(req.reduction, LogProbReduction::sum);
    EXPECT_EQ(req.mismatched_completions, calculate_kl);
    LossBatch batch;
    batch.completions = scores(interleave(pc, pr));
    batch.reference_completions = scores(interleave(rc, rr));
    batch.desirable = torch::tensor(labels).to(torch::kBool);
    if (calculate_kl) {
      batch.kl = scores(pkl);
      batch.reference_kl = scores(rkl);
    }
    const auto result = plugin.loss->compute(batch);
    EXPECT_TRUE(within_1e6_relative(value(result.loss), c["loss"]));
    const auto m = metrics_of(result);
    EXPECT_TRUE(within_1e6_relative(m.at("kl"), kl));
    EXPECT_TRUE(within_1e6_relative(m.at("rewards/chosen_sum"), value(tensor_of(c["chosen_rewards"]).sum())));
    EXPECT_TRUE(within_1e6_relative(m.at("rewards/rejected_sum"), value(tensor_of(c["rejected_rewards"]).sum())));
    EXPECT_TRUE(within_1e6_relative(m.at("logps/chosen_sum"), value(pc.sum())));
    EXPECT_TRUE(within_1e6_relative(m.at("logps/rejected_sum"), value(pr.sum())));
    EXPECT_EQ(m.at("count/chosen"), 5.0);
    EXPECT_EQ(m.at("count/rejected"), 3.0);
    ++through_plugin;
  }
  EXPECT_EQ(compared, 16);
  EXPECT_EQ(through_plugin, 12);
}

TEST(KtoLoss, BatchWithoutUndesirableExamplesLogsOnlyChosen) {
  LoadedLoss plugin("kto", "loss_type = \"apo_zero_unpaired\"\n");
  LossBatch batch;
  batch.completions = scores(torch::tensor({-3.0, -4.0}, torch::kDouble));
  batch.reference_completions = scores(torch::tensor({-3.5, -3.0}, torch::kDouble));
  batch.desirable = torch::tensor({true, true});
  const auto m = metrics_of(plugin.loss->compute(batch));
  EXPECT_EQ(m.count("rewards/chosen_sum"), 1u);
  EXPECT_EQ(m.count("rewards/rejected_sum"), 0u);
  EXPECT_EQ(m.count("count/rejected"), 0u);
  EXPECT_EQ(m.at("kl"), 0.0);
}

// ------------------------------------------------------------------------------------------------
// SFT
// ------------------------------------------------------------------------------------------------

TEST(SftLoss, IsTheMeanOverEveryCompletionTokenOfTheBatch) {
  LoadedLoss plugin("sft", "");
  const auto req = plugin.loss->requirements();
  EXPECT_EQ(req.examples, ExampleLayout::single);
  EXPECT_FALSE(req.reference_model);
  EXPECT_EQ(req.reduction, LogProbReduction::sum);
  LossBatch batch;
  batch.completions.logps = torch::tensor({-3.0, -10.0}, torch::kDouble);
  batch.completions.token_counts = torch::tensor({2, 5}, torch::kLong);
  // 13 nats over 7 tokens, not (1.5 + 2) / 2.
  EXPECT_DOUBLE_EQ(value(plugin.loss->compute(batch).loss), 13.0 / 7.0);
}

// ------------------------------------------------------------------------------------------------
// The Python reference of TRL's formulas (tests/reference/trl_losses.py)
// ------------------------------------------------------------------------------------------------

CompletionScores scores_from(const json& j) {
  CompletionScores s;
  s.logps = tensor_of(j["logps"]);
  s.token_counts = tensor_of(j["token_counts"]);
  s.mean_logits = tensor_of(j["mean_logits"]);
  if (j.contains("nll")) s.nll = tensor_of(j["nll"]);
  if (j.contains("nll_token_counts")) s.nll_token_counts = tensor_of(j["nll_token_counts"]);
  return s;
}

TEST(LossReference, EveryPythonReferenceCaseMatches) {
  const json reference = load_json("tests/fixtures/loss_reference/trl_reference_cases.json");
  int compared = 0;
  for (const auto& c : reference["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    LoadedLoss plugin(c["method"], c["options"]);
    int step = 0;
    for (const auto& s : c["steps"]) {  // one plugin object across the steps: its state carries over
      SCOPED_TRACE("step " + std::to_string(step++));
      const auto& b = s["batch"];
      LossBatch batch;
      if (b.contains("chosen")) batch.chosen = scores_from(b["chosen"]);
      if (b.contains("rejected")) batch.rejected = scores_from(b["rejected"]);
      if (b.contains("reference_chosen")) batch.reference_chosen = scores_from(b["reference_chosen"]);
      if (b.contains("reference_rejected")) batch.reference_rejected = scores_from(b["reference_rejected"]);
      if (b.contains("completions")) batch.completions = scores_from(b["completions"]);
      const auto req = plugin.loss->requirements();
      EXPECT_EQ(req.reference_model, b.contains("reference_chosen"));
      EXPECT_EQ(req.policy_nll, b.contains("chosen") && b["chosen"].contains("nll"));
      const auto result = plugin.loss->compute(batch);
      EXPECT_TRUE(within_1e6_relative(value(result.loss), s["loss"]));
      const auto m = metrics_of(result);
      std::set<std::string> expected_names;
      for (const auto& [name, v] : s["metrics"].items()) {
        expected_names.insert(name);
        ASSERT_EQ(m.count(name), 1u) << name;
        EXPECT_TRUE(within_1e6_relative(m.at(name), v.get<double>())) << name;
      }
      std::set<std::string> names;
      for (const auto& [name, v] : m) names.insert(name);
      EXPECT_EQ(names, expected_names);
      ++compared;
    }
  }
  EXPECT_EQ(compared, 25);
}

// ------------------------------------------------------------------------------------------------
// Options: refused with the recipe's file and line
// ------------------------------------------------------------------------------------------------

// The DiagnosticError a plugin's factory throws for `options`, located in the recipe.
Diagnostic factory_error(const std::string& name, const std::string& options) {
  testing::RecipeFixture fixture("[method]\nname = \"" + name + "\"\n" + options);
  try {
    fixture.registry.create<Loss>(*fixture.recipe.plugins.at("method"), fixture.recipe.section("method"));
  } catch (const DiagnosticError& e) {
    EXPECT_EQ(e.diagnostics().size(), 1u) << e.format();
    auto d = e.diagnostics().front();
    EXPECT_EQ(d.where.file, (fixture.dir.path() / "recipe.toml").string()) << d.format();
    return d;
  }
  ADD_FAILURE() << "the " << name << " plugin accepted:\n" << options;
  return {};
}

TEST(LossOptions, MisspeltDpoLossTypeGetsDidYouMeanAtItsLine) {
  const auto d = factory_error("dpo", "beta = 0.1\nloss_type = [\"sigmoid\", \"sigmod\"]\n");
  EXPECT_EQ(d.where.line, 4);
  EXPECT_NE(d.message.find("'sigmod' is not one of"), std::string::npos) << d.format();
  EXPECT_EQ(d.help, "did you mean 'sigmoid'?");
  EXPECT_NE(d.format().find("recipe.toml:4:"), std::string::npos) << d.format();
}

TEST(LossOptions, LossWeightsOfTheWrongLengthAreRefused) {
  const auto d = factory_error("dpo", "loss_type = [\"sigmoid\", \"bco_pair\", \"sft\"]\nloss_weights = [0.8, 0.2]\n");
  EXPECT_EQ(d.where.line, 4);
  EXPECT_EQ(d.message, "[method] loss_weights: 2 weights for 3 loss types");
  EXPECT_EQ(d.help, "give one weight per loss type, in the same order");
}

TEST(LossOptions, KtoPairPointsAtTheKtoMethod) {
  const auto d = factory_error("dpo", "loss_type = [\"kto_pair\"]\n");
  EXPECT_EQ(d.where.line, 3);
  EXPECT_NE(d.help.find("name = \"kto\""), std::string::npos) << d.format();
}

TEST(LossOptions, EmptyLossTypeAndWpoWeightingAreRefused) {
  EXPECT_EQ(factory_error("dpo", "loss_type = []\n").where.line, 3);
  EXPECT_EQ(factory_error("dpo", "use_weighting = true\n").where.line, 3);
}

TEST(LossOptions, HostChecksChoicesAndRanges) {
  // String choices and numeric ranges are checked by the host's validator from the declarations.
  auto refused = [](const std::string& text) -> std::vector<Diagnostic> {
    try {
      testing::RecipeFixture fixture(text);
    } catch (const RecipeInvalid& e) {
      return e.diagnostics();
    }
    ADD_FAILURE() << "accepted:\n" << text;
    return {};
  };
  auto d = refused("[method]\nname = \"kto\"\nloss_type = \"kt\"\n");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].where.line, 3);
  EXPECT_EQ(d[0].help, "did you mean 'kto'?");
  d = refused("[method]\nname = \"dpo\"\nlabel_smoothing = 0.5\n");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].where.line, 3);
  d = refused("[method]\nname = \"cpo\"\nloss_type = \"simpo2\"\n");
  ASSERT_EQ(d.size(), 1u);
  d = refused("[method]\nname = \"dpo\"\nbeta = 0\n");
  ASSERT_EQ(d.size(), 1u);
}

// ------------------------------------------------------------------------------------------------
// PPO against the Python reference of TRL's PPOTrainer (tests/reference/trl_ppo.py)
// ------------------------------------------------------------------------------------------------

// An online method created as a recipe creates it.
using LoadedOnlineMethod = LoadedMethod<OnlineMethod>;

std::map<std::string, double> metrics_of(const std::vector<std::pair<std::string, torch::Tensor>>& metrics) {
  LossResult result;
  result.metrics = metrics;
  return metrics_of(result);
}

// Everything goes through the plugin's OnlineMethod interface (estimate, then loss); the per-token
// intermediates the interface keeps inside (KL, rewards) are checked on the formulas it calls.
TEST(PpoMethod, EveryPythonReferenceCaseMatches) {
  const json reference = load_json("tests/fixtures/loss_reference/trl_ppo_cases.json");
  int compared = 0;
  for (const auto& c : reference["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    LoadedOnlineMethod plugin("ppo", c["options"]);
    const auto* ppo = dynamic_cast<const losses::PpoMethod*>(plugin.method.get());
    ASSERT_NE(ppo, nullptr);
    const auto& s = ppo->settings();
    const std::int64_t n = c["n"], t = c["t"];
    auto nt = [&](const json& j) { return tensor_of(j).view({n, t}); };
    const auto lengths = torch::tensor(c["sequence_lengths"].get<std::vector<std::int64_t>>());
    std::vector<std::uint8_t> eos_flags;
    for (bool b : c["contains_eos"]) eos_flags.push_back(b);
    const auto contains_eos = torch::tensor(eos_flags).to(torch::kBool);

    // The rollout's estimate: the score with the EOS penalty, per-token rewards, GAE.
    const auto scores = losses::penalize_missing_eos(tensor_of(c["raw_scores"]), contains_eos, s);
    expect_all_within(scores, c["scores"], "scores");
    const auto rewards = losses::ppo_rewards(nt(c["logprobs"]), nt(c["ref_logprobs"]), scores, lengths, s);
    expect_all_within(rewards.kl, c["kl"], "kl");
    expect_all_within(rewards.non_score_reward, c["non_score_reward"], "non_score_reward");
    expect_all_within(rewards.rewards, c["rewards"], "rewards");
    Rollouts rollouts{.sequence_lengths = lengths, .contains_eos = contains_eos, .logps = nt(c["logprobs"]),
                      .reference_logps = nt(c["ref_logprobs"]), .values = nt(c["values"]),
                      .scores = tensor_of(c["raw_scores"])};
    const auto estimate = plugin.method->estimate(rollouts);
    expect_all_within(estimate.advantages, c["advantages"], "advantages");
    expect_all_within(estimate.returns, c["returns"], "returns");
    // TRL's rollout statistics, from the reference's per-token KL and non-score rewards.
    const auto m_rollout = metrics_of(estimate.metrics);
    auto row_sum_mean = [&](const json& j) { return nt(j).sum(1).mean().item<double>(); };
    const double scores_mean = tensor_of(c["scores"]).mean().item<double>();
    EXPECT_TRUE(within_1e6_relative(m_rollout.at("objective/kl"), row_sum_mean(c["kl"])));
    EXPECT_TRUE(within_1e6_relative(m_rollout.at("objective/non_score_reward"), row_sum_mean(c["non_score_reward"])));
    EXPECT_TRUE(within_1e6_relative(m_rollout.at("objective/rlhf_reward"), row_sum_mean(c["non_score_reward"]) + scores_mean));
    EXPECT_TRUE(within_1e6_relative(m_rollout.at("objective/scores"), scores_mean));
    EXPECT_EQ(m_rollout.at("val/num_eos_tokens"), static_cast<double>(contains_eos.sum().item<std::int64_t>()));

    // One minibatch through the plugin, from the reference's rollout.
    OnlineMinibatch r;
    r.logps = nt(c["new_logprobs"]).requires_grad_();
    r.values = nt(c["new_values"]).requires_grad_();
    r.old_logps = nt(c["logprobs"]);
    r.old_values = nt(c["values"]);
    r.advantages = nt(c["advantages"]);
    r.returns = nt(c["returns"]);
    r.sequence_lengths = lengths;
    r.entropy = nt(c["entropy"]);
    const auto result = plugin.method->loss(r);
    EXPECT_TRUE(within_1e6_relative(value(result.loss), c["loss"]));
    const auto m = metrics_of(result);
    EXPECT_EQ(m.size(), c["metrics"].size());
    for (const auto& [name, v] : c["metrics"].items()) {
      ASSERT_EQ(m.count(name), 1u) << name;
      EXPECT_TRUE(within_1e6_relative(m.at(name), v.get<double>())) << name;
    }
    result.loss.backward();
    expect_all_within(r.logps.grad(), c["grad_logprobs"], "d loss / d logps");
    expect_all_within(r.values.grad(), c["grad_values"], "d loss / d values");
    ++compared;
  }
  EXPECT_EQ(compared, 3);
}

// tests/fixtures/oracle/ppo.json: TRL 0.19.1's own statements of PPOTrainer.train and trl.core's
// masked helpers, executed on fixed rollouts (B 4, T 10) for k1/k3 x whitening x (gamma, lam).
TEST(PpoMethod, EveryTrlFixtureCaseMatches) {
  const json oracle = load_json("tests/fixtures/oracle/ppo.json");
  auto matrix = [](const json& rows) {
    std::vector<double> flat;
    std::int64_t n = 0, t = 0;
    for (const auto& row : rows) {
      ++n, t = static_cast<std::int64_t>(row.size());
      for (const auto& x : row) flat.push_back(x.is_boolean() ? (x.get<bool>() ? 1.0 : 0.0) : x.get<double>());
    }
    return torch::tensor(flat, torch::kDouble).view({n, t});
  };
  auto flat = [](const json& rows) {
    json out = json::array();
    for (const auto& row : rows)
      for (const auto& x : row) out.push_back(x);
    return out;
  };
  const auto& h = oracle["masked_helpers"];
  const auto values = matrix(h["inputs"]["values"]), mask = matrix(h["inputs"]["mask"]).to(torch::kBool);
  EXPECT_TRUE(within_1e6_relative(value(losses::masked_mean(values, mask)), h["masked_mean"]));
  EXPECT_TRUE(within_1e6_relative(value(losses::masked_var(values, mask, true)), h["masked_var_unbiased"]));
  EXPECT_TRUE(within_1e6_relative(value(losses::masked_var(values, mask, false)), h["masked_var_biased"]));
  expect_all_within(losses::masked_whiten(values, mask, true), flat(h["masked_whiten_shift_mean_true"]), "whiten");
  expect_all_within(losses::masked_whiten(values, mask, false), flat(h["masked_whiten_shift_mean_false"]), "whiten, mean kept");

  const auto& in = oracle["rollout_inputs"];
  const auto lengths = torch::tensor(in["sequence_lengths"].get<std::vector<std::int64_t>>());
  int compared = 0;
  for (const auto& c : oracle["cases"]) {
    const auto& p = c["params"];
    SCOPED_TRACE(p.dump());
    losses::PpoSettings s;
    s.kl_coef = p["kl_coef"], s.kl_estimator = p["kl_estimator"], s.whiten_rewards = p["whiten_rewards"];
    s.gamma = p["gamma"], s.lam = p["lam"], s.cliprange = p["cliprange"], s.cliprange_value = p["cliprange_value"];
    s.vf_coef = p["vf_coef"];
    losses::PpoMethod ppo(s);
    OnlineMethod& method = ppo;
    const auto& gae_out = c["gae_block_outputs"];
    const auto rewards = losses::ppo_rewards(matrix(in["logprobs"]), matrix(in["ref_logprobs"]), tensor_of(in["scores"]),
                                             lengths, s);
    expect_all_within(rewards.kl, flat(gae_out["kl"]), "kl");
    expect_all_within(rewards.non_score_reward, flat(gae_out["non_score_reward"]), "non_score_reward");
    expect_all_within(rewards.rewards, flat(gae_out["rewards"]), "rewards");
    // No missing-EOS penalty is set: every completion's score enters as it is.
    const auto estimate = method.estimate({.sequence_lengths = lengths, .logps = matrix(in["logprobs"]),
                                           .reference_logps = matrix(in["ref_logprobs"]), .values = matrix(in["values"]),
                                           .scores = tensor_of(in["scores"])});
    expect_all_within(estimate.advantages, flat(gae_out["advantages"]), "advantages");
    expect_all_within(estimate.returns, flat(gae_out["returns"]), "returns");

    const auto& li = c["loss_block_inputs"];
    const auto& lo = c["loss_block_outputs"];
    OnlineMinibatch batch;
    batch.logps = matrix(li["new_logprobs"]);
    batch.values = matrix(li["vpred"]);
    batch.old_logps = matrix(li["mb_logprobs"]);
    batch.old_values = matrix(li["mb_values"]);
    batch.advantages = matrix(li["mb_advantage"]);
    batch.returns = matrix(li["mb_return"]);
    batch.sequence_lengths = lengths;
    const auto result = method.loss(batch);
    EXPECT_TRUE(within_1e6_relative(value(result.loss), lo["loss"]));
    const auto m = metrics_of(result);
    EXPECT_TRUE(within_1e6_relative(m.at("loss/policy_avg"), lo["pg_loss"]));
    EXPECT_TRUE(within_1e6_relative(m.at("loss/value_avg"), lo["vf_loss"]));
    EXPECT_TRUE(within_1e6_relative(m.at("val/clipfrac_avg"), lo["vf_clipfrac"]));
    ++compared;
  }
  EXPECT_EQ(compared, 8);
}

TEST(PpoMethod, DeclaresItsRolloutsAndEveryModel) {
  LoadedOnlineMethod plugin("ppo", "response_length = 128\nnum_ppo_epochs = 2\nnum_mini_batches = 4\ntemperature = 0.9\n");
  EXPECT_EQ(plugin.fixture.recipe.plugins.at("method")->kind, PluginKind::online_method);
  const auto spec = plugin.method->spec();
  EXPECT_EQ(spec.completions_per_prompt, 1);
  EXPECT_EQ(spec.max_completion_tokens, 128);
  EXPECT_EQ(spec.epochs, 2);
  EXPECT_EQ(spec.mini_batches, 4);
  EXPECT_DOUBLE_EQ(spec.temperature, 0.9);
  EXPECT_TRUE(spec.reference_model);
  EXPECT_TRUE(spec.reward_model);
  EXPECT_TRUE(spec.value_model);
  // Empty rollouts and mini-batches: a clear error, not a crash.
  EXPECT_THROW(plugin.method->estimate(Rollouts{}), std::invalid_argument);
  EXPECT_THROW(plugin.method->loss(OnlineMinibatch{}), std::invalid_argument);
}

}  // namespace
}  // namespace alignkit
