// Padded against packed scoring of a preference batch whose rows differ much in length, and, for
// the packed row, attention one segment at a time against one dense segment-id mask.
//
//   packing_throughput MODEL_DIR [PAIRS=8] [LONGEST=256] [ITERATIONS=3]
//
// Row lengths are drawn (seeded) uniformly from LONGEST/8 to LONGEST, prompt a quarter of each,
// so about 45% of the padded batch's tokens are padding. Prints one JSON object: the best of
// ITERATIONS seconds for a forward + backward of score_completions (logps summed, as DPO), padded
// and packed, and for a forward of the packed row through hidden_states (segment loop) and
// through hidden_states_cached (the same rule as one [T, T] mask).
#include <iostream>
#include <random>

#include <fmt/format.h>

#include <ATen/Parallel.h>

#include <alignkit/logprobs.hpp>

#include "cli/model_loading.hpp"
#include "best_seconds.hpp"
#include "host/runtime_setup.hpp"

using alignkit::bench::best_seconds;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: packing_throughput MODEL_DIR [PAIRS] [LONGEST] [ITERATIONS]\n";
    return 2;
  }
  const std::int64_t pairs = argc > 2 ? std::stoll(argv[2]) : 8;
  const std::int64_t longest = argc > 3 ? std::stoll(argv[3]) : 256;
  const int iterations = argc > 4 ? std::stoi(argv[4]) : 3;
  alignkit::configure_runtime(0);
  try {
    alignkit::PluginRegistry registry;
    auto model = alignkit::cli::load_model("hf", argv[1], registry).model;
    const auto vocab = model->description().vocab_size;
    std::mt19937_64 rng(0);
    std::uniform_int_distribution<std::int64_t> length(std::max<std::int64_t>(longest / 8, 2), longest);
    std::uniform_int_distribution<std::int64_t> token(3, vocab - 1);
    std::vector<std::vector<std::int64_t>> prompts, completions;
    for (std::int64_t i = 0; i < 2 * pairs; ++i) {
      const auto n = length(rng), prompt = std::max<std::int64_t>(n / 4, 1);
      prompts.emplace_back(), completions.emplace_back();
      for (std::int64_t t = 0; t < prompt; ++t) prompts.back().push_back(token(rng));
      for (std::int64_t t = prompt; t < n; ++t) completions.back().push_back(token(rng));
    }
    const auto batch = alignkit::make_completion_batch(prompts, completions);
    const auto real = batch.attention_mask.sum().item<std::int64_t>();

    model->train();
    auto step = [&](bool packing) {
      return best_seconds(iterations, [&] {
        model->zero_grad();
        alignkit::score_completions(*model, batch, alignkit::ScoreOptions{.packing = packing}).logps.sum().backward();
      });
    };
    const double padded = step(false), packed = step(true);

    const auto row = alignkit::pack_rows(batch);  // as score_completions packs it
    torch::NoGradGuard no_grad;
    model->eval();
    const double loop = best_seconds(iterations, [&] { (void)model->hidden_states(row.input_ids, row.segment_ids, row.position_ids); });
    const double dense = best_seconds(iterations, [&] {
      alignkit::KVCache cache;
      cache.capacity = row.input_ids.size(1);
      (void)model->hidden_states_cached(row.input_ids, row.segment_ids, row.position_ids, cache);
    });
    std::cout << fmt::format(
        "{{\"rows\": {}, \"padded_tokens\": {}, \"real_tokens\": {}, \"threads\": {}, "
        "\"padded_step_s\": {:.3f}, \"packed_step_s\": {:.3f}, \"speedup\": {:.2f}, "
        "\"packed_forward_segment_loop_s\": {:.3f}, \"packed_forward_dense_mask_s\": {:.3f}}}\n",
        batch.input_ids.size(0), batch.input_ids.numel(), real, at::get_num_threads(), padded, packed, padded / packed, loop, dense);
  } catch (const alignkit::DiagnosticError& e) {
    std::cerr << e.format();
    return 1;
  }
  return 0;
}
