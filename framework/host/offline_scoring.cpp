#include "offline_scoring.hpp"

#include <alignkit/logprobs.hpp>
#include <alignkit/value_head.hpp>

namespace alignkit {

namespace {

CompletionScores slice(const CompletionScores& s, std::int64_t begin, std::int64_t end) {
  auto cut = [&](const torch::Tensor& t) { return t.defined() ? t.slice(0, begin, end) : t; };
  return {cut(s.logps), cut(s.token_counts), cut(s.mean_logits), cut(s.nll), cut(s.nll_token_counts), cut(s.scores)};
}

CompletionScores detached(const CompletionScores& s) {
  auto d = [](const torch::Tensor& t) { return t.defined() ? t.detach() : t; };
  return {d(s.logps), d(s.token_counts), d(s.mean_logits), d(s.nll), d(s.nll_token_counts), d(s.scores)};
}

}  // namespace

std::vector<ScoredCompletion> scored_completions(const LossRequirements& r) {
  std::vector<ScoredCompletion> out;
  if (r.examples == ExampleLayout::paired) {
    out.push_back({"completion", &TokenizedExample::completion, &LossBatch::chosen, &LossBatch::reference_chosen});
    out.push_back({"rejected", &TokenizedExample::rejected, &LossBatch::rejected, &LossBatch::reference_rejected});
  } else {
    out.push_back(
        {"completion", &TokenizedExample::completion, &LossBatch::completions, &LossBatch::reference_completions});
  }
  if (r.mismatched_completions)
    out.push_back({"mismatched", &TokenizedExample::mismatched_completion, &LossBatch::kl, &LossBatch::reference_kl,
                   /*policy_gradient=*/false});
  return out;
}

OfflineScoring::OfflineScoring(const LossRequirements& requirements, RunModels& models, torch::Device device,
                               std::int64_t pad_id, std::int64_t logprob_chunk, bool packing)
    : requirements_(requirements),
      models_(models),
      device_(device),
      pad_id_(pad_id),
      options_{.reduction = requirements.reduction, .chunk = logprob_chunk,
               .nll_over_prompt = requirements.nll_over_prompt, .packing = packing},
      completions_(scored_completions(requirements)) {
  std::vector<const ScoredCompletion*> together;
  for (const auto& c : completions_) {
    if (c.policy_gradient) together.push_back(&c);
    else forwards_.push_back({&c});
  }
  forwards_.insert(forwards_.begin(), together);
}

std::vector<CompletionScores> OfflineScoring::score(CausalLM& model, const std::vector<const ScoredCompletion*>& group,
                                                    const std::vector<TokenizedExample>& split,
                                                    const std::vector<std::size_t>& rows) const {
  std::vector<std::vector<std::int64_t>> prompts, completions;
  for (const auto* c : group)
    for (auto i : rows) prompts.push_back(split[i].prompt), completions.push_back(split[i].*(c->tokens));
  auto batch = make_completion_batch(prompts, completions, pad_id_);
  CompletionScores scores;
  if (requirements_.scoring == CompletionScoring::sequence_score) {
    // The score head at each row's last token that is not the pad id, as transformers pools by
    // the pad_token_id the saved config gets (RunModels::save_final).
    scores.scores = sequence_scores(model, batch.input_ids.to(device_), batch.attention_mask.to(device_), pad_id_).squeeze(-1);
  } else {
    batch.input_ids = batch.input_ids.to(device_);
    batch.attention_mask = batch.attention_mask.to(device_);
    batch.completion_mask = batch.completion_mask.to(device_);
    scores = score_completions(model, batch, options_);
  }
  const auto n = static_cast<std::int64_t>(rows.size());
  std::vector<CompletionScores> out;
  for (std::int64_t g = 0; g < static_cast<std::int64_t>(group.size()); ++g)
    out.push_back(group.size() == 1 ? scores : slice(scores, g * n, (g + 1) * n));
  return out;
}

LossBatch OfflineScoring::batch(const std::vector<TokenizedExample>& split, const std::vector<std::size_t>& rows,
                                const ReferenceLogps* cached) {
  LossBatch out;
  const bool reference = models_.reference_source() != ReferenceSource::none;
  for (const auto& group : forwards_) {
    {
      // The policy's scores of completions it does not train on carry no gradient (as TRL's KL pass).
      std::optional<torch::NoGradGuard> no_grad;
      if (!group.front()->policy_gradient) no_grad.emplace();
      const auto scores = score(models_.policy(), group, split, rows);
      for (std::size_t g = 0; g < group.size(); ++g)
        out.*(group[g]->policy) = group[g]->policy_gradient ? scores[g] : detached(scores[g]);
    }
    if (!reference) continue;
    if (cached) {
      for (const auto* c : group) {
        std::vector<double> values;
        for (auto i : rows) values.push_back(cached->at(c->name)[i]);
        (out.*(c->reference)).logps = torch::tensor(values, torch::kFloat64).to(torch::kFloat32).to(device_);
      }
      continue;
    }
    const auto scores = models_.with_reference([&](CausalLM& model) { return score(model, group, split, rows); });
    for (std::size_t g = 0; g < group.size(); ++g) out.*(group[g]->reference) = detached(scores[g]);
  }
  if (requirements_.examples == ExampleLayout::unpaired) {
    auto flags = torch::zeros({static_cast<std::int64_t>(rows.size())}, torch::kBool);
    for (std::size_t r = 0; r < rows.size(); ++r) flags[static_cast<std::int64_t>(r)] = split[rows[r]].desirable;
    out.desirable = flags.to(device_);
  }
  return out;
}

std::int64_t OfflineScoring::tokens(const std::vector<TokenizedExample>& split, const std::vector<std::size_t>& rows) const {
  std::int64_t n = 0;
  for (auto i : rows)
    for (const auto& c : completions_)
      if (c.policy_gradient) n += static_cast<std::int64_t>(split[i].prompt.size() + (split[i].*(c.tokens)).size());
  return n;
}

ReferenceLogps OfflineScoring::precompute(const std::vector<TokenizedExample>& split, std::size_t batch_size) {
  ReferenceLogps out;
  for (const auto& c : completions_) out[c.name].assign(split.size(), std::numeric_limits<double>::quiet_NaN());
  for (std::size_t begin = 0; begin < split.size(); begin += batch_size) {
    std::vector<std::size_t> rows;
    for (auto i = begin; i < std::min(split.size(), begin + batch_size); ++i) rows.push_back(i);
    for (const auto& group : forwards_) {
      const auto scores = models_.with_reference([&](CausalLM& model) { return score(model, group, split, rows); });
      for (std::size_t g = 0; g < group.size(); ++g) {
        const auto values = scores[g].logps.to(torch::kCPU).to(torch::kFloat64);
        for (std::size_t r = 0; r < rows.size(); ++r)
          out[group[g]->name][rows[r]] = values[static_cast<std::int64_t>(r)].item<double>();
      }
    }
  }
  return out;
}

}  // namespace alignkit
