#include "hf_config.hpp"

#include <fstream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/diagnostic.hpp>
#include <alignkit/json_file.hpp>

namespace alignkit::hf {

namespace fs = std::filesystem;

namespace {

struct Reader {
  const nlohmann::json& json;
  std::string file;
  std::string prefix = {};  // "rope_scaling." for the keys of that object

  [[noreturn]] void fail(const std::string& key, std::string message, std::string help = {}) const {
    Diagnostic d;
    d.where = SourceLocation{file, 0, 0};
    d.message = fmt::format("config.json key '{}{}': {}", prefix, key, message);
    d.help = std::move(help);
    throw DiagnosticError(std::move(d));
  }
  bool has(const std::string& key) const { return json.contains(key) && !json.at(key).is_null(); }
  std::int64_t integer(const std::string& key) const {
    if (!has(key)) fail(key, "is missing", "a transformers config.json has it; was the file edited by hand?");
    const auto& v = json.at(key);
    if (!v.is_number_integer() || v.get<std::int64_t>() <= 0) fail(key, fmt::format("expected a positive integer, found {}", v.dump()));
    return v.get<std::int64_t>();
  }
  std::int64_t integer_or(const std::string& key, std::int64_t fallback) const {
    return has(key) ? integer(key) : fallback;
  }
  double number_or(const std::string& key, double fallback) const {
    if (!has(key)) return fallback;
    const auto& v = json.at(key);
    if (!v.is_number()) fail(key, fmt::format("expected a number, found {}", v.dump()));
    return v.get<double>();
  }
  bool boolean_or(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    const auto& v = json.at(key);
    if (!v.is_boolean()) fail(key, fmt::format("expected true or false, found {}", v.dump()));
    return v.get<bool>();
  }
  std::optional<std::int64_t> token_id(const std::string& key) const {
    if (!has(key)) return std::nullopt;
    const auto& v = json.at(key);
    // Some configs list several EOS ids (Llama 3); the first is the one generation stops on by default.
    if (v.is_array() && !v.empty() && v.front().is_number_integer()) return v.front().get<std::int64_t>();
    if (!v.is_number_integer()) fail(key, fmt::format("expected a token id, found {}", v.dump()));
    return v.get<std::int64_t>();
  }
};

// The parameters of config `c`, counted in T: std::int64_t for parameter_count(), long double
// first, to refuse sizes whose count would not fit.
template <typename T>
T count_parameters(const ModelConfig& c) {
  const T h = static_cast<T>(c.hidden_size), i = static_cast<T>(c.intermediate_size),
          q = static_cast<T>(c.num_attention_heads) * static_cast<T>(c.head_dim),
          kv = static_cast<T>(c.num_key_value_heads) * static_cast<T>(c.head_dim), vocab = static_cast<T>(c.vocab_size);
  T layer = h * q + 2 * h * kv + q * h + 3 * h * i + 2 * h;
  if (c.qkv_bias) layer += q + 2 * kv;
  if (c.o_bias) layer += h;
  if (c.mlp_bias) layer += 2 * i + h;
  if (c.qk_norm) layer += 2 * static_cast<T>(c.head_dim);
  T total = vocab * h + static_cast<T>(c.num_hidden_layers) * layer + h;
  if (c.head == Head::causal_lm && !c.tie_word_embeddings) total += vocab * h;
  if (c.head == Head::classification) total += static_cast<T>(c.num_labels) * h;
  return total;
}

// About 1.1e15: five hundred times the largest published model, and small enough that every
// byte count the planner and the loader derive from it fits in 64 bits.
constexpr std::int64_t kMaxParameters = std::int64_t{1} << 50;

// transformers' _validate_llama3_parameters (modeling_rope_utils.py), which raises for a missing
// key and warns for the rest; a value it warns about gives wrong or infinite frequencies here
// (factor 0 divides by zero), so each is refused.
void check_llama3_rope(const Reader& s, const ModelConfig& c) {
  for (const char* key : {"factor", "original_max_position_embeddings", "low_freq_factor", "high_freq_factor"})
    if (!s.has(key)) s.fail(key, "is missing", "rope_type llama3 needs factor, original_max_position_embeddings, "
                                               "low_freq_factor and high_freq_factor");
  const auto& r = c.rope_scaling;
  if (!(r.factor >= 1.0)) s.fail("factor", fmt::format("expected a number >= 1, found {}", s.json.at("factor").dump()));
  if (!(r.high_freq_factor > r.low_freq_factor))
    s.fail("high_freq_factor", fmt::format("must be greater than low_freq_factor, found {} and {}",
                                           s.json.at("high_freq_factor").dump(), s.json.at("low_freq_factor").dump()));
  if (!(r.low_freq_factor > 0.0))
    s.fail("low_freq_factor", fmt::format("expected a positive number, found {}", s.json.at("low_freq_factor").dump()));
  if (r.original_max_position_embeddings >= c.max_position_embeddings)
    s.fail("original_max_position_embeddings",
           fmt::format("must be less than max_position_embeddings, found {} and {}", r.original_max_position_embeddings,
                       c.max_position_embeddings));
}

const std::set<std::string> kSupported = {"LlamaForCausalLM",        "MistralForCausalLM",
                                          "Qwen2ForCausalLM",        "Qwen3ForCausalLM",
                                          "LlamaForSequenceClassification", "MistralForSequenceClassification",
                                          "Qwen2ForSequenceClassification", "Qwen3ForSequenceClassification"};

}  // namespace

ModelConfig read_config_fields(const fs::path& model_dir, const fs::path& path);

ModelConfig read_config(const fs::path& model_dir) {
  const fs::path path = model_dir / "config.json";
  try {
    return read_config_fields(model_dir, path);
  } catch (const nlohmann::json::exception& e) {  // a field of an unexpected JSON type
    throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{path.string(), 0, 0},
                                     fmt::format("config.json has a field of the wrong type: {}", e.what())});
  }
}

ModelConfig read_config_fields(const fs::path& model_dir, const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    Diagnostic d;
    d.where = SourceLocation{path.string(), 0, 0};
    d.message = fs::exists(model_dir) ? "no config.json in the model directory" : "the model directory does not exist";
    d.help = "a Hugging Face model directory holds config.json and model.safetensors";
    throw DiagnosticError(std::move(d));
  }
  auto json = read_json_file(path);
  if (!json.is_object())
    throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{path.string(), 0, 0}, "config.json is not a JSON object"});
  const Reader r{json, path.string()};

  ModelConfig c;
  if (!r.has("architectures") || !json["architectures"].is_array() || json["architectures"].empty() ||
      !json["architectures"][0].is_string())
    r.fail("architectures", "expected a list naming the model class, e.g. [\"LlamaForCausalLM\"]");
  c.architecture = json["architectures"][0].get<std::string>();
  if (!kSupported.count(c.architecture))
    r.fail("architectures", fmt::format("'{}' is not supported", c.architecture),
           "supported: Llama, Mistral, Qwen2 and Qwen3, as ...ForCausalLM or ...ForSequenceClassification");
  c.head = c.architecture.find("SequenceClassification") != std::string::npos ? Head::classification : Head::causal_lm;
  c.model_type = json.value("model_type", "");

  c.vocab_size = r.integer("vocab_size");
  c.hidden_size = r.integer("hidden_size");
  c.intermediate_size = r.integer("intermediate_size");
  c.num_hidden_layers = r.integer("num_hidden_layers");
  c.num_attention_heads = r.integer("num_attention_heads");
  c.num_key_value_heads = r.integer_or("num_key_value_heads", c.num_attention_heads);
  if (!r.has("head_dim") && c.num_attention_heads > c.hidden_size)
    r.fail("num_attention_heads", fmt::format("{} heads of hidden_size {} leave no head_dim", c.num_attention_heads,
                                              c.hidden_size), "give head_dim, or fewer heads");
  c.head_dim = r.integer_or("head_dim", c.hidden_size / c.num_attention_heads);
  c.max_position_embeddings = r.integer_or("max_position_embeddings", 2048);
  if (c.num_attention_heads % c.num_key_value_heads != 0)
    r.fail("num_key_value_heads", fmt::format("{} does not divide num_attention_heads {}", c.num_key_value_heads,
                                              c.num_attention_heads));
  if (r.has("hidden_act") && json["hidden_act"] != "silu")
    r.fail("hidden_act", fmt::format("only silu is supported, found {}", json["hidden_act"].dump()));
  c.rms_norm_eps = r.number_or("rms_norm_eps", 1e-6);
  c.rope_theta = r.number_or("rope_theta", 10000.0);
  c.tie_word_embeddings = r.boolean_or("tie_word_embeddings", false);

  const bool qwen2 = c.architecture.rfind("Qwen2", 0) == 0;
  const bool qwen3 = c.architecture.rfind("Qwen3", 0) == 0;
  const bool attention_bias = r.boolean_or("attention_bias", false);
  c.qkv_bias = qwen2 || attention_bias;
  c.o_bias = !qwen2 && attention_bias;
  c.mlp_bias = r.boolean_or("mlp_bias", false);
  c.qk_norm = qwen3;

  if (r.has("rope_scaling")) {
    const auto& rs = json["rope_scaling"];
    if (!rs.is_object()) r.fail("rope_scaling", "expected an object or null");
    const std::string type = rs.value("rope_type", rs.value("type", std::string("default")));
    if (type != "default" && type != "llama3")
      r.fail("rope_scaling", fmt::format("rope_type '{}' is not supported", type), "supported: default, llama3");
    c.rope_scaling.rope_type = type;
    const Reader s{rs, path.string(), "rope_scaling."};
    c.rope_scaling.factor = s.number_or("factor", 1.0);
    c.rope_scaling.low_freq_factor = s.number_or("low_freq_factor", 1.0);
    c.rope_scaling.high_freq_factor = s.number_or("high_freq_factor", 4.0);
    c.rope_scaling.original_max_position_embeddings = s.integer_or("original_max_position_embeddings", 8192);
    if (type == "llama3") check_llama3_rope(s, c);
  }
  if (!(c.rope_theta > 0.0)) r.fail("rope_theta", fmt::format("expected a positive number, found {}", c.rope_theta));
  const bool mistral = c.architecture.rfind("Mistral", 0) == 0;
  if (mistral && r.has("sliding_window")) c.sliding_window = r.integer("sliding_window");
  // Qwen's window applies only to some layers (max_window_layers); not supported rather than wrong.
  if ((qwen2 || qwen3) && r.boolean_or("use_sliding_window", false))
    r.fail("use_sliding_window", "sliding-window attention for Qwen models is not supported");
  c.num_labels = r.integer_or("num_labels", c.head == Head::classification && json.contains("id2label")
                                                ? static_cast<std::int64_t>(json["id2label"].size())
                                                : 1);
  c.initializer_range = r.number_or("initializer_range", 0.02);
  c.pad_token_id = r.token_id("pad_token_id");
  c.bos_token_id = r.token_id("bos_token_id");
  c.eos_token_id = r.token_id("eos_token_id");
  if (r.has("torch_dtype") && json["torch_dtype"].is_string()) c.torch_dtype = json["torch_dtype"];
  if (const auto count = count_parameters<long double>(c); count > static_cast<long double>(kMaxParameters))
    throw DiagnosticError(Diagnostic{
        Severity::error, SourceLocation{path.string(), 0, 0},
        fmt::format("config.json's sizes (vocab_size {}, hidden_size {}, intermediate_size {}, num_hidden_layers {}, "
                    "num_attention_heads {}, head_dim {}) give {:.3g} parameters, more than the {:.3g} alignkit holds",
                    c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.num_attention_heads,
                    c.head_dim, static_cast<double>(count), static_cast<double>(kMaxParameters))});
  c.json = json.dump(2);
  return c;
}

std::int64_t parameter_count(const ModelConfig& config) { return count_parameters<std::int64_t>(config); }

ModelConfig as_classifier(ModelConfig c, std::int64_t labels, const fs::path& model_dir) {
  if (c.head == Head::classification) {
    if (c.num_labels != labels)
      throw DiagnosticError(Diagnostic{Severity::error, SourceLocation{(model_dir / "config.json").string(), 0, 0},
                                       fmt::format("the classification head has {} outputs, {} are needed", c.num_labels,
                                                   labels),
                                       "train a reward model from a causal LM or from a one-label classifier"});
    return c;
  }
  const auto at = c.architecture.find("ForCausalLM");
  c.architecture.replace(at, std::string("ForCausalLM").size(), "ForSequenceClassification");
  c.head = Head::classification;
  c.num_labels = labels;
  auto json = nlohmann::json::parse(c.json);
  json["architectures"] = nlohmann::json::array({c.architecture});
  json["id2label"] = nlohmann::json::object();
  json["label2id"] = nlohmann::json::object();
  for (std::int64_t i = 0; i < labels; ++i) {
    json["id2label"][std::to_string(i)] = fmt::format("LABEL_{}", i);
    json["label2id"][fmt::format("LABEL_{}", i)] = i;
  }
  c.json = json.dump(2);
  return c;
}

}  // namespace alignkit::hf
