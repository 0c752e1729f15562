#include <alignkit/generation.hpp>

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <ATen/CPUGeneratorImpl.h>
#include <fmt/format.h>

namespace alignkit {

void GenerationConfig::check() const {
  auto fail = [](const std::string& what) { throw std::invalid_argument(what); };
  if (max_new_tokens < 1) fail(fmt::format("max_new_tokens must be at least 1, not {}", max_new_tokens));
  if (!(temperature > 0)) fail(fmt::format("temperature must be > 0, not {}", temperature));
  if (top_k < 0) fail(fmt::format("top_k must be >= 0, not {}", top_k));
  if (!(top_p > 0 && top_p <= 1)) fail(fmt::format("top_p must be in (0, 1], not {}", top_p));
  for (const auto& s : stop_strings)
    if (s.empty()) fail("a stop string is empty");
}

const char* to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::eos: return "eos";
    case FinishReason::stop_string: return "stop_string";
    case FinishReason::length: return "length";
  }
  return "?";
}

torch::Tensor warp_logits(const torch::Tensor& logits, const GenerationConfig& config) {
  const double minus_inf = -std::numeric_limits<double>::infinity();
  auto scores = config.temperature != 1.0 ? logits / config.temperature : logits;
  if (config.top_k > 0 && config.top_k < scores.size(-1)) {
    const auto kth = std::get<0>(torch::topk(scores, config.top_k, -1)).select(-1, config.top_k - 1).unsqueeze(-1);
    scores = scores.masked_fill(scores < kth, minus_inf);
  }
  if (config.top_p < 1.0) {
    // Ascending sort; drop the low tail whose mass is at most 1 - top_p, always keeping the top.
    auto [sorted, order] = torch::sort(scores, -1, /*descending=*/false);
    auto remove = sorted.softmax(-1).cumsum(-1) <= (1 - config.top_p);
    remove.select(-1, remove.size(-1) - 1).fill_(false);
    scores = scores.masked_fill(remove.scatter(-1, order, remove), minus_inf);
  }
  return scores;
}

Generation generate(CausalLM& model, const std::vector<std::vector<std::int64_t>>& prompts,
                    const GenerationConfig& config, const Detokenize& detokenize) {
  config.check();
  if (prompts.empty()) return {};
  if (!config.stop_strings.empty() && !detokenize)
    throw std::invalid_argument("stop strings need a detokenizer");
  torch::NoGradGuard no_grad;
  const auto weight = model.output_weight();
  const auto device = weight.device();
  const auto b = static_cast<std::int64_t>(prompts.size());
  std::int64_t longest = 0;
  for (const auto& p : prompts) {
    if (p.empty()) throw std::invalid_argument("generate: a prompt is empty");
    longest = std::max<std::int64_t>(longest, static_cast<std::int64_t>(p.size()));
  }

  // Left-padded prompts, so every row's next token is predicted at the last column.
  auto ids = torch::full({b, longest}, config.pad_token_id, torch::kInt64);
  auto mask = torch::zeros({b, longest}, torch::kInt64);
  for (std::int64_t i = 0; i < b; ++i) {
    const auto n = static_cast<std::int64_t>(prompts[i].size());
    ids[i].slice(0, longest - n).copy_(torch::tensor(prompts[i], torch::kInt64));
    mask[i].slice(0, longest - n).fill_(1);
  }
  ids = ids.to(device);
  mask = mask.to(device);
  auto positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 1);

  KVCache cache;
  cache.capacity = longest + config.max_new_tokens;
  auto generator = at::make_generator<at::CPUGeneratorImpl>(config.seed);

  Generation out;
  out.tokens.resize(b);
  out.finish_reasons.assign(b, FinishReason::length);
  std::vector<bool> finished(b, false);
  auto step_ids = ids;
  for (std::int64_t step = 0; step < config.max_new_tokens; ++step) {
    const auto hidden = model.hidden_states_cached(step_ids, mask, positions, cache);
    const auto logits = torch::matmul(hidden.select(1, -1), weight.t()).to(torch::kFloat32).to(torch::kCPU);
    torch::Tensor next;
    if (config.do_sample) {
      const auto probs = warp_logits(logits, config).softmax(-1);
      next = torch::multinomial(probs, 1, /*replacement=*/false, generator).squeeze(-1);
    } else {
      next = logits.argmax(-1);
    }
    auto next_ids = next.accessor<std::int64_t, 1>();
    bool all_done = true;
    for (std::int64_t i = 0; i < b; ++i) {
      if (finished[i]) {
        next_ids[i] = config.pad_token_id;
        continue;
      }
      const auto token = next_ids[i];
      out.tokens[i].push_back(token);
      if (std::find(config.eos_token_ids.begin(), config.eos_token_ids.end(), token) != config.eos_token_ids.end()) {
        finished[i] = true;
        out.finish_reasons[i] = FinishReason::eos;
      } else if (!config.stop_strings.empty()) {
        const auto text = detokenize(out.tokens[i]);
        for (const auto& stop : config.stop_strings)
          if (text.find(stop) != std::string::npos) {
            finished[i] = true;
            out.finish_reasons[i] = FinishReason::stop_string;
            break;
          }
      }
      all_done = all_done && finished[i];
    }
    if (all_done || step + 1 == config.max_new_tokens) break;
    step_ids = next.to(device).unsqueeze(1);
    mask = torch::cat({mask, torch::ones({b, 1}, mask.options())}, 1);
    positions = positions.select(1, -1).unsqueeze(1) + 1;
  }
  return out;
}

}  // namespace alignkit
