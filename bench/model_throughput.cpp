// Forward and forward+backward tokens/s of a model directory at one sequence length, and the
// fraction of this machine's fp32 matrix-product rate that the training step reaches.
// bench/model_throughput.sh runs it beside the eager Python reference on the same weights.
//
//   model_throughput MODEL_DIR [SEQ=512] [BATCH=1] [ITERATIONS=3] [LOGPROB_CHUNK=256]
// Prints one JSON object.
#include <chrono>
#include <iostream>

#include <fmt/format.h>

#include <ATen/Parallel.h>

#include <alignkit/logprobs.hpp>

#include "cli/model_loading.hpp"
#include "host/runtime_setup.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// fp32 GFLOP/s of a 2048^3 matrix product, best of 3: the ceiling the model's products share.
double matmul_gflops() {
  const auto a = torch::randn({2048, 2048}), b = torch::randn({2048, 2048});
  (void)torch::matmul(a, b);
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    const auto start = Clock::now();
    (void)torch::matmul(a, b);
    best = std::min(best, seconds_since(start));
  }
  return 2.0 * 2048.0 * 2048.0 * 2048.0 / best / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: model_throughput MODEL_DIR [SEQ] [BATCH] [ITERATIONS]\n";
    return 2;
  }
  const std::int64_t seq = argc > 2 ? std::stoll(argv[2]) : 512;
  const std::int64_t batch = argc > 3 ? std::stoll(argv[3]) : 1;
  const int iterations = argc > 4 ? std::stoi(argv[4]) : 3;
  // The recipe's [training] logprob_chunk: 256 by default; 0 computes all positions at once and
  // keeps their softmax for backward, as the eager reference does.
  const std::int64_t chunk = argc > 5 ? std::stoll(argv[5]) : 256;
  alignkit::configure_runtime(0);  // what the alignkit binary does: every core, allocator tuned
  try {
    alignkit::PluginRegistry registry;
    auto model = alignkit::cli::load_model("hf", argv[1], registry).model;
    const auto vocab = model->description().vocab_size;
    torch::manual_seed(0);
    const auto ids = torch::randint(3, vocab, {batch, seq});
    const auto mask = torch::ones({batch, seq}, torch::kInt64);
    const double tokens = static_cast<double>(batch * seq);

    double forward = 1e30;
    {
      torch::NoGradGuard no_grad;
      model->eval();
      (void)model->forward(ids, mask, {});
      for (int i = 0; i < iterations; ++i) {
        const auto start = Clock::now();
        (void)model->forward(ids, mask, {});
        forward = std::min(forward, seconds_since(start));
      }
    }
    // The training step's shape: every position's next-token log-prob (chunked), mean NLL, backward.
    model->train();
    std::vector<std::vector<std::int64_t>> prompts(static_cast<std::size_t>(batch), {1});
    std::vector<std::vector<std::int64_t>> completions;
    for (std::int64_t b = 0; b < batch; ++b) {
      const auto row = ids[b].slice(0, 1);
      completions.emplace_back(row.data_ptr<std::int64_t>(), row.data_ptr<std::int64_t>() + row.numel());
    }
    const auto rows = alignkit::make_completion_batch(prompts, completions);
    double step = 1e30;
    for (int i = 0; i < iterations + 1; ++i) {
      model->zero_grad();
      const auto start = Clock::now();
      const auto scores = alignkit::score_completions(*model, rows, alignkit::LogProbReduction::sum, chunk);
      (scores.logps.sum() / -tokens).backward();
      if (i > 0) step = std::min(step, seconds_since(start));  // the first also allocates gradients
    }
    const double params = static_cast<double>(model->description().parameters);
    const double rate = matmul_gflops();
    // 6 N flops per token for forward + backward of the weight products (Kaplan et al., 2020).
    const double step_gflops = 6.0 * params * tokens / step / 1e9;
    std::cout << fmt::format(
        "{{\"params\": {}, \"seq\": {}, \"batch\": {}, \"forward_tokens_per_s\": {:.1f}, "
        "\"train_tokens_per_s\": {:.1f}, \"train_gflops\": {:.2f}, \"matmul_gflops\": {:.2f}, \"threads\": {}, "
        "\"logprob_chunk\": {}}}\n",
        static_cast<std::int64_t>(params), seq, batch, tokens / forward, tokens / step, step_gflops, rate,
        at::get_num_threads(), chunk);
  } catch (const alignkit::DiagnosticError& e) {
    std::cerr << e.format();
    return 1;
  }
  return 0;
}
