// group_reinforce: REINFORCE with a group baseline, as an online method (alignkit/online_method.hpp).
//
// For each prompt the host samples G = num_generations completions and scores them. The
// advantage of completion i of a group is its reward minus the group's mean reward (the
// baseline; no reference model, no value model), and the loss of a mini-batch is
//
//   loss = -mean_i( A_i * sum_t logp_i,t )     over the completions' real tokens t,
//
// the policy-gradient estimate of Williams (1992) with the variance-reducing baseline that GRPO
// and RLOO refine. A completion with no reward (NaN: no reward plugin applied to it) gets
// advantage 0. An example for docs/plugin-guide.md, built against the installed SDK by the tests.
#include <cstdint>
#include <memory>

#include <alignkit/online_method.hpp>
#include <alignkit/plugin.hpp>
#include <alignkit/recipe_section.hpp>

namespace {

const alignkit::OptionSpec kOptions[] = {
    {.key = "num_generations", .type = alignkit::OptionType::integer, .default_value = "4",
     .doc = "Completions sampled per prompt (the group).", .min = 2},
    {.key = "max_completion_length", .type = alignkit::OptionType::integer, .default_value = "64",
     .doc = "Tokens sampled at most per completion.", .min = 1},
    {.key = "temperature", .type = alignkit::OptionType::floating, .default_value = "1.0",
     .doc = "Sampling temperature.", .min = 0, .min_exclusive = true},
};

class GroupReinforce final : public alignkit::OnlineMethod {
 public:
  explicit GroupReinforce(const alignkit::RecipeSection& options)
      : group_(options.get_int("num_generations")),
        tokens_(options.get_int("max_completion_length")),
        temperature_(options.get_float("temperature")) {}

  alignkit::OnlineSpec spec() const override {
    alignkit::OnlineSpec spec;
    spec.completions_per_prompt = group_;
    spec.max_completion_tokens = tokens_;
    spec.temperature = temperature_;
    return spec;  // one epoch, one mini-batch; no reference, reward or value model
  }

  alignkit::RolloutEstimate estimate(const alignkit::Rollouts& rollouts) override {
    const auto rewards = rollouts.scores.to(torch::kFloat32).view({-1, group_});
    const auto scorable = rewards.isnan().logical_not();
    const auto known = rewards.nan_to_num(0.0);
    const auto count = scorable.sum(1, /*keepdim=*/true).clamp_min(1);
    const auto baseline = known.sum(1, /*keepdim=*/true) / count;
    const auto advantages = torch::where(scorable, known - baseline, torch::zeros_like(known)).view({-1});
    return {advantages, {}, {{"reward", known.sum() / scorable.sum().clamp_min(1)}}};
  }

  alignkit::LossResult loss(const alignkit::OnlineMinibatch& batch) override {
    const auto T = batch.logps.size(1);
    const auto positions = torch::arange(T, batch.sequence_lengths.options()).unsqueeze(0);
    const auto real = positions <= batch.sequence_lengths.unsqueeze(1);
    const auto sequence_logps = (batch.logps * real.to(batch.logps.scalar_type())).sum(1);
    alignkit::LossResult result;
    result.loss = -(batch.advantages.to(sequence_logps.scalar_type()) * sequence_logps).mean();
    return result;
  }

  std::vector<alignkit::MetricSpec> metrics() const override {
    return {{.name = "reward", .progress = alignkit::MetricProgress::train}};
  }

 private:
  std::int64_t group_, tokens_;
  double temperature_;
};

std::unique_ptr<GroupReinforce> make(const alignkit::RecipeSection& options) {
  return std::make_unique<GroupReinforce>(options);
}

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::online_method, "group_reinforce", "1.0.0",
                                            "REINFORCE with a group-mean baseline (an example online method)",
                                            kOptions))
