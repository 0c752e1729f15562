#include <alignkit/logprobs.hpp>

#include <algorithm>
#include <stdexcept>

#include <torch/autograd.h>

namespace alignkit {

CompletionBatch make_completion_batch(const std::vector<std::vector<std::int64_t>>& prompts,
                                      const std::vector<std::vector<std::int64_t>>& completions, std::int64_t pad_id) {
  if (prompts.size() != completions.size())
    throw std::invalid_argument("make_completion_batch: as many prompts as completions are needed");
  const auto n = static_cast<std::int64_t>(prompts.size());
  std::int64_t t = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    if (completions[i].empty()) throw std::invalid_argument("make_completion_batch: a completion is empty");
    t = std::max<std::int64_t>(t, static_cast<std::int64_t>(prompts[i].size() + completions[i].size()));
  }
  CompletionBatch batch;
  batch.input_ids = torch::full({n, t}, pad_id, torch::kInt64);
  batch.attention_mask = torch::zeros({n, t}, torch::kInt64);
  batch.completion_mask = torch::zeros({n, t}, torch::kInt64);
  auto ids = batch.input_ids.accessor<std::int64_t, 2>();
  auto attention = batch.attention_mask.accessor<std::int64_t, 2>();
  auto completion = batch.completion_mask.accessor<std::int64_t, 2>();
  for (std::int64_t i = 0; i < n; ++i) {
    std::int64_t col = 0;
    for (auto id : prompts[i]) ids[i][col] = id, attention[i][col++] = 1;
    for (auto id : completions[i]) ids[i][col] = id, attention[i][col] = 1, completion[i][col++] = 1;
  }
  return batch;
}

namespace {

// log p(label) a chunk of positions at a time, forward and backward, so only one chunk's
// [chunk, V] logits exist at once in either direction. Backward recomputes the chunk's logits
// (unless there is a single chunk, whose softmax is kept): d logp / d logits = onehot(label) -
// softmax(logits).
class ChunkedLogProbs : public torch::autograd::Function<ChunkedLogProbs> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& hidden,
                               const torch::Tensor& weight, const torch::Tensor& labels, std::int64_t chunk,
                               torch::Tensor* logit_sums) {
    ctx->save_for_backward({hidden, weight, labels});
    ctx->saved_data["chunk"] = chunk;
    const auto m = hidden.size(0);
    auto logps = torch::empty({m}, hidden.options().dtype(torch::kFloat32));
    auto sums = torch::empty({m}, hidden.options().dtype(torch::kFloat32));
    for (std::int64_t start = 0; start < m; start += chunk) {
      const auto end = std::min(m, start + chunk);
      // Logits in the compute dtype, then fp32, as transformers' `logits.float()`.
      const auto logits = torch::matmul(hidden.slice(0, start, end), weight.t()).to(torch::kFloat32);
      const auto label = labels.slice(0, start, end).unsqueeze(-1);
      const auto lse = torch::logsumexp(logits, -1);
      logps.slice(0, start, end).copy_(logits.gather(-1, label).squeeze(-1) - lse);
      sums.slice(0, start, end).copy_(logits.sum(-1));
      // A single chunk keeps its softmax for backward (the memory the chunk bound allows anyway),
      // sparing backward the recomputation of the logits.
      if (end - start == m) ctx->saved_data["softmax"] = (logits - lse.unsqueeze(-1)).exp_();
    }
    *logit_sums = sums;
    return logps;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const auto &hidden = saved[0], &weight = saved[1], &labels = saved[2];
    const auto chunk = ctx->saved_data["chunk"].toInt();
    const auto& grad = grad_outputs[0];
    const bool want_hidden = ctx->needs_input_grad(0), want_weight = ctx->needs_input_grad(1);
    torch::Tensor grad_hidden, grad_weight;
    if (want_hidden) grad_hidden = torch::empty_like(hidden);
    if (want_weight) grad_weight = torch::zeros(weight.sizes(), weight.options().dtype(torch::kFloat32));
    const auto m = hidden.size(0);
    for (std::int64_t start = 0; start < m; start += chunk) {
      const auto end = std::min(m, start + chunk);
      const auto h = hidden.slice(0, start, end);
      auto grad_logits = ctx->saved_data.count("softmax")
                             ? ctx->saved_data["softmax"].toTensor().neg()
                             : torch::softmax(torch::matmul(h, weight.t()).to(torch::kFloat32), -1).neg_();
      grad_logits.scatter_add_(-1, labels.slice(0, start, end).unsqueeze(-1),
                               torch::ones({end - start, 1}, grad_logits.options()));
      grad_logits.mul_(grad.slice(0, start, end).unsqueeze(-1));
      const auto g = grad_logits.to(weight.scalar_type());
      if (want_hidden) grad_hidden.slice(0, start, end).copy_(torch::matmul(g, weight));
      if (want_weight) grad_weight.add_(torch::matmul(g.t(), h).to(torch::kFloat32));
    }
    if (want_weight) grad_weight = grad_weight.to(weight.scalar_type());
    return {grad_hidden, grad_weight, torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

}  // namespace

TokenLogProbs token_logprobs(const torch::Tensor& hidden, const torch::Tensor& weight, const torch::Tensor& labels,
                             std::int64_t chunk) {
  const auto m = hidden.size(0);
  if (chunk <= 0) chunk = std::max<std::int64_t>(m, 1);
  if (m == 0) {
    const auto empty = torch::zeros({0}, hidden.options().dtype(torch::kFloat32));
    return {empty, empty};
  }
  torch::Tensor sums;
  auto logps = ChunkedLogProbs::apply(hidden, weight, labels, chunk, &sums);
  return {logps, sums};
}

PackedRow pack_rows(const CompletionBatch& batch) {
  const auto real = batch.attention_mask.to(torch::kBool);
  const auto n = real.size(0), t = real.size(1);
  const auto int64 = batch.input_ids.options();
  auto packed = [&](const torch::Tensor& values) { return values.expand({n, t}).masked_select(real).unsqueeze(0); };
  // A token's column is its position on the padded path, so rope sees the same angles.
  return {batch.input_ids.masked_select(real).unsqueeze(0), packed(torch::arange(1, n + 1, int64).unsqueeze(1)),
          packed(torch::arange(t, int64).unsqueeze(0))};
}

namespace {

// The hidden states [M, H] of the positions `predicts` [N, T - 1] selects, from one forward of
// the packed row. A token's place in it is the count of real tokens before it in row-major order.
torch::Tensor packed_states(CausalLM& model, const CompletionBatch& batch, const torch::Tensor& predicts) {
  const auto real = batch.attention_mask.to(torch::kBool);
  if (predicts.logical_and(real.slice(1, 0, -1).logical_not()).any().item<bool>())
    throw std::invalid_argument("score_completions: packing needs each predicting position to be a real token");
  const auto row = pack_rows(batch);
  const auto hidden = model.hidden_states(row.input_ids, row.segment_ids, row.position_ids).squeeze(0);
  const auto slots = (real.flatten().cumsum(0) - 1).view(real.sizes());
  return hidden.index_select(0, slots.slice(1, 0, -1).masked_select(predicts));
}

}  // namespace

CompletionScores score_completions(CausalLM& model, const CompletionBatch& batch, LogProbReduction reduction,
                                   std::int64_t chunk, bool nll_over_prompt) {
  return score_completions(model, batch,
                           ScoreOptions{.reduction = reduction, .chunk = chunk, .nll_over_prompt = nll_over_prompt});
}

CompletionScores score_completions(CausalLM& model, const CompletionBatch& batch, const ScoreOptions& options) {
  const auto [reduction, chunk, nll_over_prompt, packing] = options;
  // Position t predicts token t + 1: keep the positions whose next token is a completion token
  // (or, for an NLL over the prompt too, any attended token).
  const auto completion = batch.completion_mask.slice(1, 1).to(torch::kBool);
  const auto predicts = nll_over_prompt ? batch.attention_mask.slice(1, 1).to(torch::kBool) : completion;
  const auto rows = torch::arange(batch.input_ids.size(0), batch.input_ids.options())
                        .unsqueeze(1)
                        .expand_as(predicts)
                        .masked_select(predicts);
  torch::Tensor states;
  if (packing) {
    states = packed_states(model, batch, predicts);
  } else {
    const auto hidden = model.hidden_states(batch.input_ids, batch.attention_mask, torch::Tensor());
    states = hidden.slice(1, 0, -1).masked_select(predicts.unsqueeze(-1)).view({-1, hidden.size(-1)});
  }
  const auto labels = batch.input_ids.slice(1, 1).masked_select(predicts);
  const auto tokens = token_logprobs(states, model.output_weight(), labels, chunk);

  const auto n = batch.input_ids.size(0);
  const auto zeros = torch::zeros({n}, tokens.logps.options());
  // Which of the computed positions are completion positions.
  const auto in_completion = nll_over_prompt ? completion.masked_select(predicts).to(tokens.logps.scalar_type())
                                             : torch::ones_like(tokens.logps);
  CompletionScores scores;
  scores.token_counts = zeros.index_add(0, rows, in_completion);
  const auto summed = zeros.index_add(0, rows, tokens.logps * in_completion);
  scores.logps = reduction == LogProbReduction::sum ? summed : summed / scores.token_counts;
  const auto vocab = static_cast<double>(model.output_weight().size(0));
  scores.mean_logits =
      zeros.index_add(0, rows, tokens.logit_sums.detach() * in_completion) / (scores.token_counts * vocab);
  if (nll_over_prompt) {
    scores.nll_token_counts = zeros.index_add(0, rows, torch::ones_like(tokens.logps));
    scores.nll = -zeros.index_add(0, rows, tokens.logps) / scores.nll_token_counts;
  } else {
    scores.nll = -summed / scores.token_counts;
  }
  return scores;
}

}  // namespace alignkit
