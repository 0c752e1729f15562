// The offline training loop, written out top to bottom: set up (data, models, optimizer), then
// steps of gradient-accumulated micro-batches, logging and evaluation, then the final outputs.
// The method is a Loss plugin: it declares what it needs scored (offline_scoring.hpp) and
// combines the scores; the shared parts (run_models, optimizer_step, run_state, step_metrics) do
// the rest.
#include "offline_loop.hpp"

#include <chrono>
#include <cmath>
#include <iostream>
#include <numeric>

#include <fmt/format.h>

#include <alignkit/scheduler.hpp>
#include <alignkit/tokenizer.hpp>

#include "fault_injection.hpp"
#include "metrics_log.hpp"
#include "offline_scoring.hpp"
#include "optimizer_step.hpp"
#include "reference_cache.hpp"
#include "run_models.hpp"
#include "run_state.hpp"
#include "stop_signals.hpp"
#include "training_data.hpp"

namespace alignkit {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

class OfflineLoop {
 public:
  OfflineLoop(const ValidatedRecipe& recipe, fs::path run_dir, std::optional<CheckpointFolder> resume_from)
      : recipe_(recipe),
        settings_(training_settings(recipe)),
        run_dir_(std::move(run_dir)),
        resume_from_(std::move(resume_from)),
        plugin_(*recipe.plugins.at("method")),
        loss_(recipe.object<Loss>("method")),
        requirements_(call_plugin(plugin_, "to declare its requirements", [&] { return loss_->requirements(); })),
        metric_specs_(call_plugin(plugin_, "to declare its metrics", [&] { return loss_->metrics(); })),
        metrics_(run_dir_, resume_from_ ? std::optional(resume_from_->step) : std::nullopt,
                 plotted_metrics(metric_specs_)) {}

  TrainingOutcome run() {
    setup();
    if (!resume_from_) {
      // A fresh run: checkpoints and the default reference cache of an earlier (finished) run in
      // this folder belong to another run.
      remove_checkpoints(run_dir_);
      if (!recipe_.section("reference").has("cache")) fs::remove(reference_cache_path());
    }
    remove_checkpoint_leftovers(run_dir_);
    if (models_->reference_source() == ReferenceSource::precomputed) prepare_reference_logps();
    // After the reference: `precomputed` scores the starting weights, which the checkpoint replaces.
    const std::int64_t first_step = resume_from_ ? restore_checkpoint(*resume_from_, state_, parts()) : 0;
    const std::int64_t max_steps = *settings_.max_steps;
    std::cerr << fmt::format("training: {} steps of {} x {} examples on {}\n", max_steps, settings_.micro_batch,
                             settings_.accumulation, device_.str());
    TrainingOutcome outcome;
    outcome.final_dir = run_dir_ / "final";
    outcome.resumed_from = first_step;
    auto window_start = Clock::now();
    const auto start = Clock::now();
    StopSignals stop;
    if (first_step >= max_steps)
      std::cerr << fmt::format("resume: the run already reached step {} of {}; writing its final outputs\n", first_step,
                               max_steps);
    for (std::int64_t step = first_step; step < max_steps; ++step) {
      const double lr = optimizer_settings_.learning_rate *
                        call_plugin(*scheduler_plugin_, "to compute the learning rate",
                                    [&] { return scheduler_->lr_factor(step, shape_); });
      optimizer_->set_learning_rate(lr);
      models_->policy().train();
      // The step's micro-batches, drawn first so a token-mean loss can weight each by its share
      // of the step's completion tokens.
      std::vector<std::vector<std::size_t>> batches;
      for (std::int64_t micro = 0; micro < settings_.accumulation; ++micro)
        batches.push_back(state_.data.next(static_cast<std::size_t>(settings_.micro_batch), data_.train.size()));
      const auto weights = micro_batch_weights(batches);
      double step_loss = 0;
      for (std::size_t micro = 0; micro < batches.size(); ++micro) {
        auto result = compute_loss(data_.train, batches[micro], cached_train());
        // fp16: the loss is scaled so that small gradients survive backward; step() unscales.
        (result.loss * (weights[micro] * optimizer_->loss_scale())).backward();
        optimizer_->after_backward();
        step_loss += result.loss.detach().item<double>() * weights[micro];
        state_.window.metrics.add(result.metrics);
        state_.window.tokens += scoring_->tokens(data_.train, batches[micro]);
      }
      const double grad_norm = optimizer_->step(step + 1);
      state_.window.loss += step_loss;
      ++state_.window.steps;
      fault_point("step");

      const auto done = step + 1;
      const bool log_now = done % settings_.logging_steps == 0 || done == max_steps;
      const bool eval_now =
          !data_.eval.empty() && ((settings_.eval_steps > 0 && done % settings_.eval_steps == 0) || done == max_steps);
      if (log_now || eval_now) {
        auto values = state_.window.metrics.values(metric_specs_);
        if (state_.window.steps > 0) {
          values["loss"] = state_.window.loss / static_cast<double>(state_.window.steps);
          values["grad_norm"] = grad_norm;
          values["learning_rate"] = lr;
          values["epoch"] = static_cast<double>(state_.data.examples_seen) / static_cast<double>(data_.train.size());
        }
        const double seconds = seconds_since(window_start);
        if (eval_now) {
          const auto eval = evaluate();
          values.insert(eval.begin(), eval.end());
        }
        const double eta = seconds_since(start) / static_cast<double>(done - first_step) * static_cast<double>(max_steps - done);
        std::cerr << progress_line(done, max_steps, values, metric_specs_,
                                   static_cast<double>(state_.window.tokens) / std::max(seconds, 1e-9), eta)
                  << "\n";
        metrics_.log(done, values);
        outcome.last_logged = values;
        state_.window.clear();
        window_start = Clock::now();
      }
      const bool last = done == max_steps;
      if (last || (settings_.save_steps > 0 && done % settings_.save_steps == 0) || stop.requested())
        save_checkpoint(run_dir_, done, max_steps, state_, parts(), settings_.save_total_limit);
      if (stop.requested() && !last) {
        outcome.steps = done;
        outcome.stopped_by_signal = stop.requested();
        return outcome;
      }
    }
    outcome.steps = max_steps;
    models_->save_final(outcome.final_dir, run_dir_, *tokenizer_, pad_id_);
    return outcome;
  }

 private:
  void setup() {
    torch::manual_seed(settings_.seed);
    state_.data.shuffle_rng.seed(settings_.seed);
    device_ = select_device(recipe_);
    if (requirements_.examples == ExampleLayout::prompt_only)
      throw DiagnosticError(plugin_failure(plugin_, "to declare its requirements",
                                           "a loss scores given completions; methods that sample their own are online "
                                           "methods (alignkit/online_method.hpp)"));
    const bool classifier = requirements_.scoring == CompletionScoring::sequence_score;
    if (classifier) check_sequence_score_recipe();

    // The data, tokenized once.
    const auto model_section = recipe_.section("model");
    const fs::path tokenizer_path = model_section.get_path(model_section.has("tokenizer") ? "tokenizer" : "path");
    tokenizer_.emplace(Tokenizer::from_directory(tokenizer_path));
    pad_id_ = tokenizer_->pad_token_id().value_or(tokenizer_->eos_token_id().value_or(0));
    const auto* data_plugin = recipe_.plugins.at("data");
    auto dataset = recipe_.object<Dataset>("data");
    TokenizationOptions tokenization{.max_length = settings_.max_length,
                                     .max_prompt_length = settings_.max_prompt_length,
                                     .max_completion_length = settings_.max_completion_length,
                                     .keep_end = settings_.keep_end,
                                     .whole_rows = classifier};
    const auto data_section = recipe_.section("data");
    data_ = call_plugin(*data_plugin, "to read the data", [&] {
      return prepare_training_data(*dataset, *tokenizer_, requirements_.examples, tokenization,
                                   data_section.get_string("on_error") == "skip", data_section.get_float("eval_fraction"),
                                   settings_.seed);
    });
    if (requirements_.mismatched_completions)
      for (auto* split : {&data_.train, &data_.eval})
        pair_mismatched_completions(*split, static_cast<std::size_t>(settings_.micro_batch));
    report_data();

    // The models, the optimizer over the policy's trainable tensors, the batch scoring.
    models_.emplace(recipe_, settings_, device_, ModelNeeds{.reference = requirements_.reference_model, .classifier = classifier});
    check_vocabulary(models_->policy().description().vocab_size);
    optimizer_.emplace(models_->policy(), settings_, optimizer_settings_);
    std::cerr << fmt::format("model: {} ({} parameters, {} trainable{}{}), reference: {}\n", models_->model_path().string(),
                             models_->parameters(), optimizer_->trainable_parameters(), models_->lora() ? ", LoRA" : "",
                             optimizer_->has_masters() ? ", fp32 master weights" : "", models_->reference_description());
    scoring_.emplace(requirements_, *models_, device_, pad_id_, settings_.logprob_chunk, settings_.packing);
    examples_hash_ = examples_hash(data_);

    scheduler_plugin_ = recipe_.plugins.at("scheduler");
    scheduler_ = recipe_.object<Scheduler>("scheduler");
    shape_ = schedule_shape(recipe_);
  }

  void report_data() const {
    const auto& r = data_.report;
    std::cerr << fmt::format("data: {} records, {} train / {} eval examples, {} skipped, {} truncated", r.read, r.train,
                             r.eval, r.skipped, r.truncated);
    if (r.too_long)
      std::cerr << fmt::format(", {} dropped for a row longer than max_length (as TRL's RewardTrainer filters)", r.too_long);
    if (r.boundary_mismatches)
      std::cerr << fmt::format(", {} with a prompt/completion boundary that tokenizes differently joined (tokenized "
                               "apart, as TRL does)",
                               r.boundary_mismatches);
    std::cerr << "\n";
  }

  // Token ids the model has no embedding for would fail deep inside LibTorch; name the example.
  void check_vocabulary(std::int64_t vocab_size) const {
    for (const auto* split : {&data_.train, &data_.eval})
      for (const auto& e : *split)
        for (const auto* ids : {&e.prompt, &e.completion, &e.rejected})
          for (auto id : *ids)
            if (id < 0 || id >= vocab_size) {
              Diagnostic d{Severity::error, e.where,
                           fmt::format("token id {} is outside the model's vocabulary of {}", id, vocab_size)};
              d.help = "is the tokenizer (or are the token ids) the model's own?";
              throw DiagnosticError(std::move(d));
            }
  }

  // What scoring by a classification head cannot be combined with, said at the key.
  void check_sequence_score_recipe() const {
    if (requirements_.examples != ExampleLayout::paired || requirements_.reference_model)
      throw DiagnosticError(plugin_failure(plugin_, "to declare its requirements",
                                           "sequence scores are given for paired examples without a reference"));
    if (settings_.packing)
      throw DiagnosticError(recipe_.section("training").error(
          "packing", "reward modelling scores padded rows; packing does not apply to it", "remove packing = true"));
  }

  // Each micro-batch's weight in the step's gradient: 1 / accumulation, or for a token-mean loss
  // its share of the step's completion tokens (a completion's first token has no predictor when
  // its prompt is empty).
  std::vector<double> micro_batch_weights(const std::vector<std::vector<std::size_t>>& batches) const {
    std::vector<double> weights(batches.size(), 1.0 / static_cast<double>(batches.size()));
    if (!requirements_.token_mean) return weights;
    std::vector<double> counts;
    for (const auto& batch : batches) {
      double n = 0;
      for (auto i : batch)
        n += static_cast<double>(data_.train[i].completion.size()) - (data_.train[i].prompt.empty() ? 1 : 0);
      counts.push_back(n);
    }
    const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
    for (std::size_t i = 0; i < batches.size(); ++i) weights[i] = total > 0 ? counts[i] / total : 0.0;
    return weights;
  }

  LossResult compute_loss(const std::vector<TokenizedExample>& split, const std::vector<std::size_t>& rows,
                          const ReferenceLogps* cached) {
    const auto batch = scoring_->batch(split, rows, cached);
    auto result = call_plugin(plugin_, "to compute the loss", [&] { return loss_->compute(batch); });
    if (!result.loss.defined() || result.loss.numel() != 1)
      throw DiagnosticError(plugin_failure(plugin_, "to compute the loss", "it returned no scalar loss"));
    return result;
  }

  // As transformers and TRL evaluate: eval_loss is the mean over examples (each batch's loss
  // counted once per example in it), the method's metrics the mean of the batches' means.
  std::map<std::string, double> evaluate() {
    torch::NoGradGuard no_grad;
    auto& policy = models_->policy();
    const bool was_training = policy.is_training();
    policy.eval();
    const auto size = static_cast<std::size_t>(settings_.eval_batch);
    MetricWindowSums sums;
    double loss_sum = 0;
    for (std::size_t begin = 0; begin < data_.eval.size(); begin += size) {
      std::vector<std::size_t> rows(std::min(data_.eval.size(), begin + size) - begin);
      std::iota(rows.begin(), rows.end(), begin);
      const auto result = compute_loss(data_.eval, rows, cached_eval());
      loss_sum += result.loss.item<double>() * static_cast<double>(rows.size());
      sums.add(result.metrics);
    }
    if (was_training) policy.train();
    auto values = sums.values(metric_specs_, "eval_");
    values["eval_loss"] = loss_sum / static_cast<double>(data_.eval.size());
    return values;
  }

  // --- the precomputed reference, cached on disk ---------------------------------------------

  const ReferenceLogps* cached_train() const { return precomputed_ ? &precomputed_->train : nullptr; }
  const ReferenceLogps* cached_eval() const { return precomputed_ ? &precomputed_->eval : nullptr; }

  fs::path reference_cache_path() const {
    const auto section = recipe_.section("reference");
    return section.has("cache") ? section.get_path("cache") : run_dir_ / "reference-logps.safetensors";
  }

  // The reference's log-probs from the cache when it was made for this run, else computed once
  // with the starting policy and cached.
  void prepare_reference_logps() {
    const auto file = reference_cache_path();
    const auto key = reference_cache_key(recipe_, *models_, *tokenizer_, data_, requirements_, settings_.seed);
    const auto examples = data_.train.size() + data_.eval.size();
    if ((precomputed_ = read_reference_cache(file, key))) {
      std::cerr << fmt::format("reference: log-probs of {} examples reused from {}\n", examples, file.string());
      return;
    }
    const auto start = Clock::now();
    const auto size = static_cast<std::size_t>(settings_.eval_batch);
    precomputed_.emplace(ReferenceCache{scoring_->precompute(data_.train, size), scoring_->precompute(data_.eval, size)});
    std::cerr << fmt::format("reference: log-probs of {} examples precomputed in {:.1f}s\n", examples, seconds_since(start));
    write_reference_cache(file, key, *precomputed_);
    std::cerr << fmt::format("reference: cached in {}\n", file.string());
  }

  CheckpointParts parts() {
    return {*optimizer_, *models_,
            MethodState{&plugin_, [this] { return loss_->state(); },
                        [this](const std::map<std::string, torch::Tensor>& s) { loss_->load_state(s); }},
            examples_hash_, device_};
  }

  const ValidatedRecipe& recipe_;
  const TrainingSettings settings_;
  const OptimizerSettings optimizer_settings_ = optimizer_settings(recipe_);
  fs::path run_dir_;
  std::optional<CheckpointFolder> resume_from_;
  const PluginRecord& plugin_;
  std::shared_ptr<Loss> loss_;
  const LossRequirements requirements_;
  const std::vector<MetricSpec> metric_specs_;
  MetricsLog metrics_;

  torch::Device device_ = torch::kCPU;
  std::optional<Tokenizer> tokenizer_;
  std::int64_t pad_id_ = 0;
  TrainingData data_;
  std::string examples_hash_;
  std::optional<RunModels> models_;
  std::optional<OptimizerStep> optimizer_;
  std::optional<OfflineScoring> scoring_;
  std::optional<ReferenceCache> precomputed_;
  RunState state_;
  const PluginRecord* scheduler_plugin_ = nullptr;
  std::shared_ptr<Scheduler> scheduler_;
  ScheduleShape shape_;
};

}  // namespace

TrainingOutcome run_offline_loop(const ValidatedRecipe& recipe, const fs::path& run_dir,
                                 const std::optional<CheckpointFolder>& resume_from) {
  OfflineLoop loop(recipe, run_dir, resume_from);
  return loop.run();
}

}  // namespace alignkit
