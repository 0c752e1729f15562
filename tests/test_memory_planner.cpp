// The memory planner (framework/host/memory_planner.hpp): exact parts equal the bytes the SDK
// allocates, estimated parts move as their formulas say, and a recipe that cannot fit gets
// ranked suggestions.
#include <chrono>
#include <cmath>
#include <fstream>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <alignkit/lora.hpp>
#include <alignkit/quantization.hpp>

#include "host/memory_planner.hpp"
#include "test_support.hpp"

namespace alignkit {
namespace {

namespace fs = std::filesystem;

const fs::path kLlama = testing::source_dir() / "tests/fixtures/oracle/llama";

// Llama-3.1-70B's config.json, as ModelLoader::describe reads it.
ModelDescription llama70b() {
  ModelDescription m;
  m.architecture = "LlamaForCausalLM";
  m.vocab_size = 128256;
  m.hidden_size = 8192;
  m.intermediate_size = 28672;
  m.num_layers = 80;
  m.num_attention_heads = 64;
  m.num_key_value_heads = 8;
  m.head_dim = 128;
  const std::int64_t h = 8192, q = 8192, kv = 1024;
  m.parameters = 2 * m.vocab_size * h + 80 * (h * q + 2 * h * kv + q * h + 3 * h * m.intermediate_size + 2 * h) + h;
  return m;
}

// Llama-2-7B's shape (the T4 example of issue 7).
ModelDescription llama7b() {
  ModelDescription m;
  m.vocab_size = 32000;
  m.hidden_size = 4096;
  m.intermediate_size = 11008;
  m.num_layers = 32;
  m.num_attention_heads = 32;
  m.num_key_value_heads = 32;
  m.head_dim = 128;
  const std::int64_t h = 4096;
  m.parameters = 2 * m.vocab_size * h + 32 * (4 * h * h + 3 * h * m.intermediate_size + 2 * h) + h;
  return m;
}

LossRequirements dpo() {
  LossRequirements r;
  r.reference_model = true;
  r.examples = ExampleLayout::paired;
  return r;
}

const PlanComponent* find(const MemoryPlan& plan, const std::string& prefix) {
  for (const auto& c : plan.components)
    if (c.name.rfind(prefix, 0) == 0) return &c;
  return nullptr;
}

TEST(MemoryPlanner, SeventyBillionPlansInstantlyWithBf16WeightsOfTwoBytesEach) {
  const auto model = llama70b();
  PlanSettings st;
  st.precision = Precision::bf16;
  st.micro_batch = 1;
  st.max_length = 4096;
  const auto start = std::chrono::steady_clock::now();
  const auto plan = plan_memory(model, dpo(), st, *gpu_budget("h100-80"));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 100);
  ASSERT_NE(find(plan, "policy weights"), nullptr);
  EXPECT_EQ(find(plan, "policy weights")->bytes, 2 * model.parameters);
  EXPECT_FALSE(plan.fits);
  EXPECT_FALSE(plan.suggestions.empty());
}

TEST(MemoryPlanner, Nf4BytesEqualStorageBytesOfQuantizedTensors) {
  for (const auto& [rows, cols] : std::vector<std::pair<std::int64_t, std::int64_t>>{{64, 64}, {96, 40}, {7, 9}, {300, 128}}) {
    const auto w = torch::randn({rows, cols});
    EXPECT_EQ(quantized_matrix_bytes(rows, cols, BaseQuantization::nf4, 4), quantize_nf4(w, false).storage_bytes());
    EXPECT_EQ(quantized_matrix_bytes(rows, cols, BaseQuantization::nf4_double_quant, 4),
              quantize_nf4(w, true).storage_bytes());
    EXPECT_EQ(quantized_matrix_bytes(rows, cols, BaseQuantization::int8, 4), quantize_int8(w).storage_bytes());
  }
  // QLoRA's figures: 4.5 bits per parameter, about 4.127 with double quantization.
  const std::int64_t n = 4096ll * 4096;
  EXPECT_DOUBLE_EQ(8.0 * quantized_matrix_bytes(4096, 4096, BaseQuantization::nf4, 2) / n, 4.5);
  EXPECT_NEAR(8.0 * quantized_matrix_bytes(4096, 4096, BaseQuantization::nf4_double_quant, 2) / n, 4.127, 0.001);
}

TEST(MemoryPlanner, QuantizedPolicyWeightsEqualTheLoadedModelsBytes) {
  testing::HfLoader hf;
  for (const auto q : {BaseQuantization::int8, BaseQuantization::nf4, BaseQuantization::nf4_double_quant}) {
    LoadOptions options;
    options.quantization = q;
    const auto model = hf.loader->load(kLlama, options);
    std::int64_t loaded = 0;
    for (const auto& item : model->named_modules())
      if (auto* linear = dynamic_cast<AdaptableLinearImpl*>(item.value().get())) loaded += linear->base_weight_bytes();
    for (const auto& p : model->parameters()) loaded += p.numel() * static_cast<std::int64_t>(p.element_size());
    PlanSettings st;
    st.lora = true;
    st.quantization = q;
    const auto plan = plan_memory(hf.loader->describe(kLlama), dpo(), st, memory_gib_budget(0));
    EXPECT_EQ(find(plan, "policy weights")->bytes, loaded) << static_cast<int>(q);
    // A quantized `copy` reference ([reference] quantization) is the same load.
    PlanSettings copy;
    copy.reference = PlanReference::copy;
    copy.reference_quantization = q;
    const auto with_copy = plan_memory(hf.loader->describe(kLlama), dpo(), copy, memory_gib_budget(0));
    EXPECT_EQ(find(with_copy, "reference weights (copy)")->bytes, loaded) << static_cast<int>(q);
  }
}

TEST(MemoryPlanner, PricesTheAttentionThatRuns) {
  // fp32 on the CPU with head_dim 16: the fused kernel, no T^2 terms; [model] attention = "eager"
  // or a CUDA device: eager attention's scores and additive mask.
  testing::HfLoader hf;
  const auto model = hf.loader->describe(kLlama);
  PlanSettings st;
  st.micro_batch = 2;
  st.max_length = 512;
  const auto fused = plan_memory(model, dpo(), st, memory_gib_budget(0));
  ASSERT_NE(find(fused, "fused attention key blocks"), nullptr);
  EXPECT_EQ(find(fused, "attention scores"), nullptr);
  EXPECT_EQ(find(fused, "mask, rope"), nullptr);
  st.eager_attention = true;
  const auto eager = plan_memory(model, dpo(), st, memory_gib_budget(0));
  EXPECT_EQ(find(eager, "fused attention key blocks"), nullptr);
  // Four rows x 4 heads x 512^2 scores, three fp32 tensors of them at once.
  EXPECT_EQ(find(eager, "attention scores (transient)")->bytes, 4 * 4 * 512 * 512 * 12);
  ASSERT_NE(find(eager, "mask, rope"), nullptr);
  EXPECT_GT(eager.peak, fused.peak);
  st.eager_attention = false;
  st.device = PlanDevice::cuda;
  EXPECT_NE(find(plan_memory(model, dpo(), st, memory_gib_budget(0)), "attention scores (transient)"), nullptr);
}

OnlineSpec ppo() {
  OnlineSpec r;
  r.reference_model = true;
  r.max_completion_tokens = 128;
  r.reward_model = true;
  r.value_model = true;
  return r;
}

TEST(MemoryPlanner, OnlineModelsArePricedByTheirOwnShapesOrAsAdaptersOnTheBase) {
  testing::HfLoader hf;
  const auto policy = hf.loader->describe(kLlama);
  const auto reward = hf.loader->describe(testing::source_dir() / "tests/fixtures/oracle/llama_seqcls");
  PlanSettings st;
  st.lora = true;
  st.lora_r = 8;
  st.quantization = BaseQuantization::nf4;
  st.reference = PlanReference::adapter_off;
  st.reward_model.model = reward;
  st.reward_model.quantization = BaseQuantization::nf4;
  st.value_model = st.reward_model;
  const auto own = plan_memory(policy, ppo(), st, memory_gib_budget(0));
  // Each own model is a quantized load of its configuration, as the policy is.
  PlanSettings as_policy;
  as_policy.lora = true;
  as_policy.quantization = BaseQuantization::nf4;
  const auto reward_alone = plan_memory(reward, dpo(), as_policy, memory_gib_budget(0));
  EXPECT_EQ(find(own, "reward model weights")->bytes, find(reward_alone, "policy weights")->bytes);
  EXPECT_EQ(find(own, "value model weights")->bytes, find(reward_alone, "policy weights")->bytes);
  // The value model trains through an adapter and a one-output head, fp32, with gradients and moments.
  const auto adapter = lora_trainable_parameters(reward, 8, st.lora_targets) + reward.hidden_size;
  EXPECT_EQ(find(own, "value adapter and head")->bytes, adapter * 4);
  EXPECT_EQ(find(own, "value gradients")->bytes, adapter * 4);
  EXPECT_EQ(find(own, "value AdamW moments")->bytes, 2 * adapter * 4);
  ASSERT_NE(find(own, "KV cache"), nullptr);
  ASSERT_NE(find(own, "rollout buffers"), nullptr);

  // Shared base: no second model's weights, an adapter and head each on the policy's shapes.
  st.reward_model.share_base = st.value_model.share_base = true;
  const auto shared = plan_memory(policy, ppo(), st, memory_gib_budget(0));
  EXPECT_EQ(find(shared, "reward model weights"), nullptr);
  EXPECT_EQ(find(shared, "value model weights"), nullptr);
  const auto on_base = lora_trainable_parameters(policy, 8, st.lora_targets) + policy.hidden_size;
  EXPECT_EQ(find(shared, "reward adapter and head")->bytes, on_base * 4);
  EXPECT_EQ(find(shared, "value adapter and head")->bytes, on_base * 4);
  EXPECT_LT(shared.peak, own.peak);
}

TEST(MemoryPlanner, CheckpointingKeepsOnlyEachLayersInput) {
  const auto model = llama7b();
  PlanSettings st;
  st.precision = Precision::bf16;
  st.micro_batch = 2;
  st.max_length = 512;
  const auto full = plan_memory(model, dpo(), st, memory_gib_budget(0));
  st.gradient_checkpointing = true;
  const auto ckpt = plan_memory(model, dpo(), st, memory_gib_budget(0));
  const char* working_set = "layer backward working set (transient)";
  for (const auto* c : {find(full, "activations (all layers)"), find(ckpt, "activations (checkpointed layer inputs)"),
                        find(full, working_set), find(ckpt, working_set)})
    ASSERT_NE(c, nullptr) << plan_to_json(full).dump() << plan_to_json(ckpt).dump();
  const auto all = find(full, "activations (all layers)")->bytes;
  const auto inputs = find(ckpt, "activations (checkpointed layer inputs)")->bytes;
  // Backward recomputes one layer at a time, inside that layer's working set.
  const auto recomputed = find(ckpt, working_set)->bytes - find(full, working_set)->bytes;
  // rows = 2 examples x 2 sequences; a checkpointed layer keeps its input, rows*T*H*b.
  EXPECT_EQ(inputs, 32ll * 4 * 512 * 4096 * 2);
  EXPECT_EQ(recomputed * 32, all);  // without checkpointing every layer keeps what one recomputes
  EXPECT_EQ(all / inputs, recomputed / (4ll * 512 * 4096 * 2));
  EXPECT_GT(all / inputs, 10);
  EXPECT_LT(ckpt.peak, full.peak);
}

TEST(MemoryPlanner, ChunkedLogitsAreCredited) {
  const auto model = llama7b();
  PlanSettings st;
  st.precision = Precision::bf16;
  st.micro_batch = 2;
  st.max_length = 512;
  st.logprob_chunk = 0;
  const auto full = plan_memory(model, dpo(), st, memory_gib_budget(0));
  // Unchunked: fp32 logits + logsumexp's temporary over all 2*2*512 positions of DPO's pairs.
  EXPECT_EQ(find(full, "logits forward")->bytes, 2ll * 2 * 512 * 32000 * 8);
  st.logprob_chunk = 256;
  const auto chunked = plan_memory(model, dpo(), st, memory_gib_budget(0));
  EXPECT_EQ(find(chunked, "logits forward")->bytes, 256ll * 32000 * 8);
  EXPECT_EQ(find(full, "logits backward")->bytes - find(chunked, "logits backward")->bytes,
            (2048ll - 256) * 32000 * (8 + 2));
  EXPECT_LE(chunked.peak, full.peak);
}

TEST(MemoryPlanner, LoraTrainableCountsEqualWhatApplyLoraMakes) {
  testing::HfLoader hf;
  const auto description = hf.loader->describe(kLlama);
  const std::vector<std::vector<std::string>> target_sets = {
      {"q_proj", "v_proj"},
      {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
      {"self_attn.o_proj", "mlp.down_proj"},
      {"model.layers.1.mlp.up_proj"}};
  for (const auto& targets : target_sets) {
    for (const std::int64_t r : {4, 16}) {
      auto model = hf.loader->load(kLlama, LoadOptions{});
      LoraConfig config;
      config.r = r;
      config.target_modules = targets;
      apply_lora(*model, config);
      std::int64_t trainable = 0;
      for (const auto& p : model->parameters())
        if (p.requires_grad()) trainable += p.numel();
      EXPECT_EQ(lora_trainable_parameters(description, r, targets), trainable) << targets.front() << " r" << r;
      PlanSettings st;
      st.lora = true;
      st.lora_r = r;
      st.lora_targets = targets;
      const auto plan = plan_memory(description, dpo(), st, memory_gib_budget(0));
      EXPECT_EQ(find(plan, "LoRA adapters")->bytes, 4 * trainable);
      EXPECT_EQ(find(plan, "gradients")->bytes, 4 * trainable);
      EXPECT_EQ(find(plan, "AdamW moments")->bytes, 8 * trainable);
    }
  }
}

TEST(MemoryPlanner, FullFineTuningTrainsEveryParameterInTheComputeDtype) {
  testing::HfLoader hf;
  const auto description = hf.loader->describe(kLlama);
  auto model = hf.loader->load(kLlama, LoadOptions{});
  std::int64_t bytes = 0;
  for (const auto& p : model->parameters()) bytes += p.numel() * static_cast<std::int64_t>(p.element_size());
  PlanSettings st;
  st.precision = Precision::fp32;
  const auto plan = plan_memory(description, dpo(), st, memory_gib_budget(0));
  EXPECT_EQ(find(plan, "policy weights")->bytes, bytes);
  EXPECT_EQ(find(plan, "gradients")->bytes, bytes);
  EXPECT_EQ(find(plan, "AdamW moments")->bytes, 2 * bytes);
  EXPECT_EQ(find(plan, "reference weights (copy)")->bytes, bytes);
}

// A reward model in training is the one-output classifier the trainer loads: its weights,
// gradients and moments are that model's bytes, and it has no vocabulary logits to price.
TEST(MemoryPlanner, RewardModelIsPricedAsTheClassifierTheTrainerLoads) {
  testing::HfLoader hf;
  LoadOptions options;
  options.classification_labels = 1;
  auto model = hf.loader->load(kLlama, options);
  std::int64_t bytes = 0;
  for (const auto& p : model->parameters()) bytes += p.numel() * static_cast<std::int64_t>(p.element_size());
  LossRequirements reward;
  reward.examples = ExampleLayout::paired;
  reward.scoring = CompletionScoring::sequence_score;
  const auto plan = plan_memory(hf.loader->describe(kLlama), reward, PlanSettings{}, memory_gib_budget(0));
  EXPECT_EQ(find(plan, "policy weights")->bytes, bytes);
  EXPECT_EQ(find(plan, "gradients")->bytes, bytes);
  EXPECT_EQ(find(plan, "AdamW moments")->bytes, 2 * bytes);
  EXPECT_EQ(find(plan, "logits"), nullptr);
  EXPECT_EQ(find(plan, "reference"), nullptr);
  EXPECT_NE(find(plan, "score head backward"), nullptr);
  for (const auto& s : plan.suggestions) EXPECT_EQ(s.change.find("logprob_chunk"), std::string::npos) << s.change;
  // With LoRA the score head trains whole beside the adapters (PEFT's modules_to_save).
  LoraConfig lora;
  lora.r = 8;
  lora.target_modules = PlanSettings{}.lora_targets;
  lora.modules_to_save = {"classifier", "score"};
  apply_lora(*model, lora);
  std::int64_t trainable = 0;
  for (const auto& p : model->parameters())
    if (p.requires_grad()) trainable += p.numel() * static_cast<std::int64_t>(p.element_size());
  PlanSettings st;
  st.lora = true;
  st.lora_r = 8;
  const auto with_lora = plan_memory(hf.loader->describe(kLlama), reward, st, memory_gib_budget(0));
  EXPECT_EQ(find(with_lora, "gradients")->bytes, trainable);
  EXPECT_EQ(find(with_lora, "AdamW moments")->bytes, 2 * trainable);
  EXPECT_EQ(find(with_lora, "policy weights")->bytes, bytes);
  // A checkpoint that is a classifier already is trained as it is.
  const auto seqcls = testing::source_dir() / "tests/fixtures/oracle/llama_seqcls";
  std::int64_t seqcls_bytes = 0;
  for (const auto& p : hf.loader->load(seqcls, LoadOptions{})->parameters())
    seqcls_bytes += p.numel() * static_cast<std::int64_t>(p.element_size());
  const auto classifier = plan_memory(hf.loader->describe(seqcls), reward, PlanSettings{}, memory_gib_budget(0));
  EXPECT_EQ(find(classifier, "policy weights")->bytes, seqcls_bytes);
}

TEST(MemoryPlanner, RecipeThatCannotFitOnT4GetsSuggestionsOrderedBySavings) {
  PlanSettings st;  // full fine-tuning of a 7B model in pure bf16 with a copied reference
  st.precision = Precision::bf16;
  st.master_weights = false;
  st.micro_batch = 4;
  st.max_length = 1024;
  st.logprob_chunk = 0;
  const auto plan = plan_memory(llama7b(), dpo(), st, *gpu_budget("t4"));
  EXPECT_FALSE(plan.fits);
  ASSERT_GE(plan.suggestions.size(), 4u);
  for (std::size_t i = 1; i < plan.suggestions.size(); ++i)
    EXPECT_GE(plan.suggestions[i - 1].saves, plan.suggestions[i].saves);
  for (const auto& s : plan.suggestions) {
    EXPECT_EQ(s.total, plan.peak - s.saves);
    EXPECT_GT(s.saves, 0);
  }
  EXPECT_NE(plan.suggestions.front().change.find("gradient_checkpointing"), std::string::npos) << render_plan_table(plan);
  // With fp32 master weights (the default) the masters, their gradients and fp32 moments, 16
  // bytes per parameter, outweigh the activations: LoRA, which trains no base weight, saves most.
  st.master_weights = true;
  const auto mixed = plan_memory(llama7b(), dpo(), st, *gpu_budget("t4"));
  ASSERT_FALSE(mixed.suggestions.empty());
  EXPECT_NE(mixed.suggestions.front().change.find("[lora]"), std::string::npos) << render_plan_table(mixed);
  const auto table = render_plan_table(plan);
  EXPECT_NE(table.find("does not fit"), std::string::npos);
  const auto json = plan_to_json(plan);
  EXPECT_EQ(json["schema"], "alignkit.memory-plan/1");
  EXPECT_EQ(json["peak_bytes"].get<std::int64_t>(), plan.peak);
  EXPECT_FALSE(json["fits"].get<bool>());
  EXPECT_EQ(json["suggestions"].size(), plan.suggestions.size());
}

TEST(MemoryPlanner, QloraSevenBillionDpoFitsOnT4) {
  PlanSettings st;  // issue 7's recipes/examples/dpo-7b-qlora-t4.toml
  st.precision = Precision::fp16;
  st.micro_batch = 2;
  st.max_length = 1024;
  st.gradient_checkpointing = true;
  st.lora = true;
  st.lora_r = 16;
  st.lora_targets = {"q_proj", "k_proj", "v_proj", "o_proj"};
  st.quantization = BaseQuantization::nf4;
  st.reference = PlanReference::adapter_off;
  const auto plan = plan_memory(llama7b(), dpo(), st, *gpu_budget("t4"));
  EXPECT_TRUE(plan.fits) << render_plan_table(plan);
  EXPECT_TRUE(plan.suggestions.empty());
}

TEST(MemoryPlanner, SettingsFromRecipeReadTheKeys) {
  testing::RecipeFixture f(
      "[model]\nloader = \"hf\"\npath = \"m\"\nquantization = \"nf4-double-quant\"\nattention = \"eager\"\n"
      "[training]\nper_device_train_batch_size = 3\ngradient_accumulation_steps = 4\nmax_length = 640\n"
      "precision = \"bfloat16\"\ngradient_checkpointing = true\nlogprob_chunk = 0\n"
      "[lora]\nr = 32\ntarget_modules = [\"q_proj\", \"v_proj\"]\n"
      "[reference]\nstrategy = \"auto\"\nprecision = \"float16\"\nquantization = \"int8\"\n"
      "[reward_model]\npath = \"rm\"\nquantization = \"nf4\"\n[value_model]\nshare_base = true\n"
      "[run]\ndevice = \"cuda:1\"\n");
  const auto st = settings_from_recipe(f.recipe);
  EXPECT_EQ(st.micro_batch, 3);
  EXPECT_EQ(st.max_length, 640);
  EXPECT_EQ(st.precision, Precision::bf16);
  EXPECT_TRUE(st.gradient_checkpointing);
  EXPECT_EQ(st.logprob_chunk, 0);
  EXPECT_TRUE(st.lora);
  EXPECT_EQ(st.lora_r, 32);
  EXPECT_EQ(st.lora_targets, (std::vector<std::string>{"q_proj", "v_proj"}));
  EXPECT_EQ(st.quantization, BaseQuantization::nf4_double_quant);
  EXPECT_EQ(st.reference, PlanReference::adapter_off);  // auto with LoRA
  EXPECT_EQ(st.reference_precision, Precision::fp16);
  EXPECT_EQ(st.device, PlanDevice::cuda);
  EXPECT_TRUE(st.eager_attention);
  EXPECT_EQ(st.reference_quantization, BaseQuantization::int8);
  EXPECT_EQ(st.rollout_batch, 12);
  EXPECT_EQ(st.reward_model.quantization, BaseQuantization::nf4);
  EXPECT_FALSE(st.reward_model.share_base);
  EXPECT_TRUE(st.value_model.share_base);

  testing::RecipeFixture defaults("[model]\nloader = \"hf\"\npath = \"m\"\n");
  const auto d = settings_from_recipe(defaults.recipe);
  EXPECT_EQ(d.micro_batch, 8);
  EXPECT_EQ(d.max_length, 1024);
  EXPECT_EQ(d.precision, Precision::fp32);
  EXPECT_FALSE(d.lora);
  EXPECT_EQ(d.reference, PlanReference::copy);  // auto without LoRA
  EXPECT_EQ(d.logprob_chunk, 256);
  EXPECT_EQ(d.device, PlanDevice::cpu);
  EXPECT_FALSE(d.eager_attention);
  EXPECT_EQ(d.reference_quantization, BaseQuantization::none);
}

}  // namespace
}  // namespace alignkit

namespace alignkit {
namespace {

// Rows of token ids long enough that every prompt + completion is truncated to exactly
// max_length, the planner's worst case (ids 3-258 are the init-model tokenizer's byte tokens).
// Rows are prompt (max_length / 4) + completion (max_length, cut by truncation); `whole` gives
// rows of exactly max_length instead, for reward modelling, which drops longer rows.
std::string calibration_data(std::int64_t max_length, bool unpaired, bool whole = false) {
  std::string out;
  std::uint64_t state = 1;
  auto ids = [&](std::int64_t n) {
    std::string list;
    for (std::int64_t i = 0; i < n; ++i) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      list += (i ? "," : "") + std::to_string(3 + (state >> 33) % 256);
    }
    return "[" + list + "]";
  };
  for (int i = 0; i < 8; ++i) {
    const auto completion_length = whole ? max_length - max_length / 4 : max_length;
    const auto prompt = ids(max_length / 4), completion = ids(completion_length);
    out += unpaired ? fmt::format("{{\"prompt_ids\": {}, \"completion_ids\": {}, \"label\": {}}}\n", prompt, completion,
                                  i % 2 == 0 ? "true" : "false")
                    : fmt::format("{{\"prompt_ids\": {}, \"chosen_ids\": {}, \"rejected_ids\": {}}}\n", prompt,
                                  completion, ids(completion_length));
  }
  return out;
}

// What a CPU training run measured of itself (memory.json): the planned and measured peaks as
// increases over the resident memory when it planned, before loading anything.
struct MemoryCheck {
  std::int64_t planned = 0, measured = 0;
  std::int64_t planned_margin = 0;  // the plan's allocator margin, part of `planned`
};

// Runs `alignkit train` on `recipe_body` (the recipe less [run]) in its own process, output in
// DIR/NAME, and reads the memory check it wrote.
MemoryCheck train_and_measure(const testing::TempDir& dir, const std::string& name, const std::string& recipe_body,
                              const std::vector<std::string>& env = {}) {
  const auto recipe = dir.write(name + ".toml", fmt::format("[run]\ndevice = \"cpu\"\noutput_dir = \"{}\"\n{}",
                                                            (dir.path() / name).string(), recipe_body));
  const auto r = testing::run_alignkit({"train", recipe.string()}, env);
  EXPECT_EQ(r.exit_code, 0) << name << "\n" << r.output;
  std::ifstream in(dir.path() / name / "memory.json");
  EXPECT_TRUE(in) << name << ": no memory.json\n" << r.output;
  if (!in) return {};
  const auto check = nlohmann::json::parse(in);
  const auto before = check["resident_before_bytes"].get<std::int64_t>();
  return {check["planned_peak_bytes"].get<std::int64_t>() - before, check["measured_peak_bytes"].get<std::int64_t>() - before,
          check["planned_allocator_margin_bytes"].get<std::int64_t>()};
}

struct CalibrationRun {
  const char* method;
  bool lora, checkpointing;
  std::int64_t max_length, batch;
};

// issue 7: on CPU the planner's peak is within 15% of the peak resident memory the training
// process gains. Each configuration runs `alignkit train` for real in its own process, which
// measures itself (memory.json: VmHWM at the end, VmRSS when it planned, before loading
// anything); the comparison is of the increase over that resident start, which the plan takes
// as measured rather than predicts.
// The runs use the binary's allocator as users get it: jemalloc keeping freed pages for the next
// step, which the plan does not model (measured 0-14% over the exact peaks here; the fixed cost of
// a training process is a planned component). About 10 s on a quiet 2-core machine.
TEST(MemoryPlanner, CpuPeakIsWithinFifteenPercentOfTheMeasuredIncrease) {
  constexpr double kTolerance = 0.15;  // issue 7's bound for the CPU plan
  testing::TempDir dir;
  // A Llama shape whose activations, not the process's libraries, dominate the peak, and that
  // trains a step in about a second on two cores: GQA (4 heads, 2 KV heads) and a 4096 vocabulary.
  const auto model = dir.path() / "model";
  const auto init = testing::run_alignkit({"init-model", "--preset", "tiny", "--out", model.string(), "--shape",
                                           "vocab_size=4096", "--shape", "hidden_size=256", "--shape",
                                           "intermediate_size=704", "--shape", "num_hidden_layers=4"});
  ASSERT_EQ(init.exit_code, 0) << init.output;
  const CalibrationRun runs[] = {
      {"dpo", false, false, 256, 1}, {"dpo", false, true, 256, 1}, {"dpo", true, false, 128, 2},
      {"dpo", true, true, 256, 1},   {"kto", true, false, 256, 2}, {"orpo", false, false, 128, 2},
      {"reward", false, false, 256, 2},
  };
  std::string table;
  for (const auto& run : runs) {
    const bool unpaired = std::string(run.method) == "kto";
    const auto name = fmt::format("{}-{}-{}-T{}-b{}", run.method, run.lora ? "lora" : "full",
                                  run.checkpointing ? "ckpt" : "nockpt", run.max_length, run.batch);
    const auto data = dir.write(name + ".jsonl", calibration_data(run.max_length, unpaired, std::string(run.method) == "reward"));
    const auto [planned, measured, margin] = train_and_measure(
        dir, name,
        fmt::format("[method]\nname = \"{}\"\n[model]\npath = \"{}\"\n"
                    "[data]\nformat = \"jsonl\"\nkind = \"{}\"\npath = \"{}\"\n[training]\nmax_steps = 2\n"
                    "per_device_train_batch_size = {}\nmax_length = {}\nmax_prompt_length = {}\n"
                    "gradient_checkpointing = {}\n{}",
                    run.method, model.string(), unpaired ? "unpaired" : "paired", data.string(), run.batch,
                    run.max_length, run.max_length / 4, run.checkpointing, run.lora ? "[lora]\nr = 8\n" : ""));
    ASSERT_GT(measured, 0) << name;
    const double error = static_cast<double>(planned - measured) / static_cast<double>(measured);
    table += fmt::format("{:<28} planned {:7.1f} MiB  measured {:7.1f} MiB  {:+.1f}%\n", name, planned / 1048576.0,
                         measured / 1048576.0, 100 * error);
    EXPECT_LE(std::abs(error), kTolerance) << name;
  }
  std::cerr << table;
}

// issue 8: token-chunked log-probs lower the measured peak by the amount the planner says. A
// model whose logits dwarf everything else (vocabulary 32000, hidden 64) trains the same DPO
// batch twice, log-probs unchunked ([training] logprob_chunk = 0: every scored position's fp32
// logits and softmax at once) and 64 positions at a time; each process measures its own peak
// (VmHWM) and plans its own. The measured saving must equal the planned one within 15%, the
// planner's CPU bound (issue 7). jemalloc runs here with freed pages returned at once
// (MALLOC_CONF decay 0), so the peaks are of the tensors the two paths allocate: by default it
// keeps freed pages for the next step, and how much of that the unchunked path's 60 MiB logits
// leave unused is allocator fragmentation, not log-prob memory (docs/memory-planner.md). The
// planned saving is therefore that of the tensors, the plans' allocator margins left out.
TEST(MemoryPlanner, ChunkedLogProbsLowerTheMeasuredPeakByThePlannedAmount) {
  constexpr double kTolerance = 0.15;
  testing::TempDir dir;
  const auto model = dir.path() / "model";
  const auto init = testing::run_alignkit({"init-model", "--preset", "tiny", "--out", model.string(), "--shape",
                                           "vocab_size=32000"});
  ASSERT_EQ(init.exit_code, 0) << init.output;
  const auto data = dir.write("pairs.jsonl", calibration_data(256, false));
  auto run = [&](int chunk) {
    return train_and_measure(
        dir, fmt::format("chunk-{}", chunk),
        fmt::format("[method]\nname = \"dpo\"\n[model]\npath = \"{}\"\n[data]\nformat = \"jsonl\"\n"
                    "kind = \"paired\"\npath = \"{}\"\n[training]\nmax_steps = 2\nper_device_train_batch_size = 2\n"
                    "max_length = 256\nmax_prompt_length = 64\nlogprob_chunk = {}\n",
                    model.string(), data.string(), chunk),
        {"MALLOC_CONF=dirty_decay_ms:0,muzzy_decay_ms:0"});
  };
  const auto unchunked = run(0), chunked = run(64);
  const auto planned_saving =
      (unchunked.planned - unchunked.planned_margin) - (chunked.planned - chunked.planned_margin);
  const auto measured_saving = unchunked.measured - chunked.measured;
  std::cerr << fmt::format("unchunked: planned {:.1f} MiB, measured {:.1f} MiB; chunked (64): planned {:.1f} MiB, "
                           "measured {:.1f} MiB; saving planned {:.1f} MiB, measured {:.1f} MiB\n",
                           unchunked.planned / 1048576.0, unchunked.measured / 1048576.0, chunked.planned / 1048576.0,
                           chunked.measured / 1048576.0, planned_saving / 1048576.0, measured_saving / 1048576.0);
  // The saving is most of the unchunked peak here, so a chunked path that kept its logits fails.
  ASSERT_GT(planned_saving, unchunked.planned / 2);
  EXPECT_NEAR(static_cast<double>(measured_saving), static_cast<double>(planned_saving),
              kTolerance * static_cast<double>(planned_saving));
}

}  // namespace
}  // namespace alignkit
