#include "memory_planner.hpp"

#include "recipe_settings.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include <alignkit/attention.hpp>
#include <alignkit/dtype_names.hpp>
#include <alignkit/lora.hpp>
#include <alignkit/quantization.hpp>

#include "recipe_validator.hpp"

namespace alignkit {

namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::int64_t dtype_bytes(Precision p) { return p == Precision::fp32 ? 4 : 2; }
const char* precision_name(Precision p) { return p == Precision::fp32 ? "fp32" : p == Precision::bf16 ? "bf16" : "fp16"; }
// Bytes of an fp32 upcast of a tensor in dtype b: none when it already is fp32 (.to() is a no-op).
std::int64_t upcast(std::int64_t b) { return b == 4 ? 0 : 4; }

std::string gib(std::int64_t bytes) { return fmt::format("{:.2f}", static_cast<double>(bytes) / kGiB); }

// The shapes every formula uses, named as in the docs: V, H, I, L, heads, kv_heads, head_dim.
struct Shape {
  std::int64_t V, H, I, L, nh, nkv, d, q, kv;
  explicit Shape(const ModelDescription& m)
      : V(m.vocab_size), H(m.hidden_size), I(m.intermediate_size), L(m.num_layers), nh(m.num_attention_heads),
        nkv(m.num_key_value_heads > 0 ? m.num_key_value_heads : m.num_attention_heads),
        d(m.head_dim > 0 ? m.head_dim : m.hidden_size / std::max<std::int64_t>(m.num_attention_heads, 1)),
        q(nh * d), kv(nkv * d) {}
};

// The decoder's seven projections per layer, as [out, in] matrices with their module names
// (plugins/models/hf/decoder.cpp registers them under these names).
struct Projection {
  const char* name;  // "self_attn.q_proj"
  std::int64_t out, in;
};
std::vector<Projection> projections(const Shape& s) {
  return {{"self_attn.q_proj", s.q, s.H},    {"self_attn.k_proj", s.kv, s.H},  {"self_attn.v_proj", s.kv, s.H},
          {"self_attn.o_proj", s.H, s.q},    {"mlp.gate_proj", s.I, s.H},      {"mlp.up_proj", s.I, s.H},
          {"mlp.down_proj", s.H, s.I}};
}

// A method's needs as the formulas below read them, whichever kind of method it is.
struct Needs {
  explicit Needs(const MethodNeeds& m)
      : examples(m.online ? ExampleLayout::prompt_only : m.loss.examples),
        reference_model(m.reference_model()),
        sequence_scores(!m.online && m.loss.scoring == CompletionScoring::sequence_score),
        mismatched_completions(!m.online && m.loss.mismatched_completions),
        generation(m.online.has_value()),
        generation_tokens(m.online ? m.online->max_completion_tokens : 0),
        reward_model(m.online && m.online->reward_model),
        value_model(m.online && m.online->value_model),
        completions_per_prompt(m.online ? m.online->completions_per_prompt : 1) {}
  ExampleLayout examples;
  bool reference_model, sequence_scores, mismatched_completions, generation;
  std::int64_t generation_tokens;
  bool reward_model, value_model;
  std::int64_t completions_per_prompt;
};

// Rows of one training forward: paired methods run chosen and rejected in one batch (TRL's
// concatenated_forward; offline batch scoring's score_pairs), the other layouts one row per example.
std::int64_t rows_per_forward(const Needs& r, std::int64_t micro_batch) {
  return micro_batch * (r.examples == ExampleLayout::paired ? 2 : 1);
}

// ---- Weights ---------------------------------------------------------------------------------

// Parameters outside the seven projections: embeddings, lm_head (untied), norms and biases.
// Derived as the description's total minus the projections, so biases and q/k norms of any
// architecture are counted without the planner knowing the flags.
std::int64_t unquantized_parameters(const ModelDescription& m, const Shape& s) {
  std::int64_t projection = 0;
  for (const auto& p : projections(s)) projection += p.out * p.in;
  return m.parameters - s.L * projection;
}

// weights = (P - L * proj) * b + L * sum over projections of quantized_matrix_bytes: the loader
// quantizes only the decoder's AdaptableLinear projections; embeddings, lm_head and norms stay in
// the compute dtype (QLoRA keeps them unquantized too).
std::int64_t model_weight_bytes(const ModelDescription& m, BaseQuantization q, std::int64_t b) {
  const Shape s(m);
  if (q == BaseQuantization::none) return m.parameters * b;
  std::int64_t per_layer = 0;
  for (const auto& p : projections(s)) per_layer += quantized_matrix_bytes(p.out, p.in, q, b);
  return unquantized_parameters(m, s) * b + s.L * per_layer;
}

// ---- Activations (plugins/models/hf/decoder.cpp) ---------------------------------------------
//
// What autograd keeps of one decoder layer until backward, tensor by tensor (docs/memory-planner.md
// derives each from the op that saves it). N = rows*T tokens, b = compute dtype bytes, S =
// rows*heads*T^2 attention scores, b' = b when b != 4, else 0.

// Whether the decoder's attention is the fused kernel (sdk/attention.cpp) for a forward in
// `precision` on the plan's device, by the same rule the decoder applies; else eager.
bool attention_is_fused(const PlanSettings& st, const Shape& s, Precision precision) {
  const auto dtype = precision == Precision::fp32 ? torch::kFloat32 : precision == Precision::bf16 ? torch::kBFloat16 : torch::kHalf;
  return !st.eager_attention && st.device == PlanDevice::cpu && fused_attention_supports(dtype, torch::kCPU, s.d);
}

// The fused kernel's transposed key block per key/value head: [head_dim, Sp] fp32, Sp = T rounded
// up to 16 plus 64 (attention.cpp shape_of); one for the keys in forward, keys and values per
// working thread in backward.
std::int64_t fused_key_block_bytes(const Shape& s, std::int64_t T) { return s.d * ((T + 15) / 16 * 16 + 64) * 4; }

// Whether a projection of the layer (by module name) gets a gradient path through its input:
// trained in place (full fine-tuning) or adapted (LoRA).
bool projection_trains(const PlanSettings& st, const char* name) {
  return !st.lora || is_lora_target(std::string("model.layers.0.") + name, st.lora_targets);
}

// An adapter reads its input through a new fp32 tensor (the dropout output, or the fp32 copy of a
// b-byte input) instead of a view of it (lora.cpp AdaptableLinearImpl::forward).
bool adapter_copies_input(const PlanSettings& st) { return dtype_bytes(st.precision) != 4 || st.lora_dropout > 0; }

std::int64_t layer_activation_bytes(const Shape& s, const PlanSettings& st, std::int64_t rows) {
  const std::int64_t b = dtype_bytes(st.precision), T = st.max_length, N = rows * T, S = rows * s.nh * T * T;
  // Each RMSNorm's fp32 input (x.to(float32), saved by pow and mul; in fp32 it is x itself), and
  // under full fine-tuning the normalised value, saved by the product with the trained weight.
  std::int64_t bytes = 2 * N * s.H * 4 + (st.lora ? 0 : 2 * N * s.H * b);
  if (attention_is_fused(st, s, st.precision)) {
    // The fused kernel saves q and k after rope, v, and each query row's fp32 log-sum-exp.
    bytes += N * (s.q + 2 * s.kv) * b + rows * s.nh * T * 4;
  } else {
    // q and k after rope and v repeated to every head, as the two bmm calls save them (a
    // contiguous copy of each non-contiguous operand, N*q elements whatever kv_heads is).
    bytes += 3 * N * s.q * b;
    // softmax's fp32 output (saved by its backward) and its cast to b (saved by probs @ v).
    bytes += S * (4 + upcast(b));
  }
  // SwiGLU: gate (silu's input), silu(gate) and up (the product's operands).
  bytes += 3 * N * s.I * b;
  // A projection's input is kept by the projection's own backward (full fine-tuning), or by an
  // adapter that reads it as a view; an adapter that copies keeps its own fp32 copy instead.
  struct Input {
    std::int64_t width;
    std::vector<const char*> readers;
  };
  const Input inputs[] = {{s.H, {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}},
                          {s.q, {"self_attn.o_proj"}},  // the attention output's reshape copy
                          {s.H, {"mlp.gate_proj", "mlp.up_proj"}},
                          {s.I, {"mlp.down_proj"}}};    // silu(gate) * up
  for (const auto& input : inputs) {
    bool kept = false;
    for (const char* reader : input.readers) {
      if (!projection_trains(st, reader)) continue;
      if (!st.lora || !adapter_copies_input(st)) kept = true;
      if (!st.lora) continue;
      // LoRA: A's output (fp32, saved by B's product), the fp32 copy of the input, and the
      // dropout mask (in b, saved by the multiplication that applies it).
      bytes += N * st.lora_r * 4;
      if (adapter_copies_input(st)) bytes += N * input.width * 4;
      if (st.lora_dropout > 0) bytes += N * input.width * b;
    }
    if (kept) bytes += N * input.width * b;
  }
  return bytes;
}

// Transient of the attention statement beyond what it keeps. Eager: matmul, scaled and masked
// scores alive together (3b), or at the softmax the masked scores plus their fp32 upcast (b + 4).
// Fused: the transposed key blocks of every key/value head.
std::int64_t attention_transient_bytes(const Shape& s, const PlanSettings& st, std::int64_t rows) {
  const std::int64_t b = dtype_bytes(st.precision), T = st.max_length;
  if (attention_is_fused(st, s, st.precision)) return rows * s.nkv * fused_key_block_bytes(s, T);
  return rows * s.nh * T * T * std::max(3 * b, b + upcast(b));
}

// One layer's backward working set: at the softmax's backward, the fp32 gradient of the
// probabilities and the softmax backward's fp32 output (8 bytes per score; the b-byte casts on
// either side die before the next one is made), or the MLP's three [N, I] input gradients,
// next to the layer's in/out gradients (2*N*H*b).
// Fused attention's backward instead holds dq, dk and dv (fp32, as the inputs) and its two
// key blocks per thread, which the planner takes as two per key/value head (rows*kv_heads).
std::int64_t layer_backward_bytes(const Shape& s, const PlanSettings& st, std::int64_t rows) {
  const std::int64_t b = dtype_bytes(st.precision), T = st.max_length, tokens = rows * T;
  const std::int64_t attention = attention_is_fused(st, s, st.precision)
                                     ? tokens * (s.q + 2 * s.kv) * b + 2 * rows * s.nkv * fused_key_block_bytes(s, T)
                                     : rows * s.nh * T * T * 8;
  return std::max(attention, 3 * tokens * s.I * b) + 2 * tokens * s.H * b;
}

// A forward without gradients (a reference model, KTO's KL completions): nothing is kept, the
// peak is one layer's statement temporaries: x, residual and output (3 * tokens*H*b) plus the
// larger of the attention scores (3 tensors) and the MLP's four [tokens, I] temporaries.
// With fused attention, its key blocks and its output replace the scores.
std::int64_t no_grad_forward_bytes(const Shape& s, const PlanSettings& st, std::int64_t rows, std::int64_t b) {
  const std::int64_t T = st.max_length, tokens = rows * T;
  // b may be a reference's dtype, not the policy's: only fp32 runs fused.
  const std::int64_t scores = attention_is_fused(st, s, b == 4 ? Precision::fp32 : Precision::bf16)
                                  ? rows * s.nkv * fused_key_block_bytes(s, T) + tokens * s.q * b
                                  : rows * s.nh * T * T * std::max(3 * b, b + upcast(b) + 4);
  const std::int64_t qkv = tokens * (s.q + 2 * s.kv) * b * 2;
  return 3 * tokens * s.H * b + std::max(scores + qkv, 4 * tokens * s.I * b);
}

// ---- Logits (sdk/logprobs.cpp token_logprobs) --------------------------------------------------

std::int64_t chunk_positions(const PlanSettings& st, std::int64_t rows) {
  const std::int64_t m = rows * st.max_length;  // scored positions, at most every position
  return st.logprob_chunk > 0 ? std::min(st.logprob_chunk, m) : m;
}

// Forward, per chunk of C positions: the logits in b, their fp32 upcast, and logsumexp's fp32
// (x - max).exp_() temporary; at most 8 bytes per logit alive at once (4 + 4, the b-copy dies
// before logsumexp starts).
std::int64_t logits_forward_bytes(const Shape& s, std::int64_t chunk) { return chunk * s.V * 8; }

// Backward, per chunk: the recomputed fp32 logits, the softmax gradient (fp32, in place) and its
// cast to b when b != 4: C*V*(8 + b').
std::int64_t logits_backward_bytes(const Shape& s, std::int64_t chunk, std::int64_t b) {
  return chunk * s.V * (8 + (b == 4 ? 0 : b));
}

}  // namespace

std::int64_t quantized_matrix_bytes(std::int64_t rows, std::int64_t cols, BaseQuantization q, std::int64_t dtype_bytes) {
  const std::int64_t n = rows * cols;
  const std::int64_t blocks = (n + kNf4BlockSize - 1) / kNf4BlockSize;
  switch (q) {
    case BaseQuantization::none: return n * dtype_bytes;
    // int8 codes + an fp32 scale per output row (Int8Weight::storage_bytes).
    case BaseQuantization::int8: return n + rows * 4;
    // Two 4-bit codes per byte + an fp32 absmax per 64-block: 4.5 bits per parameter.
    case BaseQuantization::nf4: return (n + 1) / 2 + blocks * 4;
    // int8 absmax per block + an fp32 scale per 256 blocks + the fp32 mean: ~4.127 bits.
    case BaseQuantization::nf4_double_quant:
      return (n + 1) / 2 + blocks + ((blocks + kNf4AbsmaxBlockSize - 1) / kNf4AbsmaxBlockSize) * 4 + 4;
  }
  return n * dtype_bytes;
}

std::int64_t lora_trainable_parameters(const ModelDescription& model, std::int64_t r,
                                       const std::vector<std::string>& targets) {
  const Shape s(model);
  std::int64_t total = 0;
  for (std::int64_t layer = 0; layer < s.L; ++layer)
    for (const auto& p : projections(s))
      if (is_lora_target(fmt::format("model.layers.{}.{}", layer, p.name), targets)) total += r * (p.in + p.out);
  return total;
}

const char* phase_name(PlanPhase phase) {
  switch (phase) {
    case PlanPhase::weights: return "weights";
    case PlanPhase::optimizer: return "optimizer";
    case PlanPhase::forward: return "forward";
    case PlanPhase::backward: return "backward";
    case PlanPhase::step: return "step";
    case PlanPhase::generation: return "generation";
    case PlanPhase::runtime: return "runtime";
  }
  return "?";
}

// ---- Budgets ---------------------------------------------------------------------------------

const std::vector<GpuPreset>& gpu_presets() {
  // "total capacity" as PyTorch's out-of-memory message prints it (cudaMemGetInfo's total).
  static const std::vector<GpuPreset> presets = {
      {"t4", 14.75, "https://github.com/xinge008/Cylinder3D/issues/109 (14.76); newer drivers 14.56"},
      {"l4", 22.03, "https://github.com/ArcInstitute/evo2/issues/190"},
      {"a10g", 22.03, "estimate: 24 GB GDDR6 like the L4; no public report found"},
      {"rtx3090", 23.70, "https://github.com/xiaoxiangAQ/GAS-Net/issues/7"},
      {"rtx4090", 23.65, "https://github.com/MotrixLab/AiOS/issues/29"},
      {"a100-40", 39.50, "https://github.com/TianheWu/CoSeR/issues/10"},
      {"a100-80", 79.14, "https://github.com/lianqi1008/Control-GIC/issues/6"},
      {"h100-80", 79.11, "https://github.com/vllm-project/vllm/issues/27508"},
      {"h200", 139.70, "estimate: 141 GB HBM3e less the share H100 loses; no public report found"},
  };
  return presets;
}

std::optional<MemoryBudget> gpu_budget(const std::string& name) {
  for (const auto& p : gpu_presets())
    if (name == p.name)
      return MemoryBudget{p.name, static_cast<std::int64_t>(p.usable_gib * kGiB), PlanDevice::cuda, p.source};
  return std::nullopt;
}

namespace {

// A "Key:   N kB" line of a /proc file, in bytes; 0 where the file or the key is missing.
std::int64_t proc_kib_field(const char* file, const std::string& wanted) {
  std::ifstream in(file);
  std::string key;
  std::int64_t kib = 0;
  while (in >> key) {
    if (key == wanted) {
      in >> kib;
      break;
    }
    in.ignore(1 << 20, '\n');
  }
  return kib * 1024;
}

}  // namespace

std::int64_t resident_bytes() { return proc_kib_field("/proc/self/status", "VmRSS:"); }
std::int64_t peak_resident_bytes() { return proc_kib_field("/proc/self/status", "VmHWM:"); }

MemoryBudget memory_gib_budget(double gib, PlanDevice device) {
  return {fmt::format("{:.2f} GiB", gib), static_cast<std::int64_t>(gib * kGiB), device, "--memory-gib",
          device == PlanDevice::cpu ? resident_bytes() : 0};
}

MemoryBudget cpu_budget() {
  return {"cpu", proc_kib_field("/proc/meminfo", "MemTotal:"), PlanDevice::cpu, "/proc/meminfo MemTotal",
          resident_bytes()};
}

// ---- Settings from a recipe --------------------------------------------------------------------

namespace {

Precision precision_of(const std::string& name) {
  const auto dtype = dtype_from_name(name).value_or(torch::kFloat32);
  return dtype == torch::kBFloat16 ? Precision::bf16 : dtype == torch::kFloat16 ? Precision::fp16 : Precision::fp32;
}

}  // namespace

BaseQuantization quantization_of(const std::string& name) {
  return name == "int8"               ? BaseQuantization::int8
         : name == "nf4"              ? BaseQuantization::nf4
         : name == "nf4-double-quant" ? BaseQuantization::nf4_double_quant
                                      : BaseQuantization::none;
}

namespace {

// [reward_model] / [value_model]: share_base and quantization (the shapes come from the loader).
PlanOnlineModel online_model_of(const RecipeSection& section) {
  PlanOnlineModel m;
  m.share_base = section.get_bool("share_base");
  m.quantization = quantization_of(section.get_string("quantization"));
  return m;
}

}  // namespace

PlanSettings settings_from_recipe(const ValidatedRecipe& recipe) {
  PlanSettings st;
  // The loops' own reading of [run] and [training], so the plan prices the run that will happen.
  const auto training = training_settings(recipe);
  st.micro_batch = training.micro_batch;
  st.max_length = training.max_length;
  st.precision = precision_of(training.precision);
  st.master_weights = training.float32_master_weights;
  st.gradient_checkpointing = training.gradient_checkpointing;
  st.logprob_chunk = training.logprob_chunk;
  st.lora = recipe.has_section("lora") && recipe.section("lora").get_bool("enabled");
  if (st.lora) {
    const auto lora = recipe.section("lora");
    st.lora_r = lora.get_int("r");
    st.lora_dropout = lora.get_float("dropout");
    st.lora_targets = lora.get_string_list("target_modules");
  }
  st.quantization = quantization_of(recipe.section("model").get_string("quantization"));
  st.eager_attention = recipe.section("model").get_string("attention") == "eager";
  st.reference_precision = st.precision;
  if (recipe.has_section("reference")) {
    const auto reference = recipe.section("reference");
    const std::string strategy = reference.get_string("strategy");
    st.reference = strategy == "copy"          ? PlanReference::copy
                   : strategy == "adapter-off" ? PlanReference::adapter_off
                   : strategy == "precomputed" ? PlanReference::precomputed
                   : st.lora                   ? PlanReference::adapter_off
                                               : PlanReference::copy;
    if (reference.has("precision")) st.reference_precision = precision_of(reference.get_string("precision"));
    st.reference_quantization = quantization_of(reference.get_string("quantization"));
  } else {
    st.reference = st.lora ? PlanReference::adapter_off : PlanReference::copy;
  }
  st.device = training.device.rfind("cuda", 0) == 0 ? PlanDevice::cuda : PlanDevice::cpu;
  st.rollout_batch = st.micro_batch * training.accumulation;
  if (recipe.has_section("reward_model")) st.reward_model = online_model_of(recipe.section("reward_model"));
  // TRL's examples start the value model from the reward model's weights.
  st.value_model = recipe.has_section("value_model") ? online_model_of(recipe.section("value_model")) : st.reward_model;
  return st;
}

// ---- The plan ----------------------------------------------------------------------------------

namespace {

const std::vector<PlanPhase> kRunPhases = {PlanPhase::forward, PlanPhase::backward, PlanPhase::step};
const std::vector<PlanPhase> kAllPhases = {PlanPhase::weights, PlanPhase::forward, PlanPhase::backward,
                                           PlanPhase::step, PlanPhase::generation};

// The CPU process before any tensor: LibTorch, its OpenMP/BLAS runtimes, the plugins and the
// tokenizer, as peak RSS of an alignkit train run on the tiny model (docs/memory-planner.md).
constexpr std::int64_t kCpuProcessBaseline = 330ll * 1024 * 1024;
// What the first training step adds to a CPU process besides tensors: LibTorch's operator code
// paged in as each forward, backward and optimizer kernel first runs, and the BLAS and OpenMP
// threads' buffers. Measured as the peak-RSS increase of a 2-step DPO run on a model of ~12k
// parameters, less its planned tensors: 17.7-18.2 MiB with 1 and 2 threads (docs/memory-planner.md).
constexpr std::int64_t kCpuTrainingRuntime = 18ll * 1024 * 1024;
// The CUDA context, cuBLAS workspace and kernels: the upper end of the 0.3-0.45 GiB reported.
constexpr std::int64_t kCudaContext = 450ll * 1024 * 1024;
// Allocators hold more than is allocated: CUDA's caching allocator reserves, and on CPU jemalloc
// keeps freed pages for the next step (where a training step's speed comes from). Neither's
// fragmentation follows a formula; the plan adds this share of the tensors' peak.
constexpr double kAllocatorMargin = 0.10;

struct Builder {
  std::vector<PlanComponent> components;
  void add(std::string name, std::int64_t bytes, PlanPhase phase, std::string formula, std::vector<PlanPhase> live,
           bool transient = false) {
    if (bytes <= 0) return;
    components.push_back({std::move(name), bytes, phase, std::move(formula), std::move(live), transient});
  }
};

bool lives_in(const PlanComponent& c, PlanPhase phase) {
  return std::find(c.live.begin(), c.live.end(), phase) != c.live.end();
}

// A reward model in training is the checkpoint as a one-output sequence classifier: a causal
// LM's lm_head (when untied) gives way to a [1, H] score head (plugins/models/hf,
// LoadOptions::classification_labels); a classification checkpoint is priced as described.
ModelDescription as_reward_model(ModelDescription m) {
  if (m.architecture.find("ForCausalLM") == std::string::npos) return m;
  m.parameters += m.hidden_size - (m.tied_embeddings ? 0 : m.vocab_size * m.hidden_size);
  return m;
}

MemoryPlan plan_without_suggestions(const ModelDescription& described, const MethodNeeds& method,
                                    const PlanSettings& st, const MemoryBudget& budget) {
  const Needs req(method);
  const ModelDescription model = req.sequence_scores ? as_reward_model(described) : described;
  const Shape s(model);
  const std::int64_t b = dtype_bytes(st.precision);
  const std::int64_t rows = rows_per_forward(req, st.micro_batch);
  const std::int64_t T = st.max_length, tokens = rows * T;
  const std::int64_t chunk = chunk_positions(st, rows);
  const bool quantized = st.lora && st.quantization != BaseQuantization::none;
  const PlanReference reference = req.reference_model ? st.reference : PlanReference::none;
  Builder out;

  // Weights.
  const auto weights = model_weight_bytes(model, quantized ? st.quantization : BaseQuantization::none, b);
  out.add("policy weights", weights, PlanPhase::weights,
          quantized ? fmt::format("(P - L*proj)*{} + L*sum(quantized projections), P = {}", b, model.parameters)
                    : fmt::format("P*{} = {}*{} ({})", b, model.parameters, b, precision_name(st.precision)),
          kAllPhases);
  if (quantized) {
    std::int64_t largest = 0;
    for (const auto& p : projections(s)) largest = std::max(largest, p.out * p.in);
    out.add("quantization at load (transient)", largest * (b + 24), PlanPhase::weights,
            fmt::format("largest projection {} * (b + 24): its {} copy, fp32 blocks, |x|, normalised, int64 codes",
                        largest, precision_name(st.precision)),
            {PlanPhase::weights}, true);
  }
  if (reference == PlanReference::copy) {
    const auto rb = dtype_bytes(st.reference_precision);
    if (st.reference_quantization == BaseQuantization::none)
      out.add("reference weights (copy)", model.parameters * rb, PlanPhase::weights,
              fmt::format("P*{} ({})", rb, precision_name(st.reference_precision)), kAllPhases);
    else
      out.add("reference weights (copy)", model_weight_bytes(model, st.reference_quantization, rb), PlanPhase::weights,
              fmt::format("(P - L*proj)*{} + L*sum(quantized projections) ([reference] quantization)", rb), kAllPhases);
  }
  // Online methods' reward and value models: weights of their own, or an adapter and a head on the
  // policy's base (share_base). The value model trains with the policy (TRL's PolicyAndValueWrapper).
  // Adapters on the reward and value models take [lora]'s rank and targets (plan_recipe refuses
  // them without [lora]).
  const std::int64_t lora_r = st.lora_r;
  auto adapter_and_head = [&](const ModelDescription& m) {
    return lora_trainable_parameters(m, lora_r, st.lora_targets) + m.hidden_size;
  };
  if (req.reward_model) {
    const auto& rm = st.reward_model;
    if (rm.share_base)
      out.add("reward adapter and head", adapter_and_head(model) * 4, PlanPhase::weights,
              "(LoRA on the policy's base + H) * 4 ([reward_model] share_base)", kAllPhases);
    else
      out.add("reward model weights", model_weight_bytes(rm.model, rm.quantization, b), PlanPhase::weights,
              fmt::format("P_rm*{} (quantized projections when [reward_model] quantization), P_rm = {}", b, rm.model.parameters),
              kAllPhases);
  }
  std::int64_t value_trainable = 0, value_tb = 4;
  bool value_adapter = false;
  if (req.value_model) {
    const auto& vm = st.value_model;
    const ModelDescription& shape = vm.share_base ? model : vm.model;
    if (!vm.share_base)
      out.add("value model weights", model_weight_bytes(vm.model, vm.quantization, b), PlanPhase::weights,
              fmt::format("P_v*{} (quantized projections when [value_model] quantization), P_v = {}", b, vm.model.parameters),
              kAllPhases);
    if (vm.share_base || st.lora || vm.quantization != BaseQuantization::none) {
      value_trainable = adapter_and_head(shape);
      value_adapter = true;
      out.add("value adapter and head", value_trainable * 4, PlanPhase::weights,
              fmt::format("(LoRA r{} + H) * 4 = {}*4", lora_r, value_trainable), kAllPhases);
    } else {
      value_trainable = vm.model.parameters, value_tb = b;  // full fine-tuning trains its weights in place
    }
  }

  // Trainable parameters, their gradients and AdamW's moments.
  // A LoRA reward model also trains its [1, H] score head whole (PEFT's modules_to_save), priced
  // with the adapters in fp32 (a bf16 head's own gradient and master differ by 6*H bytes).
  const std::int64_t adapter_parameters = st.lora ? lora_trainable_parameters(model, st.lora_r, st.lora_targets) : 0;
  const std::int64_t trainable = st.lora ? adapter_parameters + (req.sequence_scores ? s.H : 0) : model.parameters;
  // Adapters are fp32; full fine-tuning trains in place, or fp32 masters under mixed precision.
  const bool masters = !st.lora && st.master_weights && b != 4;
  const std::int64_t tb = st.lora || masters ? 4 : b;
  if (st.lora)
    out.add("LoRA adapters", adapter_parameters * 4, PlanPhase::weights,
            fmt::format("sum over adapted [out,in] of r*(in+out)*4 = {}*4", adapter_parameters), kAllPhases);
  if (masters) {
    // The compute-dtype gradients are added into the masters' fp32 ones after each micro-batch's
    // backward and freed (trainer.cpp, move_gradients_to_masters).
    out.add("fp32 master weights", trainable * 4, PlanPhase::optimizer, fmt::format("trainable*4 = {}*4", trainable),
            kRunPhases);
    out.add("gradients", trainable * b, PlanPhase::backward, fmt::format("trainable*{} = {}*{}", b, trainable, b),
            {PlanPhase::backward});
    out.add("fp32 master gradients", trainable * 4, PlanPhase::backward, fmt::format("trainable*4 = {}*4", trainable),
            kRunPhases);
  } else {
    out.add("gradients", trainable * tb, PlanPhase::backward, fmt::format("trainable*{} = {}*{}", tb, trainable, tb),
            kRunPhases);
  }
  if (value_trainable > 0) {
    out.add("value gradients", value_trainable * value_tb, PlanPhase::backward,
            fmt::format("value trainable*{} = {}*{}", value_tb, value_trainable, value_tb), kRunPhases);
    out.add("value AdamW moments", 2 * value_trainable * value_tb, PlanPhase::optimizer,
            fmt::format("2*value trainable*{}", value_tb), kRunPhases);
  }
  out.add("AdamW moments", 2 * trainable * tb, PlanPhase::optimizer,
          fmt::format("2*trainable*{} (exp_avg, exp_avg_sq, zeros_like the {})", tb, masters ? "master" : "parameter"),
          kRunPhases);
  std::int64_t largest_trainable = 0;
  if (st.lora) {
    for (const auto& p : projections(s)) largest_trainable = std::max(largest_trainable, st.lora_r * std::max(p.in, p.out));
  } else {
    largest_trainable = std::max({s.V * s.H, s.I * s.H, s.q * s.H});
  }
  out.add("AdamW step temporaries", 2 * largest_trainable * tb, PlanPhase::step,
          fmt::format("2*largest trainable tensor*{} (sqrt and division of exp_avg_sq)", tb), {PlanPhase::step}, true);

  // Activations kept for backward.
  const std::int64_t per_layer = layer_activation_bytes(s, st, rows);
  // Outside the layers: eager attention's additive mask [rows, 1, T, T] (the fused kernel reads
  // the 0/1 mask itself) and the rope tables (cos, sin), the final norm (its fp32 input, the
  // normalised value when its weight trains, the hidden states that masked_select keeps) and the
  // scored states token_logprobs saves.
  const bool fused = attention_is_fused(st, s, st.precision);
  // A reward model keeps only the pooled rows for its score head, not every position's states.
  const std::int64_t scored_states = req.sequence_scores ? rows * s.H * b : 2 * tokens * s.H * b;
  const std::int64_t shared = (fused ? 0 : rows * T * T * b) + 2 * tokens * s.d * b + tokens * s.H * 4 +
                              (st.lora ? 0 : tokens * s.H * b) + scored_states;
  if (st.gradient_checkpointing) {
    out.add("activations (checkpointed layer inputs)", s.L * tokens * s.H * b, PlanPhase::forward,
            fmt::format("L*rows*T*H*b = {}*{}*{}*{}*{}", s.L, rows, T, s.H, b), {PlanPhase::forward, PlanPhase::backward});
  } else {
    out.add("activations (all layers)", s.L * per_layer, PlanPhase::forward,
            fmt::format("L * per-layer({} rows x {} tokens) = {} * {}", rows, T, s.L, per_layer),
            {PlanPhase::forward, PlanPhase::backward});
  }
  if (value_trainable > 0) {
    // The value model's forward on the same rows, kept for the joint backward; its head is
    // [H, 1], so no logits. Adapter-trained unless it is fully fine-tuned.
    const ModelDescription& vshape = st.value_model.share_base ? model : st.value_model.model;
    const Shape vs(vshape);
    PlanSettings vst = st;
    vst.lora = value_adapter;
    vst.lora_r = lora_r;
    const std::int64_t value_bytes = st.gradient_checkpointing ? vs.L * tokens * vs.H * b
                                                               : vs.L * layer_activation_bytes(vs, vst, rows) + tokens * vs.H * 4;
    out.add("value model activations", value_bytes, PlanPhase::forward,
            st.gradient_checkpointing ? "L_v*rows*T*H_v*b (checkpointed layer inputs)"
                                      : "L_v * per-layer + rows*T*H_v*4 (final norm input)",
            {PlanPhase::forward, PlanPhase::backward});
  }
  out.add(fused ? "rope, embeddings, final norm, scored states" : "mask, rope, embeddings, final norm, scored states",
          shared, PlanPhase::forward,
          fmt::format("rows*T*({}2*d*b + H*4 + {}*H*b)", fused ? "" : "T*b + ", st.lora ? 2 : 3),
          {PlanPhase::forward, PlanPhase::backward});
  // One chunk holding every scored position keeps its fp32 softmax until backward (logprobs.cpp).
  if (chunk >= tokens && !req.sequence_scores)
    out.add("log-prob softmax (single chunk)", chunk * s.V * 4, PlanPhase::forward,
            fmt::format("C*V*4, C = {} positions in one chunk", chunk), {PlanPhase::forward, PlanPhase::backward});
  if (fused)
    out.add("fused attention key blocks (transient)", attention_transient_bytes(s, st, rows), PlanPhase::forward,
            fmt::format("rows*kv_heads*head_dim*(T up to 16 + 64)*4 = {}*{}*{}*{}*4", rows, s.nkv, s.d, (T + 15) / 16 * 16 + 64),
            {PlanPhase::forward}, true);
  else
    out.add("attention scores (transient)", attention_transient_bytes(s, st, rows), PlanPhase::forward,
            fmt::format("rows*heads*T^2*max(3b, b+4') = {}*{}*{}^2*{}", rows, s.nh, T, std::max(3 * b, b + upcast(b))),
            {PlanPhase::forward}, true);

  if (req.sequence_scores) {
    // A reward model scores each row's last token with a [1, H] head: no logits. Backward
    // scatters the pooled rows' gradient into a zero [rows, T, H] tensor.
    out.add("score head backward (transient)", tokens * s.H * b, PlanPhase::backward,
            "rows*T*H*b (grad of the final states, pooled rows scattered)", {PlanPhase::backward}, true);
  } else {
    // Logits: the largest activation of a causal LM, credited for chunking.
    out.add("logits forward (transient)", logits_forward_bytes(s, chunk), PlanPhase::forward,
            fmt::format("C*V*8 (fp32 logits + logsumexp temp), C = {}{}", chunk,
                        st.logprob_chunk > 0 ? "" : " (unchunked: all positions)"),
            {PlanPhase::forward}, true);
    // A trained head's gradient: an fp32 accumulator, each chunk's g^T h in b and its fp32 upcast
    // (none in fp32); the final cast to b outlives only the accumulator.
    std::int64_t head_grad = 0;
    if (!st.lora) head_grad = s.V * s.H * (4 + b + upcast(b));
    out.add("logits backward (transient)", logits_backward_bytes(s, chunk, b) + tokens * s.H * b + head_grad,
            PlanPhase::backward,
            fmt::format("C*V*(8+b') + rows*T*H*b (grad of states){}", st.lora ? "" : " + V*H*(4+b+4') (fp32 head grad)"),
            {PlanPhase::backward}, true);
  }
  // Backward runs the logits' backward first, then one layer at a time; with checkpointing that
  // layer's activations are recomputed for its backward and freed after it, so they belong to
  // the layer's working set, not beside the logits' transient.
  out.add("layer backward working set (transient)",
          layer_backward_bytes(s, st, rows) + (st.gradient_checkpointing ? per_layer : 0), PlanPhase::backward,
          fmt::format("max({}, 3*rows*T*I*b) + 2*rows*T*H*b{}",
                      fused ? "rows*T*(q+2kv)*b + 2 key blocks per kv head" : "rows*heads*T^2*8",
                      st.gradient_checkpointing ? fmt::format(" + one recomputed layer ({} B)", per_layer) : ""),
          {PlanPhase::backward}, true);

  // Forwards without gradients while the policy's activations are held.
  if (reference == PlanReference::copy || reference == PlanReference::adapter_off) {
    const auto rb = reference == PlanReference::copy ? dtype_bytes(st.reference_precision) : b;
    out.add("reference forward (transient)",
            std::max(no_grad_forward_bytes(s, st, rows, rb), logits_forward_bytes(s, chunk) + 2 * tokens * s.H * rb),
            PlanPhase::forward, "one no-grad layer's temporaries, or C*V*8 logits", {PlanPhase::forward}, true);
  }
  if (req.mismatched_completions)
    out.add("KL completions forward (transient)",
            std::max(no_grad_forward_bytes(s, st, st.micro_batch, b),
                     logits_forward_bytes(s, chunk_positions(st, st.micro_batch)) + 2 * st.micro_batch * T * s.H * b),
            PlanPhase::forward, "the policy without gradients on mismatched pairs", {PlanPhase::forward}, true);

  // Online methods: the KV cache of generation.
  if (req.generation) {
    const std::int64_t new_tokens = st.max_new_tokens > 0 ? st.max_new_tokens : req.generation_tokens;
    const std::int64_t positions = new_tokens > 0 ? std::min(T, new_tokens + T / 2) : T;
    out.add("KV cache", 2 * s.L * st.micro_batch * s.kv * positions * b, PlanPhase::generation,
            fmt::format("2*L*batch*kv_heads*head_dim*positions*b, positions = {}", positions),
            {PlanPhase::generation});
    // The rollout: token ids of every prompt + response, and eight fp32 per-token tensors of the
    // responses (log-probs, reference log-probs, values, KL, non-score and total rewards,
    // advantages, returns), kept from generation through the PPO epochs.
    const std::int64_t completions = (st.rollout_batch > 0 ? st.rollout_batch : st.micro_batch) * req.completions_per_prompt;
    const std::int64_t response = new_tokens > 0 ? std::min(T, new_tokens) : T;
    out.add("rollout buffers", completions * (T * 8 + response * 8 * 4), PlanPhase::generation,
            fmt::format("rollout completions*(T*8 + response*8*4), {} completions ({} per prompt), {} response tokens",
                        completions, req.completions_per_prompt, response),
            {PlanPhase::generation, PlanPhase::forward, PlanPhase::backward, PlanPhase::step});
    // Scoring the rollout without gradients: the reward model (and the value model) one micro-batch
    // at a time, beside the KV cache's phase.
    if (req.reward_model) {
      const Shape rs(st.reward_model.share_base ? model : st.reward_model.model);
      out.add("reward model forward (transient)", no_grad_forward_bytes(rs, st, st.micro_batch, b), PlanPhase::generation,
              "one no-grad layer's temporaries of the reward model", {PlanPhase::generation}, true);
    }
  }

  // Sum per phase: residents plus the largest transient of the phase.
  MemoryPlan plan;
  plan.model = model;
  plan.method = method;
  plan.settings = st;
  plan.budget = budget;
  std::int64_t peak = -1;
  for (const auto phase : kAllPhases) {
    std::int64_t resident = 0, transient = 0;
    for (const auto& c : out.components) {
      if (!lives_in(c, phase)) continue;
      if (c.transient) transient = std::max(transient, c.bytes);
      else resident += c.bytes;
    }
    if (phase == PlanPhase::generation && !req.generation) continue;
    plan.phase_totals.emplace_back(phase, resident + transient);
    if (resident + transient > peak) peak = resident + transient, plan.peak_phase = phase;
  }

  // The runtime: a CPU process's baseline and training runtime, or a CUDA context; then the
  // allocator's margin on either.
  if (budget.device == PlanDevice::cpu) {
    if (budget.resident > 0)
      out.add("process before loading (LibTorch, plugins)", budget.resident, PlanPhase::runtime,
              "this process's resident memory when planning (VmRSS)", kAllPhases);
    else
      out.add("process before loading (LibTorch, plugins)", kCpuProcessBaseline, PlanPhase::runtime,
              "typical resident memory of alignkit with its plugins loaded", kAllPhases);
    out.add("training runtime (operator code, BLAS/OpenMP buffers)", kCpuTrainingRuntime, PlanPhase::runtime,
            "18 MiB, measured on a model of ~12k parameters", kAllPhases);
  } else {
    out.add("CUDA context", kCudaContext, PlanPhase::runtime, "0.45 GiB (reported 0.3-0.45 GiB per process)", kAllPhases);
  }
  out.add(std::string(kAllocatorMarginComponent), static_cast<std::int64_t>(static_cast<double>(peak) * kAllocatorMargin),
          PlanPhase::runtime,
          budget.device == PlanDevice::cpu ? "10% of the planned peak (jemalloc keeps freed pages: measured 5-21% more)"
                                           : "10% of the planned peak (reserved exceeds allocated by 0-50%)",
          kAllPhases);
  std::int64_t runtime = 0;
  for (const auto& c : out.components)
    if (c.phase == PlanPhase::runtime) runtime += c.bytes;
  for (auto& [phase, total] : plan.phase_totals) total += runtime;
  plan.peak = peak + runtime;
  plan.components = std::move(out.components);
  plan.fits = budget.bytes <= 0 || plan.peak <= budget.bytes;
  return plan;
}

}  // namespace

MemoryPlan plan_memory(const ModelDescription& model, const MethodNeeds& method,
                       const PlanSettings& settings, const MemoryBudget& budget) {
  const Needs requirements(method);
  auto plan = plan_without_suggestions(model, method, settings, budget);
  if (plan.fits) return plan;
  std::vector<std::pair<std::string, PlanSettings>> changes;
  auto change = [&](std::string what, auto&& edit) {
    PlanSettings s = settings;
    edit(s);
    changes.emplace_back(std::move(what), std::move(s));
  };
  if (!settings.gradient_checkpointing)
    change("[training] gradient_checkpointing = true", [](PlanSettings& s) { s.gradient_checkpointing = true; });
  if (settings.micro_batch > 1)
    change(fmt::format("[training] per_device_train_batch_size = {}, gradient_accumulation_steps x{}",
                       settings.micro_batch / 2, 2),
           [](PlanSettings& s) { s.micro_batch /= 2; });
  if (!settings.lora)
    change("[lora] enabled = true (r 16, all projections)", [](PlanSettings& s) {
      s.lora = true;
      s.lora_r = 16;
      s.reference = s.reference == PlanReference::copy ? PlanReference::adapter_off : s.reference;
    });
  if (settings.quantization != BaseQuantization::nf4 && settings.quantization != BaseQuantization::nf4_double_quant)
    change(settings.lora ? "[model] quantization = \"nf4\"" : "[lora] enabled = true and [model] quantization = \"nf4\"",
           [](PlanSettings& s) {
             if (!s.lora) s.lora = true, s.lora_r = 16;
             s.quantization = BaseQuantization::nf4;
             if (s.reference == PlanReference::copy) s.reference = PlanReference::adapter_off;
           });
  if (requirements.reference_model && settings.reference == PlanReference::copy && settings.lora)
    change("[reference] strategy = \"adapter-off\"", [](PlanSettings& s) { s.reference = PlanReference::adapter_off; });
  if (requirements.reward_model && !settings.reward_model.share_base && settings.lora)
    change("[reward_model] share_base = true", [](PlanSettings& s) { s.reward_model.share_base = true; });
  if (requirements.value_model && !settings.value_model.share_base && settings.lora)
    change("[value_model] share_base = true", [](PlanSettings& s) { s.value_model.share_base = true; });
  // Reference log-probs of generated completions cannot be computed before training.
  if (requirements.reference_model && !requirements.generation && settings.reference != PlanReference::precomputed)
    change("[reference] strategy = \"precomputed\"", [](PlanSettings& s) { s.reference = PlanReference::precomputed; });
  if ((settings.logprob_chunk == 0 || settings.logprob_chunk > 256) && !requirements.sequence_scores)
    change("[training] logprob_chunk = 256", [](PlanSettings& s) { s.logprob_chunk = 256; });
  if (settings.max_length > 256)
    change(fmt::format("[training] max_length = {}", settings.max_length / 2), [](PlanSettings& s) { s.max_length /= 2; });
  for (const auto& [what, s] : changes) {
    const auto alternative = plan_without_suggestions(model, method, s, plan.budget);
    if (alternative.peak >= plan.peak) continue;
    plan.suggestions.push_back({what, alternative.peak, plan.peak - alternative.peak, alternative.fits});
  }
  std::stable_sort(plan.suggestions.begin(), plan.suggestions.end(),
                   [](const PlanSuggestion& a, const PlanSuggestion& b) { return a.saves > b.saves; });
  return plan;
}

// ---- Renderings --------------------------------------------------------------------------------

std::string render_plan_table(const MemoryPlan& plan) {
  std::ostringstream out;
  out << fmt::format("{:<52} {:>10}  {:<10}\n", "component", "GiB", "phase");
  out << std::string(76, '-') << "\n";
  for (const auto& c : plan.components)
    out << fmt::format("{:<52} {:>10}  {:<10}\n", c.name, gib(c.bytes), phase_name(c.phase));
  out << std::string(76, '-') << "\n";
  for (const auto& [phase, total] : plan.phase_totals)
    out << fmt::format("{:<52} {:>10}\n", fmt::format("total at {}", phase_name(phase)), gib(total));
  out << fmt::format("{:<52} {:>10}  ({})\n", "peak", gib(plan.peak), phase_name(plan.peak_phase));
  if (plan.budget.bytes > 0) {
    out << fmt::format("{:<52} {:>10}\n", fmt::format("budget: {}", plan.budget.name), gib(plan.budget.bytes));
    out << (plan.fits ? "verdict: fits\n" : "verdict: does not fit\n");
  }
  if (!plan.suggestions.empty()) {
    out << "\nchanges, by what they save:\n";
    for (const auto& s : plan.suggestions)
      out << fmt::format("  {:<64} -> {:>8} GiB{}\n", s.change, gib(s.total), s.fits ? " (fits)" : "");
  }
  return out.str();
}

nlohmann::json plan_to_json(const MemoryPlan& plan) {
  nlohmann::json components = nlohmann::json::array();
  for (const auto& c : plan.components) {
    nlohmann::json live = nlohmann::json::array();
    for (auto p : c.live) live.push_back(phase_name(p));
    components.push_back({{"name", c.name}, {"bytes", c.bytes}, {"gib", static_cast<double>(c.bytes) / kGiB},
                          {"phase", phase_name(c.phase)}, {"live", live}, {"transient", c.transient},
                          {"formula", c.formula}});
  }
  nlohmann::json phases = nlohmann::json::object();
  for (const auto& [phase, total] : plan.phase_totals) phases[phase_name(phase)] = total;
  nlohmann::json suggestions = nlohmann::json::array();
  for (const auto& s : plan.suggestions)
    suggestions.push_back({{"change", s.change}, {"total_bytes", s.total}, {"saves_bytes", s.saves}, {"fits", s.fits}});
  const auto& st = plan.settings;
  return {{"schema", "alignkit.memory-plan/1"},
          {"model", {{"parameters", plan.model.parameters}, {"vocab_size", plan.model.vocab_size},
                     {"hidden_size", plan.model.hidden_size}, {"num_layers", plan.model.num_layers}}},
          {"settings", {{"micro_batch", st.micro_batch}, {"max_length", st.max_length},
                        {"precision", precision_name(st.precision)}, {"gradient_checkpointing", st.gradient_checkpointing},
                        {"logprob_chunk", st.logprob_chunk}, {"lora", st.lora}, {"lora_r", st.lora_r}}},
          {"components", components},
          {"phase_totals_bytes", phases},
          {"peak_bytes", plan.peak},
          {"peak_phase", phase_name(plan.peak_phase)},
          {"budget", {{"name", plan.budget.name}, {"bytes", plan.budget.bytes},
                      {"device", plan.budget.device == PlanDevice::cpu ? "cpu" : "cuda"}, {"source", plan.budget.source}}},
          {"fits", plan.fits},
          {"suggestions", suggestions}};
}

}  // namespace alignkit
