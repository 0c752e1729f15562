// The training loop, written out top to bottom: set up (device, data, models, optimizer), then
// steps of gradient-accumulated micro-batches, logging and evaluation, then the final outputs.
#include "trainer.hpp"

#include "memory_planner.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adamw.h>

#include <alignkit/atomic_file.hpp>
#include <alignkit/logprobs.hpp>
#include <alignkit/lora.hpp>
#include <alignkit/safetensors.hpp>
#include <alignkit/scheduler.hpp>
#include <alignkit/tokenizer.hpp>
#include <alignkit/value_head.hpp>
#include <alignkit/torch_compat.hpp>

#include "fault_injection.hpp"
#include "loss_scaler.hpp"
#include "metrics_log.hpp"
#include "option_value.hpp"
#include "reference_cache.hpp"
#include "run_checkpoint.hpp"
#include "stop_signals.hpp"
#include "training_data.hpp"

namespace alignkit {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

torch::Device select_device(const RecipeSection& run) {
  const auto name = run.get_string("device");
  if (name == "auto") return compat::cuda_available() ? torch::Device("cuda") : torch::Device(torch::kCPU);
  try {
    torch::Device device(name);
    if (device.is_cuda() && !compat::cuda_available())
      throw DiagnosticError(run.error("device", "this machine (or this LibTorch build) has no CUDA device",
                                      "use device = \"cpu\" or \"auto\""));
    return device;
  } catch (const c10::Error&) {
    throw DiagnosticError(run.error("device", fmt::format("'{}' is not a device", name), "use cpu, cuda, cuda:N or auto"));
  }
}

torch::ScalarType dtype_of(const std::string& precision) {
  if (precision == "bfloat16") return torch::kBFloat16;
  if (precision == "float16") return torch::kFloat16;
  return torch::kFloat32;
}

std::string duration(double seconds) {
  const auto s = static_cast<std::int64_t>(std::max(0.0, seconds));
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}

CompletionScores rows(const CompletionScores& s, std::int64_t begin, std::int64_t end) {
  auto cut = [&](const torch::Tensor& t) { return t.defined() ? t.slice(0, begin, end) : t; };
  return {cut(s.logps), cut(s.token_counts), cut(s.mean_logits), cut(s.nll), cut(s.nll_token_counts)};
}

CompletionScores detached(const CompletionScores& s) {
  auto d = [](const torch::Tensor& t) { return t.defined() ? t.detach() : t; };
  return {d(s.logps), d(s.token_counts), d(s.mean_logits), d(s.nll), d(s.nll_token_counts)};
}

// Running means of named values over a logging window (or an evaluation).
class Averages {
 public:
  void add(const std::string& name, double value) {
    auto& [sum, count] = values_[name];
    sum += value;
    ++count;
  }
  void add(const std::vector<std::pair<std::string, torch::Tensor>>& metrics) {
    for (const auto& [name, tensor] : metrics)
      if (tensor.defined() && tensor.numel() > 0) add(name, tensor.detach().to(torch::kFloat64).mean().item<double>());
  }
  // Means over the window. Metrics a loss reports as per-batch sums with counts (KTO's
  // "rewards/chosen_sum" with "count/chosen") become window means, sum over count, as TRL's
  // KTOTrainer.log computes them, with rewards/margins from the two.
  std::map<std::string, double> means(const std::string& prefix = "") const {
    std::map<std::string, double> raw, out;
    for (const auto& [name, v] : values_) raw[name] = v.first / static_cast<double>(v.second);
    for (const auto& [name, value] : raw) {
      const auto slash = name.rfind('/');
      if (name.size() > 4 && name.compare(name.size() - 4, 4, "_sum") == 0 && slash != std::string::npos) {
        const auto split = name.substr(slash + 1, name.size() - 4 - slash - 1);
        if (auto count = raw.find("count/" + split); count != raw.end()) {
          if (count->second > 0) out[prefix + name.substr(0, name.size() - 4)] = value / count->second;
          continue;
        }
      }
      if (name.rfind("count/", 0) == 0) continue;
      out[prefix + name] = value;
    }
    if (!out.count(prefix + "rewards/margins") && out.count(prefix + "rewards/chosen") && out.count(prefix + "rewards/rejected") &&
        raw.count("count/chosen"))
      out[prefix + "rewards/margins"] = out[prefix + "rewards/chosen"] - out[prefix + "rewards/rejected"];
    return out;
  }
  void clear() { values_.clear(); }

  // The running sums, for a checkpoint taken in the middle of a logging window.
  nlohmann::json to_json() const {
    auto out = nlohmann::json::object();
    for (const auto& [name, v] : values_) out[name] = {v.first, v.second};
    return out;
  }
  void from_json(const nlohmann::json& in) {
    values_.clear();
    for (const auto& [name, v] : in.items()) values_[name] = {v.at(0).get<double>(), v.at(1).get<std::int64_t>()};
  }

 private:
  std::map<std::string, std::pair<double, std::int64_t>> values_;
};

// Where the loop stands between steps, beyond the weights and the optimizer's moments.
constexpr int kTrainerStateFormat = 1;

enum class ReferenceStrategy { none, copy, adapter_off, precomputed };

using AdamWState = torch::optim::AdamWParamState;

class Trainer {
 public:
  Trainer(const ValidatedRecipe& recipe, PluginRegistry& registry, fs::path run_dir,
          std::optional<CheckpointFolder> resume_from)
      : recipe_(recipe),
        registry_(registry),
        run_dir_(std::move(run_dir)),
        resume_from_(std::move(resume_from)),
        metrics_(run_dir_, resume_from_ ? std::optional(resume_from_->step) : std::nullopt) {}

  TrainingOutcome run() {
    setup();
    if (!resume_from_) {
      // A fresh run: checkpoints and the default reference cache of an earlier (finished) run in
      // this folder belong to another run.
      remove_checkpoints(run_dir_);
      if (!recipe_.section("reference").has("cache")) fs::remove(reference_cache_path());
    }
    remove_checkpoint_leftovers(run_dir_);
    if (strategy_ == ReferenceStrategy::precomputed) prepare_reference_logps();
    // After the reference: `precomputed` scores the starting weights, which the checkpoint replaces.
    const std::int64_t first_step = resume_from_ ? restore_checkpoint(*resume_from_) : 0;
    const auto training = recipe_.section("training");
    const auto max_steps = training.get_int("max_steps");
    const auto accumulation = training.get_int("gradient_accumulation_steps");
    const auto logging_steps = training.get_int("logging_steps");
    const auto eval_steps = training.get_int("eval_steps");
    const double max_grad_norm = recipe_.section("optimizer").get_float("max_grad_norm");
    const double base_lr = recipe_.section("optimizer").get_float("learning_rate");

    std::cerr << fmt::format("training: {} steps of {} x {} examples on {}\n", max_steps,
                             training.get_int("per_device_train_batch_size"), accumulation, device_.str());
    const auto save_steps = training.get_int("save_steps");
    TrainingOutcome outcome;
    outcome.final_dir = run_dir_ / "final";
    outcome.resumed_from = first_step;
    auto& window = window_;
    auto& window_loss = window_loss_;
    auto& window_steps = window_steps_;
    auto& window_tokens = window_tokens_;
    auto window_start = Clock::now();
    const auto start = Clock::now();
    StopSignals stop;
    if (first_step >= max_steps)
      std::cerr << fmt::format("resume: the run already reached step {} of {}; writing its final outputs\n", first_step,
                               max_steps);
    for (std::int64_t step = first_step; step < max_steps; ++step) {
      const double lr = base_lr * call_plugin(*scheduler_plugin_, "to compute the learning rate",
                                              [&] { return scheduler_->lr_factor(step, shape_); });
      for (auto& group : optimizer_->param_groups())
        static_cast<torch::optim::AdamWOptions&>(group.options()).lr(lr);
      policy_->train();
      double step_loss = 0;
      // The step's micro-batches, drawn first so a token-mean loss can weight each by its share
      // of the step's completion tokens.
      std::vector<std::vector<const TokenizedExample*>> batches;
      for (std::int64_t micro = 0; micro < accumulation; ++micro) batches.push_back(next_batch());
      std::vector<double> weights(batches.size(), 1.0 / static_cast<double>(accumulation));
      if (requirements_.token_mean) {
        std::vector<double> counts;
        for (const auto& batch : batches) counts.push_back(static_cast<double>(completion_tokens(batch)));
        const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
        for (std::size_t i = 0; i < batches.size(); ++i) weights[i] = total > 0 ? counts[i] / total : 0.0;
      }
      for (std::size_t micro = 0; micro < batches.size(); ++micro) {
        auto [result, tokens] = forward(batches[micro], /*training=*/true);
        // fp16: the loss is scaled so that small gradients survive backward; update() unscales.
        (result.loss * (weights[micro] * loss_scale())).backward();
        move_gradients_to_masters();
        step_loss += result.loss.detach().item<double>() * weights[micro];
        window.add(result.metrics);
        window_tokens += tokens;
      }
      const double grad_norm = update(max_grad_norm, step + 1);
      window_loss += step_loss;
      ++window_steps;
      fault_point("step");

      const auto done = step + 1;
      const bool log_now = done % logging_steps == 0 || done == max_steps;
      const bool eval_now = !data_.eval.empty() && ((eval_steps > 0 && done % eval_steps == 0) || done == max_steps);
      if (log_now || eval_now) {
        auto values = window.means();
        if (window_steps > 0) {
          values["loss"] = window_loss / static_cast<double>(window_steps);
          values["grad_norm"] = grad_norm;
          values["learning_rate"] = lr;
          values["epoch"] = static_cast<double>(examples_seen_) / static_cast<double>(data_.train.size());
        }
        const double seconds = std::chrono::duration<double>(Clock::now() - window_start).count();
        const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        if (eval_now) {
          const auto eval = evaluate();
          values.insert(eval.begin(), eval.end());
        }
        print_progress(done, max_steps, values, window_tokens / std::max(seconds, 1e-9),
                       elapsed / static_cast<double>(done - first_step) * static_cast<double>(max_steps - done));
        metrics_.log(done, values);
        outcome.last_logged = values;
        window.clear();
        window_loss = 0;
        window_steps = window_tokens = 0;
        window_start = Clock::now();
      }
      const bool last = done == max_steps;
      if (last || (save_steps > 0 && done % save_steps == 0) || stop.requested()) save_checkpoint(done);
      if (stop.requested() && !last) {
        outcome.steps = done;
        outcome.stopped_by_signal = stop.requested();
        return outcome;
      }
    }
    outcome.steps = max_steps;
    save_final(outcome.final_dir);
    return outcome;
  }

 private:
  // --- set-up -------------------------------------------------------------------------------

  void setup() {
    const auto run = recipe_.section("run");
    const auto training = recipe_.section("training");
    const auto model_section = recipe_.section("model");
    seed_ = static_cast<std::uint64_t>(run.get_int("seed"));
    torch::manual_seed(seed_);
    shuffle_rng_.seed(seed_);
    device_ = select_device(run);
    dtype_ = dtype_of(training.get_string("precision"));
    chunk_ = training.get_int("logprob_chunk");
    packing_ = training.get_bool("packing");

    // The method.
    const auto* loss_plugin = recipe_.plugins.at("method");
    loss_plugin_ = loss_plugin;
    loss_ = registry_.create<Loss>(*loss_plugin, recipe_.section("method"));
    requirements_ = call_plugin(*loss_plugin, "to declare its requirements", [&] { return loss_->requirements(); });
    if (requirements_.generation || requirements_.examples == ExampleLayout::prompt_only)
      throw DiagnosticError(recipe_.section("method").error(
          "name", fmt::format("'{}' is an online method (it generates completions); `alignkit train` runs offline "
                              "methods",
                              loss_plugin->name)));
    if (requirements_.sequence_scores) check_sequence_score_recipe(*loss_plugin);

    // The data, tokenized once.
    const fs::path model_path = model_section.get_path("path");
    const fs::path tokenizer_path = model_section.has("tokenizer") ? model_section.get_path("tokenizer") : model_path;
    tokenizer_.emplace(Tokenizer::from_directory(tokenizer_path));
    pad_id_ = tokenizer_->pad_token_id().value_or(tokenizer_->eos_token_id().value_or(0));
    const auto* data_plugin = recipe_.plugins.at("data");
    auto dataset = registry_.create<Dataset>(*data_plugin, recipe_.section("data"));
    TokenizationOptions tokenization;
    tokenization.max_length = training.get_int("max_length");
    tokenization.max_prompt_length = training.get_int("max_prompt_length");
    tokenization.max_completion_length = training.has("max_completion_length") ? training.get_int("max_completion_length") : 0;
    tokenization.keep_end = training.get_string("truncation_mode") == "keep_end";
    tokenization.whole_rows = requirements_.sequence_scores;
    const auto data_section = recipe_.section("data");
    data_ = call_plugin(*data_plugin, "to read the data", [&] {
      return prepare_training_data(*dataset, *tokenizer_, requirements_.examples, tokenization,
                                   data_section.get_string("on_error") == "skip", data_section.get_float("eval_fraction"),
                                   seed_);
    });
    // KTO's mismatched pairs as TRL's _get_kl_dataset makes them, once, in data order: within each
    // chunk of per_device_train_batch_size examples, every example takes the completion of the one
    // before it (the first takes the chunk's last).
    if (requirements_.kl_completions) {
      const auto chunk = static_cast<std::size_t>(training.get_int("per_device_train_batch_size"));
      for (auto* split : {&data_.train, &data_.eval})
        for (std::size_t begin = 0; begin < split->size(); begin += chunk) {
          const auto end = std::min(split->size(), begin + chunk);
          for (std::size_t i = begin; i < end; ++i)
            (*split)[i].kl_completion = (*split)[i == begin ? end - 1 : i - 1].completion;
        }
    }
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

    // The policy, with LoRA when asked.
    loader_plugin_ = recipe_.plugins.at("model");
    loader_ = registry_.create<ModelLoader>(*loader_plugin_, model_section);
    model_path_ = model_path;
    quantization_ = quantization_of(model_section.get_string("quantization"));
    lora_ = recipe_.has_section("lora") && recipe_.section("lora").get_bool("enabled");
    if (quantization_ != BaseQuantization::none && !lora_)
      throw DiagnosticError(model_section.error("quantization", "a quantized base needs LoRA adapters to train",
                                                "add a [lora] section, or set quantization = \"none\""));
    // A reward model in training is a one-output sequence classifier.
    policy_ = load_model(model_path, dtype_, quantization_, requirements_.sequence_scores ? 1 : 0);
    check_vocabulary(policy_->description().vocab_size);
    if (lora_) {
      const auto section = recipe_.section("lora");
      if (section.has("init_adapter")) {
        for (const char* key : {"r", "alpha", "dropout", "use_rslora", "target_modules"})
          if (section.has(key))
            throw DiagnosticError(section.error(key, fmt::format("'{}' is set by init_adapter's adapter_config.json", key),
                                                "remove it, or drop init_adapter to start a fresh adapter"));
        lora_config_ = load_peft_adapter(*policy_, section.get_path("init_adapter"));
        // PEFT keeps the original of a modules_to_save module for the adapter-off view; here the
        // module itself trains, so only a reward model (no reference) may bring one.
        if (!requirements_.sequence_scores && !lora_config_.modules_to_save.empty())
          throw DiagnosticError(section.error(
              "init_adapter", fmt::format("the adapter also trains whole modules (modules_to_save: {}), which alignkit "
                                          "supports only for reward models",
                                          fmt::join(lora_config_.modules_to_save, ", ")),
              "merge it into the base first (alignkit merge), then start a fresh adapter"));
        if (requirements_.sequence_scores && lora_config_.task_type != "SEQ_CLS")
          throw DiagnosticError(section.error(
              "init_adapter", fmt::format("a reward model's adapter must also save its score head (task_type SEQ_CLS); "
                                          "this one's task_type is {}",
                                          lora_config_.task_type),
              "start a fresh adapter, or give one that alignkit or PEFT saved for sequence classification"));
      } else {
        lora_config_.r = section.get_int("r");
        lora_config_.alpha = section.get_float("alpha");
        lora_config_.dropout = section.get_float("dropout");
        lora_config_.use_rslora = section.get_bool("use_rslora");
        lora_config_.target_modules = section.get_string_list("target_modules");
        if (requirements_.sequence_scores) {
          // PEFT's SEQ_CLS adapter: the score head trains whole beside the adapters and is saved
          // with them (PeftModelForSequenceClassification adds these two names).
          lora_config_.task_type = "SEQ_CLS";
          lora_config_.modules_to_save = {"classifier", "score"};
        }
        apply_lora(*policy_, lora_config_);
      }
    } else {
      for (auto& p : policy_->parameters()) p.set_requires_grad(true);
    }
    policy_->set_gradient_checkpointing(training.get_bool("gradient_checkpointing"));

    // The reference.
    setup_reference();

    // AdamW with transformers' parameter groups: no decay for biases and norm weights.
    const auto optimizer = recipe_.section("optimizer");
    std::int64_t trainable = 0;
    std::vector<bool> decays;
    for (const auto& item : policy_->named_parameters()) {
      if (!item.value().requires_grad()) continue;
      trainable += item.value().numel();
      const auto& name = item.key();
      const bool is_norm = name.find("norm") != std::string::npos;
      decays.push_back(!(item.value().dim() < 2 || is_norm || name.find("bias") != std::string::npos));
      trainable_.push_back(item.value());
      trainable_names_.push_back(name);
    }
    // Mixed precision: AdamW updates fp32 master copies of the trainable tensors that are not
    // fp32 (full fine-tuning in bf16/fp16; LoRA adapters are fp32 already and need none).
    const bool low_precision = std::any_of(trainable_.begin(), trainable_.end(),
                                           [](const torch::Tensor& p) { return p.scalar_type() != torch::kFloat32; });
    if (low_precision && training.get_string("master_weights") == "float32")
      for (const auto& p : trainable_)
        masters_.push_back(p.scalar_type() == torch::kFloat32
                               ? p
                               : p.detach().to(torch::kFloat32).set_requires_grad(true));
    // fp16 gradients underflow without it (torch.cuda.amp.GradScaler).
    if (dtype_ == torch::kFloat16) loss_scaler_.emplace();
    std::vector<torch::Tensor> decay, no_decay;
    for (std::size_t i = 0; i < trainable_.size(); ++i) (decays[i] ? decay : no_decay).push_back(optimized()[i]);
    auto options = torch::optim::AdamWOptions(optimizer.get_float("learning_rate"))
                       .betas({optimizer.get_float("adam_beta1"), optimizer.get_float("adam_beta2")})
                       .eps(optimizer.get_float("adam_epsilon"))
                       .weight_decay(optimizer.get_float("weight_decay"));
    std::vector<torch::optim::OptimizerParamGroup> groups;
    if (!decay.empty()) groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(options));
    if (!no_decay.empty()) {
      auto no_decay_options = std::make_unique<torch::optim::AdamWOptions>(options);
      no_decay_options->weight_decay(0.0);
      groups.emplace_back(no_decay, std::move(no_decay_options));
    }
    optimizer_ = std::make_unique<torch::optim::AdamW>(std::move(groups), options);
    std::cerr << fmt::format("model: {} ({} parameters, {} trainable{}{}), reference: {}\n", model_path.string(),
                             policy_->description().parameters, trainable, lora_ ? ", LoRA" : "",
                             masters_.empty() ? "" : ", fp32 master weights", strategy_name());

    scheduler_plugin_ = recipe_.plugins.at("scheduler");
    scheduler_ = registry_.create<Scheduler>(*scheduler_plugin_, recipe_.section("scheduler"));
    shape_ = schedule_shape(recipe_);
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

  // What a sequence-score method (reward modelling) cannot be combined with, said at the key.
  void check_sequence_score_recipe(const PluginRecord& plugin) const {
    if (requirements_.examples != ExampleLayout::paired || requirements_.reference_model)
      throw DiagnosticError(plugin_failure(plugin, "to declare its requirements",
                                           "sequence scores are given for paired examples without a reference"));
    const auto training = recipe_.section("training");
    if (training.get_bool("packing"))
      throw DiagnosticError(training.error("packing", "reward modelling scores padded rows; packing does not apply to it",
                                           "remove packing = true"));
  }

  std::shared_ptr<CausalLM> load_model(const fs::path& path, torch::ScalarType dtype, BaseQuantization quantization,
                                       std::int64_t classification_labels = 0) {
    LoadOptions options;
    options.classification_labels = classification_labels;
    options.device = device_;
    options.dtype = dtype;
    options.quantization = quantization;
    options.eager_attention = recipe_.section("model").get_string("attention") == "eager";
    auto model = call_plugin(*loader_plugin_, "to load the model", [&] { return loader_->load(path, options); });
    if (!model) throw DiagnosticError(plugin_failure(*loader_plugin_, "to load the model", "the loader returned no model"));
    return PluginRegistry::keep_loaded(*loader_plugin_, std::move(model));
  }

  void setup_reference() {
    if (!requirements_.reference_model) {
      strategy_ = ReferenceStrategy::none;
      return;
    }
    const auto section = recipe_.section("reference");
    const auto name = section.get_string("strategy");
    if (name == "adapter-off" || (name == "auto" && lora_)) {
      if (!lora_)
        throw DiagnosticError(section.error("strategy", "adapter-off needs LoRA adapters on the policy",
                                            "add a [lora] section, or use strategy = \"copy\""));
      strategy_ = ReferenceStrategy::adapter_off;
    } else if (name == "precomputed") {
      strategy_ = ReferenceStrategy::precomputed;
    } else {
      strategy_ = ReferenceStrategy::copy;
      const fs::path path = section.has("path") ? section.get_path("path") : model_path_;
      const auto dtype = section.has("precision") ? dtype_of(section.get_string("precision")) : dtype_;
      reference_ = load_model(path, dtype, quantization_of(section.get_string("quantization")));
      reference_->eval();
      for (auto& p : reference_->parameters()) p.set_requires_grad(false);
    }
  }

  std::string strategy_name() const {
    switch (strategy_) {
      case ReferenceStrategy::none: return "none (reference-free method)";
      case ReferenceStrategy::copy: return "a frozen copy";
      case ReferenceStrategy::adapter_off: return "the policy with its adapters off";
      case ReferenceStrategy::precomputed: return "precomputed before training";
    }
    return "?";
  }

  // --- batches ------------------------------------------------------------------------------

  // The next micro-batch of training examples: a fresh seeded shuffle each epoch (std::shuffle
  // with mt19937_64; the same seed gives the same order, but not the order transformers'
  // RandomSampler would draw).
  std::vector<const TokenizedExample*> next_batch() {
    const auto size = static_cast<std::size_t>(recipe_.section("training").get_int("per_device_train_batch_size"));
    std::vector<const TokenizedExample*> batch;
    while (batch.size() < size) {
      if (cursor_ >= order_.size()) {
        order_.resize(data_.train.size());
        for (std::size_t i = 0; i < order_.size(); ++i) order_[i] = i;
        std::shuffle(order_.begin(), order_.end(), shuffle_rng_);
        cursor_ = 0;
      }
      batch.push_back(&data_.train[order_[cursor_++]]);
      ++examples_seen_;
      if (batch.size() == data_.train.size()) break;  // fewer examples than a batch: one pass
    }
    return batch;
  }

  // Completion tokens a micro-batch scores (a completion's first token has no predictor when
  // its prompt is empty).
  static std::int64_t completion_tokens(const std::vector<const TokenizedExample*>& batch) {
    std::int64_t n = 0;
    for (const auto* e : batch)
      n += static_cast<std::int64_t>(e->completion.size()) - (e->prompt.empty() ? 1 : 0);
    return n;
  }

  ScoreOptions score_options() const {
    return {.reduction = requirements_.reduction, .chunk = chunk_, .nll_over_prompt = requirements_.nll_over_prompt,
            .packing = packing_};
  }

  // Log-probs of prompt + completion rows under `model`.
  CompletionScores score(CausalLM& model, const std::vector<const TokenizedExample*>& batch,
                         const std::vector<std::int64_t> TokenizedExample::*completion) const {
    std::vector<std::vector<std::int64_t>> prompts, completions;
    for (const auto* e : batch) {
      prompts.push_back(e->prompt);
      completions.push_back(e->*completion);
    }
    auto rows = make_completion_batch(prompts, completions, pad_id_);
    rows.input_ids = rows.input_ids.to(device_);
    rows.attention_mask = rows.attention_mask.to(device_);
    rows.completion_mask = rows.completion_mask.to(device_);
    return score_completions(model, rows, score_options());
  }

  // Chosen and rejected rows in one forward (TRL's concatenated_forward).
  std::pair<CompletionScores, CompletionScores> score_pairs(CausalLM& model,
                                                            const std::vector<const TokenizedExample*>& batch) const {
    std::vector<std::vector<std::int64_t>> prompts, completions;
    for (const auto* e : batch) prompts.push_back(e->prompt), completions.push_back(e->completion);
    for (const auto* e : batch) prompts.push_back(e->prompt), completions.push_back(e->rejected);
    auto rows = make_completion_batch(prompts, completions, pad_id_);
    rows.input_ids = rows.input_ids.to(device_);
    rows.attention_mask = rows.attention_mask.to(device_);
    rows.completion_mask = rows.completion_mask.to(device_);
    const auto scores = score_completions(model, rows, score_options());
    const auto n = static_cast<std::int64_t>(batch.size());
    return {rows_of(scores, 0, n), rows_of(scores, n, 2 * n)};
  }

  // The policy's score head at the last token of prompt + chosen and prompt + rejected, in one
  // right-padded forward (TRL's RewardTrainer batches chosen rows, then rejected rows).
  std::pair<CompletionScores, CompletionScores> sequence_score_pairs(const std::vector<const TokenizedExample*>& batch) const {
    std::vector<std::vector<std::int64_t>> prompts, completions;
    for (const auto* e : batch) prompts.push_back(e->prompt), completions.push_back(e->completion);
    for (const auto* e : batch) prompts.push_back(e->prompt), completions.push_back(e->rejected);
    const auto rows = make_completion_batch(prompts, completions, pad_id_);
    // Pooled at the last token that is not the pad id, as transformers does with the
    // pad_token_id the saved config gets (record_pad_token).
    const auto scores =
        sequence_scores(*policy_, rows.input_ids.to(device_), rows.attention_mask.to(device_), pad_id_).squeeze(-1);
    const auto n = static_cast<std::int64_t>(batch.size());
    CompletionScores chosen, rejected;
    chosen.scores = scores.slice(0, 0, n);
    rejected.scores = scores.slice(0, n, 2 * n);
    return {chosen, rejected};
  }

  static CompletionScores rows_of(const CompletionScores& s, std::int64_t begin, std::int64_t end) {
    return rows(s, begin, end);
  }

  // The reference's view of the same rows, without gradients.
  template <typename F>
  auto with_reference(F&& fn) {
    torch::NoGradGuard no_grad;
    if (strategy_ == ReferenceStrategy::adapter_off) {
      set_adapters_enabled(*policy_, false);
      // Dropout off too: the reference is deterministic.
      const bool was_training = policy_->is_training();
      policy_->eval();
      auto out = fn(*policy_);
      if (was_training) policy_->train();
      set_adapters_enabled(*policy_, true);
      return out;
    }
    if (strategy_ == ReferenceStrategy::precomputed) {
      // Before training: the starting policy (adapters, if any, are still zero-effect).
      const bool was_training = policy_->is_training();
      policy_->eval();
      auto out = fn(*policy_);
      if (was_training) policy_->train();
      return out;
    }
    return fn(*reference_);
  }

  static torch::Tensor gather(const std::vector<const TokenizedExample*>& batch, const std::vector<double>& values,
                              const std::vector<TokenizedExample>& split) {
    std::vector<double> out;
    for (const auto* e : batch) out.push_back(values[static_cast<std::size_t>(e - split.data())]);
    return torch::tensor(out, torch::kFloat64).to(torch::kFloat32);
  }

  // The micro-batch's loss and metrics, and the tokens the policy saw.
  std::pair<LossResult, std::int64_t> forward(const std::vector<const TokenizedExample*>& batch, bool training) {
    const auto& split = training ? data_.train : data_.eval;
    const auto& cache = training ? precomputed_train_ : precomputed_eval_;
    LossBatch loss_batch;
    std::int64_t tokens = 0;
    for (const auto* e : batch)
      tokens += static_cast<std::int64_t>(e->rejected.empty() ? e->prompt.size() + e->completion.size()
                                                               : 2 * e->prompt.size() + e->completion.size() + e->rejected.size());
    // Precomputed reference log-probs of this batch's examples (0: completion or chosen,
    // 1: rejected, 2: KL completion).
    auto cached = [&](int which) {
      CompletionScores s;
      s.logps = gather(batch, cache[static_cast<std::size_t>(which)], split).to(device_);
      return s;
    };

    if (requirements_.sequence_scores) {
      std::tie(loss_batch.chosen, loss_batch.rejected) = sequence_score_pairs(batch);
    } else if (requirements_.examples == ExampleLayout::paired) {
      std::tie(loss_batch.chosen, loss_batch.rejected) = score_pairs(*policy_, batch);
      if (strategy_ == ReferenceStrategy::precomputed) {
        loss_batch.reference_chosen = cached(0);
        loss_batch.reference_rejected = cached(1);
      } else if (strategy_ != ReferenceStrategy::none) {
        std::tie(loss_batch.reference_chosen, loss_batch.reference_rejected) = with_reference([&](CausalLM& model) {
          auto [c, r] = score_pairs(model, batch);
          return std::pair{detached(c), detached(r)};
        });
      }
    } else {
      loss_batch.completions = score(*policy_, batch, &TokenizedExample::completion);
      auto flags = torch::zeros({static_cast<std::int64_t>(batch.size())}, torch::kBool);
      for (std::size_t i = 0; i < batch.size(); ++i) flags[static_cast<std::int64_t>(i)] = batch[i]->desirable;
      loss_batch.desirable = flags.to(device_);
      if (strategy_ == ReferenceStrategy::precomputed) {
        loss_batch.reference_completions = cached(0);
      } else if (strategy_ != ReferenceStrategy::none) {
        loss_batch.reference_completions = with_reference(
            [&](CausalLM& model) { return detached(score(model, batch, &TokenizedExample::completion)); });
      }
      if (requirements_.kl_completions) {
        {
          // TRL computes the policy's KL log-probs without gradients.
          torch::NoGradGuard no_grad;
          loss_batch.kl = detached(score(*policy_, batch, &TokenizedExample::kl_completion));
        }
        if (strategy_ == ReferenceStrategy::precomputed) {
          loss_batch.reference_kl = cached(2);
        } else if (strategy_ != ReferenceStrategy::none) {
          loss_batch.reference_kl = with_reference(
              [&](CausalLM& model) { return detached(score(model, batch, &TokenizedExample::kl_completion)); });
        }
      }
    }
    auto result = call_plugin(*loss_plugin_, "to compute the loss", [&] { return loss_->compute(loss_batch); });
    if (!result.loss.defined() || result.loss.numel() != 1)
      throw DiagnosticError(plugin_failure(*loss_plugin_, "to compute the loss", "it returned no scalar loss"));
    return {std::move(result), tokens};
  }

  // One pass over train and eval with the starting policy, storing each example's reference
  // log-probs (0: completion or chosen, 1: rejected, 2: KL completion).
  void precompute_reference() {
    const auto start = Clock::now();
    const auto size = static_cast<std::size_t>(recipe_.section("training").get_int("per_device_eval_batch_size"));
    for (auto [split, cache] : {std::pair{&data_.train, &precomputed_train_}, std::pair{&data_.eval, &precomputed_eval_}}) {
      for (auto& v : *cache) v.assign(split->size(), std::numeric_limits<double>::quiet_NaN());
      for (std::size_t begin = 0; begin < split->size(); begin += size) {
        std::vector<const TokenizedExample*> batch;
        for (auto i = begin; i < std::min(split->size(), begin + size); ++i) batch.push_back(&(*split)[i]);
        auto store = [&](int which, const torch::Tensor& logps) {
          const auto values = logps.to(torch::kCPU).to(torch::kFloat64);
          for (std::size_t i = 0; i < batch.size(); ++i)
            (*cache)[static_cast<std::size_t>(which)][begin + i] = values[static_cast<std::int64_t>(i)].item<double>();
        };
        with_reference([&](CausalLM& model) {
          if (requirements_.examples == ExampleLayout::paired) {
            auto [c, r] = score_pairs(model, batch);
            store(0, c.logps), store(1, r.logps);
          } else {
            store(0, score(model, batch, &TokenizedExample::completion).logps);
            if (requirements_.kl_completions) store(2, score(model, batch, &TokenizedExample::kl_completion).logps);
          }
          return 0;
        });
      }
    }
    std::cerr << fmt::format("reference: log-probs of {} examples precomputed in {:.1f}s\n",
                             data_.train.size() + data_.eval.size(),
                             std::chrono::duration<double>(Clock::now() - start).count());
  }

  // --- the precomputed reference, cached on disk -----------------------------------------------

  fs::path reference_cache_path() const {
    const auto section = recipe_.section("reference");
    return section.has("cache") ? section.get_path("cache") : run_dir_ / "reference-logps.safetensors";
  }

  // What the reference log-probs depend on, in parts a message can name.
  std::vector<CacheKeyPart> reference_cache_key() const {
    const auto model = recipe_.section("model");
    const auto training = recipe_.section("training");
    std::vector<CacheKeyPart> key;

    ContentHash weights;
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(model_path_))
      if (const auto name = entry.path().filename().string();
          name == "config.json" || entry.path().extension() == ".safetensors" || name == "model.safetensors.index.json")
        files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) weights.add_file(f);
    std::string about = fmt::format("{}, {}", model_path_.string(), training.get_string("precision"));
    weights.add(training.get_string("precision")).add(model.get_string("quantization"));
    if (model.get_string("quantization") != "none") about += ", " + model.get_string("quantization");
    if (lora_ && recipe_.section("lora").has("init_adapter")) {
      const auto adapter = recipe_.section("lora").get_path("init_adapter");
      weights.add_file(adapter / "adapter_config.json").add_file(adapter / "adapter_model.safetensors");
      about += ", adapter " + adapter.string();
    }
    key.push_back({"model", weights.hex(), about});

    // The [data] section's values and the files its path keys name; the seed picks the eval split.
    ContentHash data;
    std::vector<std::string> shown;
    for (const auto& [name, entry] : recipe_.sections.at("data").entries) {
      const auto text = to_toml_text(entry.value);
      data.add(name).add(text);
      if (entry.spec.type == OptionType::path && std::holds_alternative<std::string>(entry.value) &&
          fs::is_regular_file(std::get<std::string>(entry.value)))
        data.add_file(std::get<std::string>(entry.value));
      if (name == "format" || name == "path") shown.push_back(fmt::format("{} = {}", name, text));
    }
    data.add(static_cast<std::int64_t>(seed_));
    key.push_back({"data", data.hex(), fmt::format("[data] {}, seed {}", fmt::join(shown, ", "), seed_)});

    ContentHash tokenization;
    const auto tokenizer_dir = tokenizer_->origin().parent_path();
    for (const char* file : {"tokenizer.json", "tokenizer_config.json", "chat_template.jinja", "special_tokens_map.json"})
      tokenization.add_file(tokenizer_dir / file);
    std::string limits;
    for (const char* name : {"max_length", "max_prompt_length", "max_completion_length", "truncation_mode"}) {
      // The entry, not has(): a default and the same value written out are one setting.
      const auto& value = recipe_.sections.at("training").entries.at(name).value;
      const auto text = std::holds_alternative<std::monostate>(value) ? std::string("unset") : to_toml_text(value);
      tokenization.add(std::string(name)).add(text);
      limits += fmt::format(", {} {}", name, text);
    }
    key.push_back({"tokenization", tokenization.hex(), tokenizer_dir.string() + limits});

    ContentHash scoring;
    scoring.add(static_cast<std::int64_t>(requirements_.reduction)).add(static_cast<std::int64_t>(requirements_.examples));
    key.push_back({"scoring", scoring.hex(),
                   fmt::format("{} log-probs", requirements_.reduction == LogProbReduction::mean ? "mean" : "summed")});

    key.push_back({"examples", examples_hash(),
                   fmt::format("{} train and {} eval examples as tokenized", data_.train.size(), data_.eval.size())});
    return key;
  }

  // Every token of every example, in order: what the loop will actually see.
  std::string examples_hash() const {
    ContentHash hash;
    for (const auto* split : {&data_.train, &data_.eval}) {
      hash.add(static_cast<std::int64_t>(split->size()));
      for (const auto& e : *split) {
        for (const auto* ids : {&e.prompt, &e.completion, &e.rejected, &e.kl_completion}) {
          hash.add(static_cast<std::int64_t>(ids->size()));
          hash.add(ids->data(), ids->size() * sizeof(std::int64_t));
        }
        hash.add(static_cast<std::int64_t>(e.desirable));
      }
    }
    return hash.hex();
  }

  // The reference's log-probs from the cache when it was made for this run, else computed once and cached.
  void prepare_reference_logps() {
    const auto file = reference_cache_path();
    const auto key = reference_cache_key();
    if (auto cache = read_reference_cache(file, key)) {
      precomputed_train_ = std::move(cache->train);
      precomputed_eval_ = std::move(cache->eval);
      std::cerr << fmt::format("reference: log-probs of {} examples reused from {}\n",
                               data_.train.size() + data_.eval.size(), file.string());
      return;
    }
    precompute_reference();
    ReferenceCache cache;
    for (auto [from, to] : {std::pair{&precomputed_train_, &cache.train}, std::pair{&precomputed_eval_, &cache.eval}})
      for (std::size_t slot = 0; slot < from->size(); ++slot)
        if (std::any_of((*from)[slot].begin(), (*from)[slot].end(), [](double v) { return !std::isnan(v); }))
          (*to)[slot] = (*from)[slot];
    write_reference_cache(file, key, cache);
    std::cerr << fmt::format("reference: cached in {}\n", file.string());
  }

  // --- checkpoints --------------------------------------------------------------------------

  AdamWState* adamw_state(const torch::Tensor& parameter) const {
    auto& states = optimizer_->state();
    auto it = states.find(compat::optimizer_state_key(*optimizer_, parameter));
    return it == states.end() ? nullptr : static_cast<AdamWState*>(it->second.get());
  }

  // checkpoint-STEP/: trainable.safetensors (the trained tensors under the model's names),
  // optimizer.safetensors (AdamW's moments and step counts), rng_state.safetensors,
  // loss_state.safetensors (a loss's running statistics, when it keeps any), adapter/
  // (with LoRA, PEFT's format) and trainer_state.json (data position, logging window), written
  // last; the folder appears whole or not at all.
  void save_checkpoint(std::int64_t step) {
    const auto start = Clock::now();
    const auto target = run_dir_ / fmt::format("checkpoint-{}", step);
    if (fs::exists(target / "trainer_state.json")) return;  // resumed from this very step
    AtomicDirectory folder(target);
    const auto& dir = folder.staging();
    std::vector<std::pair<std::string, torch::Tensor>> weights, moments;
    // Under mixed precision the fp32 masters, not the rounded model weights: a resume is exact.
    for (std::size_t i = 0; i < trainable_.size(); ++i) {
      const auto& name = trainable_names_[i];
      weights.emplace_back(name, optimized()[i].detach());
      if (const auto* state = adamw_state(optimized()[i])) {
        moments.emplace_back(name + ".exp_avg", state->exp_avg());
        moments.emplace_back(name + ".exp_avg_sq", state->exp_avg_sq());
        moments.emplace_back(name + ".step", torch::tensor(state->step(), torch::kInt64));
      }
    }
    safetensors::save(dir / "trainable.safetensors", weights);
    fault_point("checkpoint-file");
    safetensors::save(dir / "optimizer.safetensors", moments);
    fault_point("checkpoint-file");
    std::vector<std::pair<std::string, torch::Tensor>> rng{{"cpu", at::detail::getDefaultCPUGenerator().get_state()}};
    if (device_.is_cuda()) rng.emplace_back("cuda", at::globalContext().defaultGenerator(device_).get_state());
    safetensors::save(dir / "rng_state.safetensors", rng);
    fault_point("checkpoint-file");
    const auto loss_state = call_plugin(*loss_plugin_, "to save its state", [&] { return loss_->state(); });
    if (!loss_state.empty()) {
      safetensors::save(dir / "loss_state.safetensors", {loss_state.begin(), loss_state.end()});
      fault_point("checkpoint-file");
    }
    if (lora_) {
      save_peft_adapter(*policy_, lora_config_, dir / "adapter", model_path_.string());
      fault_point("checkpoint-file");
    }
    std::ostringstream shuffle_state;
    shuffle_state << shuffle_rng_;
    nlohmann::json state = {
        {"format", kTrainerStateFormat},
        {"step", step},
        {"max_steps", recipe_.section("training").get_int("max_steps")},
        {"examples", examples_hash()},
        {"trainable", trainable_names_},
        {"examples_seen", examples_seen_},
        {"cursor", cursor_},
        {"order", order_},
        {"shuffle_rng", shuffle_state.str()},
        {"window", {{"values", window_.to_json()}, {"loss", window_loss_}, {"steps", window_steps_}, {"tokens", window_tokens_}}},
    };
    if (loss_scaler_)
      state["loss_scaler"] = {{"scale", loss_scaler_->scale()}, {"growth_tracker", loss_scaler_->growth_tracker()}};
    write_file_atomically(dir / "trainer_state.json", state.dump(1));
    fault_point("checkpoint-file");
    fault_point("checkpoint-commit");
    folder.commit();
    fault_point("checkpoint-prune");
    prune_checkpoints(run_dir_, recipe_.section("training").get_int("save_total_limit"));
    std::cerr << fmt::format("checkpoint: {} ({:.1f}s)\n", target.string(),
                             std::chrono::duration<double>(Clock::now() - start).count());
  }

  // Puts the loop back where checkpoint `c` left it; returns its step.
  std::int64_t restore_checkpoint(const CheckpointFolder& c) {
    const auto state_file = c.path / "trainer_state.json";
    nlohmann::json state;
    try {
      std::ifstream in(state_file);
      state = nlohmann::json::parse(in);
      if (state.at("format").get<int>() != kTrainerStateFormat)
        throw_file_error(state_file.string(), fmt::format("is format {}; this alignkit reads format {}",
                                                          state.at("format").get<int>(), kTrainerStateFormat));
    } catch (const nlohmann::json::exception& e) {
      throw_file_error(state_file.string(), fmt::format("is not a trainer state: {}", e.what()));
    }
    auto refuse = [&](const std::string& what) {
      throw_file_error(c.path.string(), what, "resume with the recipe the run was started with (its recipe.toml)");
    };
    try {
      if (state.at("examples").get<std::string>() != examples_hash())
        refuse("was written for other training data (the examples as tokenized differ from this run's)");
      if (state.at("trainable").get<std::vector<std::string>>() != trainable_names_)
        refuse("was written for other trainable parameters (did [lora] or the model change?)");
      const auto weights = safetensors::File::open(c.path / "trainable.safetensors");
      const auto moments = safetensors::File::open(c.path / "optimizer.safetensors");
      torch::NoGradGuard no_grad;
      for (std::size_t i = 0; i < trainable_.size(); ++i) {
        const auto& name = trainable_names_[i];
        const auto saved = weights.tensor(name);
        const auto& target = optimized()[i];
        if (saved.sizes() != target.sizes()) refuse(fmt::format("holds {} with another shape", name));
        target.copy_(saved);
        if (!moments.find(name + ".exp_avg")) continue;
        auto restored = std::make_unique<AdamWState>();
        restored->step(moments.tensor(name + ".step").item<std::int64_t>());
        // In the dtype AdamW keeps them in (a checkpoint of another master_weights setting converts).
        restored->exp_avg(moments.tensor(name + ".exp_avg").to(target.device(), target.scalar_type()).clone());
        restored->exp_avg_sq(moments.tensor(name + ".exp_avg_sq").to(target.device(), target.scalar_type()).clone());
        optimizer_->state()[compat::optimizer_state_key(*optimizer_, target)] = std::move(restored);
      }
      copy_masters_to_model();
      if (loss_scaler_ && state.contains("loss_scaler"))
        loss_scaler_->restore(state["loss_scaler"].at("scale").get<double>(),
                              state["loss_scaler"].at("growth_tracker").get<std::int64_t>());
      const auto rng = safetensors::File::open(c.path / "rng_state.safetensors");
      // Generators are handles: a copy sets the shared state.
      auto cpu_generator = at::detail::getDefaultCPUGenerator();
      cpu_generator.set_state(rng.tensor("cpu").clone());
      if (device_.is_cuda() && rng.find("cuda")) {
        auto cuda_generator = at::globalContext().defaultGenerator(device_);
        cuda_generator.set_state(rng.tensor("cuda").clone());
      }
      if (fs::exists(c.path / "loss_state.safetensors")) {
        const auto file = safetensors::File::open(c.path / "loss_state.safetensors");
        std::map<std::string, torch::Tensor> loss_state;
        for (const auto& t : file.header().tensors) loss_state[t.name] = file.tensor(t.name).clone();
        call_plugin(*loss_plugin_, "to restore its state", [&] { loss_->load_state(loss_state); });
      }
      examples_seen_ = state.at("examples_seen").get<std::int64_t>();
      cursor_ = state.at("cursor").get<std::size_t>();
      order_ = state.at("order").get<std::vector<std::size_t>>();
      std::istringstream(state.at("shuffle_rng").get<std::string>()) >> shuffle_rng_;
      const auto& window = state.at("window");
      window_.from_json(window.at("values"));
      window_loss_ = window.at("loss").get<double>();
      window_steps_ = window.at("steps").get<std::int64_t>();
      window_tokens_ = window.at("tokens").get<std::int64_t>();
    } catch (const nlohmann::json::exception& e) {
      throw_file_error(state_file.string(), fmt::format("is not a trainer state: {}", e.what()));
    }
    const auto step = state.at("step").get<std::int64_t>();
    std::cerr << fmt::format("resume: from {} (step {})\n", c.path.string(), step);
    return step;
  }

  // --- the update ---------------------------------------------------------------------------

  // The tensors AdamW updates: the fp32 masters under mixed precision, else the trainable ones.
  const std::vector<torch::Tensor>& optimized() const { return masters_.empty() ? trainable_ : masters_; }

  double loss_scale() const { return loss_scaler_ ? loss_scaler_->scale() : 1.0; }

  // Mixed precision: after each micro-batch's backward its low-precision gradients are added, in
  // fp32, to the masters' and freed, so accumulation over micro-batches happens in fp32.
  void move_gradients_to_masters() {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < masters_.size(); ++i) {
      if (masters_[i].is_same(trainable_[i])) continue;
      auto& grad = trainable_[i].mutable_grad();
      if (!grad.defined()) continue;
      auto& master_grad = masters_[i].mutable_grad();
      if (master_grad.defined()) master_grad.add_(grad);
      else master_grad = grad.to(torch::kFloat32);
      grad.reset();
    }
  }

  // Unscales (fp16), clips, steps AdamW and copies the masters into the model; returns the
  // gradient norm before clipping. A step whose fp16 gradients overflowed is skipped, as
  // GradScaler skips it, and the scale backs off.
  double update(double max_grad_norm, std::int64_t step) {
    if (loss_scaler_) {
      std::vector<torch::Tensor> grads;
      for (const auto& p : optimized()) grads.push_back(p.grad());
      const double scale = loss_scaler_->scale();
      const bool found_inf = loss_scaler_->unscale(grads);
      loss_scaler_->update(found_inf);
      if (found_inf) {
        std::cerr << fmt::format("step {}: the fp16 gradients overflowed at loss scale {}; step skipped, scale now {}\n",
                                 step, scale, loss_scaler_->scale());
        const double norm = clip_gradients(0);
        compat::zero_grad_in_place(*optimizer_);
        return norm;
      }
    }
    const double grad_norm = clip_gradients(max_grad_norm);
    optimizer_->step();
    compat::zero_grad_in_place(*optimizer_);
    copy_masters_to_model();
    return grad_norm;
  }

  // The model's weights are the masters rounded to the compute dtype.
  void copy_masters_to_model() {
    torch::NoGradGuard no_grad;
    for (std::size_t i = 0; i < masters_.size(); ++i)
      if (!masters_[i].is_same(trainable_[i])) trainable_[i].copy_(masters_[i]);
  }

  double clip_gradients(double max_norm) {
    std::vector<torch::Tensor> with_grad;
    for (const auto& p : optimized())
      if (p.grad().defined()) with_grad.push_back(p);
    if (with_grad.empty()) return 0.0;
    if (max_norm > 0) return torch::nn::utils::clip_grad_norm_(with_grad, max_norm);
    double total = 0;
    for (const auto& p : with_grad) total += p.grad().to(torch::kFloat64).pow(2).sum().item<double>();
    return std::sqrt(total);
  }

  std::map<std::string, double> evaluate() {
    torch::NoGradGuard no_grad;
    const bool was_training = policy_->is_training();
    policy_->eval();
    const auto size = static_cast<std::size_t>(recipe_.section("training").get_int("per_device_eval_batch_size"));
    // As transformers and TRL evaluate: eval_loss is the mean over examples (each batch's loss
    // counted once per example in it), the method's metrics the mean of the batches' means.
    Averages averages;
    double loss_sum = 0;
    for (std::size_t begin = 0; begin < data_.eval.size(); begin += size) {
      std::vector<const TokenizedExample*> batch;
      for (auto i = begin; i < std::min(data_.eval.size(), begin + size); ++i) batch.push_back(&data_.eval[i]);
      auto [result, tokens] = forward(batch, /*training=*/false);
      loss_sum += result.loss.item<double>() * static_cast<double>(batch.size());
      averages.add(result.metrics);
    }
    if (was_training) policy_->train();
    auto means = averages.means("eval_");
    means["eval_loss"] = loss_sum / static_cast<double>(data_.eval.size());
    return means;
  }

  void print_progress(std::int64_t step, std::int64_t total, const std::map<std::string, double>& values,
                      double tokens_per_second, double eta_seconds) const {
    std::string line = fmt::format("step {}/{}", step, total);
    for (const char* name : {"loss", "rewards/accuracies", "rewards/margins", "accuracy", "margin", "grad_norm",
                             "learning_rate", "eval_loss", "eval_rewards/accuracies", "eval_accuracy"})
      if (auto it = values.find(name); it != values.end()) line += fmt::format(" | {} {:.4g}", name, it->second);
    line += fmt::format(" | {:.0f} tok/s | ETA {}", tokens_per_second, duration(eta_seconds));
    std::cerr << line << "\n";
  }

  // --- outputs ------------------------------------------------------------------------------

  void save_final(const fs::path& dir) {
    const auto output = recipe_.section("output");
    fs::create_directories(dir);
    if (lora_ && output.get_bool("save_adapter")) {
      save_peft_adapter(*policy_, lora_config_, dir / "adapter", model_path_.string());
      std::cerr << fmt::format("saved the adapter to {}\n", (dir / "adapter").string());
    }
    if (!output.get_bool("save_model")) return;
    auto model = policy_;
    if (lora_) {
      if (quantization_ != BaseQuantization::none) {
        // The adapter merges into the full-precision base, as PEFT's merge of a k-bit model.
        model = load_model(model_path_, dtype_, BaseQuantization::none, requirements_.sequence_scores ? 1 : 0);
        auto adapter = dir / "adapter";
        if (!output.get_bool("save_adapter")) {
          adapter = run_dir_ / ".adapter-to-merge";
          save_peft_adapter(*policy_, lora_config_, adapter, model_path_.string());
        }
        load_peft_adapter(*model, adapter);
        if (!output.get_bool("save_adapter")) fs::remove_all(adapter);
      }
      merge_lora(*model);
    }
    call_plugin(*loader_plugin_, "to save the model", [&] { loader_->save(*model, dir / "model"); });
    if (requirements_.sequence_scores) record_pad_token(dir / "model" / "config.json");
    for (const char* file : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json",
                             "chat_template.jinja"}) {
      const auto from = tokenizer_->origin().parent_path() / file;
      if (fs::exists(from)) fs::copy_file(from, dir / "model" / file, fs::copy_options::overwrite_existing);
    }
    std::cerr << fmt::format("saved the model to {}\n", (dir / "model").string());
  }

  // transformers' sequence classifiers pool at the last token that is not config.pad_token_id
  // (TRL's RewardTrainer sets it from the tokenizer before training): the saved reward model
  // must pool where training read its scores.
  void record_pad_token(const fs::path& config_file) const {
    if (!fs::exists(config_file)) return;  // a loader of another format
    std::ifstream in(config_file);
    auto config = nlohmann::json::parse(in);
    config["pad_token_id"] = pad_id_;  // the id the scores were pooled by, as TRL overwrites it
    write_file_atomically(config_file, config.dump(2) + "\n");
  }

  const ValidatedRecipe& recipe_;
  PluginRegistry& registry_;
  fs::path run_dir_;
  std::optional<CheckpointFolder> resume_from_;
  MetricsLog metrics_;

  std::uint64_t seed_ = 0;
  std::mt19937_64 shuffle_rng_;
  torch::Device device_ = torch::kCPU;
  torch::ScalarType dtype_ = torch::kFloat32;
  std::int64_t chunk_ = 256;
  bool packing_ = false;  // [training] packing: score rows padding-free
  std::int64_t pad_id_ = 0;

  const PluginRecord* loss_plugin_ = nullptr;
  std::shared_ptr<Loss> loss_;
  LossRequirements requirements_;
  std::optional<Tokenizer> tokenizer_;
  TrainingData data_;
  std::vector<std::size_t> order_;
  std::size_t cursor_ = 0;
  std::int64_t examples_seen_ = 0;

  const PluginRecord* loader_plugin_ = nullptr;
  std::shared_ptr<ModelLoader> loader_;
  fs::path model_path_;
  BaseQuantization quantization_ = BaseQuantization::none;
  bool lora_ = false;
  LoraConfig lora_config_;
  std::shared_ptr<CausalLM> policy_, reference_;
  ReferenceStrategy strategy_ = ReferenceStrategy::none;
  std::array<std::vector<double>, 3> precomputed_train_, precomputed_eval_;

  std::vector<torch::Tensor> trainable_;
  std::vector<std::string> trainable_names_;
  // Mixed precision: one per trainable tensor, an fp32 copy (or the tensor itself when it is
  // fp32); empty when AdamW updates the trainable tensors in place.
  std::vector<torch::Tensor> masters_;
  std::optional<DynamicLossScaler> loss_scaler_;  // float16 only
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  Averages window_;
  double window_loss_ = 0;
  std::int64_t window_steps_ = 0, window_tokens_ = 0;
  const PluginRecord* scheduler_plugin_ = nullptr;
  std::shared_ptr<Scheduler> scheduler_;
  ScheduleShape shape_;
};

}  // namespace

void check_training_recipe(const ValidatedRecipe& recipe) {
  std::vector<Diagnostic> problems;
  const auto training = recipe.section("training");
  if (!training.has("max_steps"))
    problems.push_back(training.error("max_steps", "[training] max_steps is not set", "set the number of optimizer steps"));
  const bool lora = recipe.has_section("lora") && recipe.section("lora").get_bool("enabled");
  const auto model = recipe.section("model");
  if (model.get_string("quantization") != "none" && !lora)
    problems.push_back(model.error("quantization", "a quantized base needs LoRA adapters to train",
                                   "add a [lora] section, or set quantization = \"none\""));
  // As GradScaler refuses to unscale fp16 gradients: unscaled, they underflow.
  if (training.get_string("precision") == "float16" && training.get_string("master_weights") == "none" && !lora)
    problems.push_back(training.error("master_weights", "full fine-tuning in float16 needs float32 master weights",
                                      "set master_weights = \"float32\", or use precision = \"bfloat16\""));
  const auto reference = recipe.section("reference");
  if (reference.get_string("strategy") == "adapter-off" && !lora)
    problems.push_back(reference.error("strategy", "adapter-off needs LoRA adapters on the policy",
                                       "add a [lora] section, or use strategy = \"copy\""));
  if (lora && recipe.section("lora").has("init_adapter"))
    for (const char* key : {"r", "alpha", "dropout", "use_rslora", "target_modules"})
      if (recipe.section("lora").has(key))
        problems.push_back(recipe.section("lora").error(key, fmt::format("'{}' is set by init_adapter's adapter_config.json", key),
                                                        "remove it, or drop init_adapter to start a fresh adapter"));
  try {
    (void)select_device(recipe.section("run"));
  } catch (const DiagnosticError& e) {
    problems.insert(problems.end(), e.diagnostics().begin(), e.diagnostics().end());
  }
  if (!problems.empty()) throw RecipeInvalid(std::move(problems), false);
}

namespace {

// The step and planned length a checkpoint records.
std::pair<std::int64_t, std::int64_t> checkpoint_progress(const CheckpointFolder& c) {
  const auto file = c.path / "trainer_state.json";
  try {
    std::ifstream in(file);
    const auto state = nlohmann::json::parse(in);
    return {state.at("step").get<std::int64_t>(), state.at("max_steps").get<std::int64_t>()};
  } catch (const nlohmann::json::exception& e) {
    throw_file_error(file.string(), fmt::format("is not a trainer state: {}", e.what()));
  }
}

}  // namespace

void check_fresh_run_folder(const fs::path& run_dir) {
  const auto latest = latest_checkpoint(run_dir);
  if (!latest) return;
  const auto [step, max_steps] = checkpoint_progress(*latest);
  if (step >= max_steps) return;
  throw DiagnosticError(make_error(
      fmt::format("{} holds {} of an unfinished run (step {} of {}); a new run there would discard it",
                  run_dir.string(), latest->path.filename().string(), step, max_steps),
      fmt::format("resume it with `alignkit train --resume {}`, or choose another folder with --output or [run] "
                  "output_dir",
                  run_dir.string())));
}

std::optional<CheckpointFolder> resumable_checkpoint(const fs::path& run_dir) {
  if (!fs::is_regular_file(run_dir / "recipe.toml"))
    throw DiagnosticError(make_error(fmt::format("{} is not a run folder: it has no recipe.toml", run_dir.string()),
                                     "pass the folder a run wrote (runs/<name>, or its --output)"));
  auto latest = latest_checkpoint(run_dir);
  if (!latest)
    throw DiagnosticError(make_error(fmt::format("{} has no checkpoint to resume from", run_dir.string()),
                                     "a run writes one every [training] save_steps, when SIGINT or SIGTERM stops "
                                     "it, and at its end"));
  return latest;
}

TrainingOutcome train(const ValidatedRecipe& recipe, PluginRegistry& registry, const fs::path& run_dir,
                      const std::optional<CheckpointFolder>& resume_from) {
  Trainer trainer(recipe, registry, run_dir, resume_from);
  return trainer.run();
}

}  // namespace alignkit
