// The training loop end to end against the Python reference of TRL's DPO step
// (tests/reference/trl_dpo_step.py), and the data pipeline in front of it: dataset plugins,
// tokenization at the prompt/completion boundary, truncation, malformed records.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/lora.hpp>
#include <alignkit/safetensors.hpp>
#include <alignkit/torch_compat.hpp>

#include "host/metrics_log.hpp"
#include "host/training_data.hpp"

#include "test_support.hpp"

namespace alignkit {
namespace {

using testing::RecipeFixture;
using testing::read_jsonl;
using testing::TempDir;
namespace fs = std::filesystem;

const fs::path kLlama = testing::source_dir() / "tests/fixtures/oracle/llama";

// Four preference pairs as token ids (the oracle llama has a 300-token vocabulary, EOS 2).
const fs::path kPairs = testing::source_dir() / "tests/fixtures/llama_token_pairs.jsonl";

// tok/ and pairs.jsonl in `dir`, for recipes on the oracle models, which carry no tokenizer:
// init-model's byte-level one has their EOS (2) and pad (0); the pairs are kPairs.
void write_tokenizer_and_pairs(const TempDir& dir) {
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--config-only", "--out", (dir.path() / "tok").string()})
                .exit_code,
            0);
  fs::copy_file(kPairs, dir.path() / "pairs.jsonl");
}

struct Run {
  std::vector<nlohmann::json> ours, reference;
};

const fs::path kLlamaSeqcls = testing::source_dir() / "tests/fixtures/oracle/llama_seqcls";

// Trains 5 steps with alignkit and with a Python reference (tests/reference/SCRIPT) on the same
// data and weights: `method` is the recipe's [method] body, `reference_args` the script's own.
// `pairs` replaces the token-id pairs of kPairs; `tokenizer_edit` changes tokenizer_config.json.
Run train_both(const TempDir& dir, const fs::path& model, const std::string& method, const std::string& script,
               const std::string& extra_recipe, const std::vector<std::string>& reference_args, double lr,
               const std::string& pairs = "", const std::function<void(nlohmann::json&)>& tokenizer_edit = {}) {
  write_tokenizer_and_pairs(dir);
  if (tokenizer_edit) {
    const auto file = dir.path() / "tok/tokenizer_config.json";
    std::ifstream in(file);
    auto config = nlohmann::json::parse(in);
    tokenizer_edit(config);
    dir.write("tok/tokenizer_config.json", config.dump(2));
  }
  const auto data = dir.path() / "pairs.jsonl";
  if (!pairs.empty()) dir.write("pairs.jsonl", pairs);
  const auto recipe = dir.write(
      "train.toml", fmt::format("[run]\noutput_dir = \"run\"\n[training]\nmax_steps = 5\nper_device_train_batch_size = 4\n"
                                "logging_steps = 1\n[optimizer]\nlearning_rate = {}\nweight_decay = 0.01\n"
                                "[scheduler]\nname = \"linear\"\n[method]\n{}[model]\npath = \"{}\"\n"
                                "tokenizer = \"tok\"\n[data]\nformat = \"jsonl\"\npath = \"pairs.jsonl\"\n{}",
                                lr, method, model.string(), extra_recipe));
  const auto r = testing::run_alignkit({"train", recipe.string()});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  std::vector<std::string> argv = {"/usr/bin/python3", (testing::source_dir() / "tests/reference" / script).string(),
                                   "--model", model.string(), "--data", data.string(), "--steps", "5", "--lr",
                                   fmt::format("{}", lr), "--weight-decay", "0.01"};
  argv.insert(argv.end(), reference_args.begin(), reference_args.end());
  const auto py = testing::run_command(argv);
  EXPECT_EQ(py.exit_code, 0) << py.output;
  Run run;
  run.ours = read_jsonl(dir.path() / "run/metrics.jsonl");
  std::istringstream lines(py.stdout_text);
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) run.reference.push_back(nlohmann::json::parse(line));
  return run;
}

Run train_dpo_both(const TempDir& dir, const std::string& extra_recipe, std::vector<std::string> reference_args,
                   double lr) {
  reference_args.insert(reference_args.end(), {"--beta", "0.1"});
  return train_both(dir, kLlama, "name = \"dpo\"\nbeta = 0.1\n", "trl_dpo_step.py",
                    "[output]\nsave_model = false\n" + extra_recipe, reference_args, lr);
}

// Both runs' five steps agree: loss, gradient norm and the named metrics. fp32 on both sides
// through the same operations in different groupings: the first step agrees to rounding; AdamW's
// normalised updates carry that rounding forward, so later steps get 1e-5 relative on the loss
// and 1e-4 on the gradient norm and metrics (a wrong formula is off by far more).
void expect_steps_agree(const Run& run, const std::vector<std::string>& metrics) {
  ASSERT_EQ(run.ours.size(), 5u);
  ASSERT_EQ(run.reference.size(), 5u);
  for (std::size_t step = 0; step < 5; ++step) {
    const double loss = run.reference[step]["loss"], norm = run.reference[step]["grad_norm"];
    EXPECT_NEAR(run.ours[step]["loss"].get<double>(), loss, 1e-5 * std::abs(loss) + 1e-7) << "step " << step + 1;
    EXPECT_NEAR(run.ours[step]["grad_norm"].get<double>(), norm, 1e-4 * std::abs(norm) + 1e-7) << "step " << step + 1;
    for (const auto& metric : metrics) {
      const double want = run.reference[step][metric];
      EXPECT_NEAR(run.ours[step][metric].get<double>(), want, 1e-4 * std::abs(want) + 1e-6) << metric << " step " << step + 1;
    }
  }
  EXPECT_LT(run.ours[4]["loss"].get<double>(), run.ours[0]["loss"].get<double>());
}

void expect_tracks(const Run& run, bool reference_is_start) {
  expect_steps_agree(run, {"rewards/margins"});
  // The run learns: the loss falls (from log 2 when the reference is the starting policy; a
  // starting adapter with a non-zero B already differs from the adapter-off reference).
  if (reference_is_start) EXPECT_NEAR(run.ours[0]["loss"].get<double>(), std::log(2.0), 1e-6);
}

// Attaches an r4 adapter on q/v/down_proj (with `kind`'s task_type and modules_to_save) whose B
// is non-zero, so both factors get gradients from the first step, and saves it to `dir`.
void save_starting_adapter(CausalLM& model, const fs::path& dir, LoraConfig kind, std::uint64_t seed) {
  kind.r = 4;
  kind.alpha = 8;
  kind.target_modules = {"q_proj", "v_proj", "down_proj"};
  apply_lora(model, kind);
  testing::perturb_adapters(model, seed);
  save_peft_adapter(model, kind, dir, "base");
}

TEST(TrainingOracle, FullFineTuningDpoStepsTrackTheTrlReference) {
  TempDir dir;
  expect_tracks(train_dpo_both(dir, "", {}, 1e-3), true);
}

TEST(TrainingOracle, LoraDpoStepsTrackTheTrlReference) {
  TempDir dir;
  testing::HfLoader m;
  auto model = m.loader->load(kLlama, LoadOptions{});
  save_starting_adapter(*model, dir.path() / "adapter", LoraConfig{}, 21);
  expect_tracks(train_dpo_both(dir, "[lora]\ninit_adapter = \"adapter\"\n", {"--adapter", (dir.path() / "adapter").string()},
                               1e-2),
                false);
}

// Reward modelling (TRL's RewardTrainer) on a ...ForSequenceClassification checkpoint, with the
// centring term: loss, gradient norm and every TRL metric step for step against
// tests/reference/trl_reward_step.py, then the saved model is a classifier transformers loads.
TEST(TrainingOracle, RewardModelStepsTrackTheTrlReference) {
  TempDir dir;
  const auto run = train_both(dir, kLlamaSeqcls, "name = \"reward\"\ncenter_rewards_coefficient = 0.01\n",
                              "trl_reward_step.py", "", {"--center", "0.01"}, 1e-3);
  expect_steps_agree(run, {"accuracy", "margin", "min_reward", "mean_reward", "max_reward"});
  const auto saved = dir.path() / "run/final/model";
  std::ifstream in(saved / "config.json");
  const auto config = nlohmann::json::parse(in);
  EXPECT_EQ(config["architectures"][0], "LlamaForSequenceClassification");
  EXPECT_EQ(config["pad_token_id"], 0);
  // The plot shows the reward method's curves.
  std::stringstream svg;
  svg << std::ifstream(dir.path() / "run/metrics.svg").rdbuf();
  EXPECT_NE(svg.str().find(">accuracy</text>"), std::string::npos);
  EXPECT_NE(svg.str().find(">margin</text>"), std::string::npos);
}

// A tokenizer without a pad token pads with EOS: transformers then pools a classifier at the last
// token that is not EOS, so rows that end with EOS (as text data's do) are scored at the token
// before it, in training as in the saved model (pad_token_id = EOS).
TEST(TrainingOracle, RewardModelWithEosAsPadPoolsBeforeTheEos) {
  TempDir dir;
  std::string pairs;
  for (auto line : read_jsonl(kPairs)) {
    line["chosen_ids"].push_back(2);
    line["rejected_ids"].push_back(2);
    pairs += line.dump() + "\n";
  }
  const auto run = train_both(dir, kLlamaSeqcls, "name = \"reward\"\n", "trl_reward_step.py", "", {"--pad", "2"}, 1e-3,
                              pairs, [](nlohmann::json& config) { config.erase("pad_token"); });
  expect_steps_agree(run, {"accuracy", "margin", "min_reward", "mean_reward", "max_reward"});
  std::ifstream in(dir.path() / "run/final/model/config.json");
  EXPECT_EQ(nlohmann::json::parse(in)["pad_token_id"], 2);
  // Pooling at the EOS instead gives other numbers: the reference run that way must disagree.
  const auto at_eos = testing::run_command({"/usr/bin/python3", (testing::source_dir() / "tests/reference/trl_reward_step.py").string(),
                                            "--model", kLlamaSeqcls.string(), "--data", (dir.path() / "pairs.jsonl").string(),
                                            "--steps", "1", "--lr", "1e-3", "--pad", "0"});
  ASSERT_EQ(at_eos.exit_code, 0) << at_eos.output;
  EXPECT_GT(std::abs(nlohmann::json::parse(at_eos.stdout_text)["loss"].get<double>() - run.ours[0]["loss"].get<double>()), 1e-3);
}

// A causal-LM checkpoint becomes a one-output classifier, as AutoModelForSequenceClassification
// loads it: lm_head dropped, a score head drawn from N(0, initializer_range) by the run's seed,
// and the saved model a ...ForSequenceClassification directory with transformers' label maps.
TEST(RewardModel, CausalCheckpointGetsAFreshScoreHeadAndSavesAsAClassifier) {
  testing::HfLoader hf;
  LoadOptions options;
  options.classification_labels = 1;
  torch::manual_seed(7);
  const auto first = hf.loader->load(kLlama, options);
  torch::manual_seed(7);
  const auto again = hf.loader->load(kLlama, options);
  const auto head = first->output_weight();
  ASSERT_EQ(head.sizes(), (std::vector<std::int64_t>{1, 64}));
  EXPECT_TRUE(torch::equal(head, again->output_weight()));
  std::ifstream in(kLlama / "config.json");
  const double range = nlohmann::json::parse(in).value("initializer_range", 0.02);
  // 64 draws: the sample std is within 30% of the range with probability > 0.999 (chi-square, 63
  // degrees of freedom); LibTorch's own Linear init would give 1/sqrt(3*64) = 0.072.
  EXPECT_NEAR(head.std().item<double>(), range, 0.3 * range);
  EXPECT_EQ(first->named_parameters().find("lm_head.weight"), nullptr);
  // The decoder is the checkpoint's own.
  const auto causal = hf.loader->load(kLlama, LoadOptions{});
  EXPECT_TRUE(torch::equal(first->named_parameters()["model.layers.1.mlp.down_proj.weight"],
                           causal->named_parameters()["model.layers.1.mlp.down_proj.weight"]));

  TempDir dir;
  hf.loader->save(*first, dir.path() / "rm");
  std::ifstream saved_in(dir.path() / "rm/config.json");
  const auto saved = nlohmann::json::parse(saved_in);
  EXPECT_EQ(saved["architectures"][0], "LlamaForSequenceClassification");
  EXPECT_EQ(saved["id2label"]["0"], "LABEL_0");
  EXPECT_EQ(saved["label2id"]["LABEL_0"], 0);
  const auto reloaded = hf.loader->load(dir.path() / "rm", LoadOptions{});
  EXPECT_TRUE(torch::equal(reloaded->output_weight(), head));
  // A classifier with another number of outputs is refused, naming its config.
  options.classification_labels = 3;
  try {
    hf.loader->load(dir.path() / "rm", options);
    ADD_FAILURE() << "a one-output classifier loaded as a three-output one";
  } catch (const DiagnosticError& e) {
    EXPECT_NE(e.format().find("config.json"), std::string::npos) << e.format();
  }
}

TEST(RewardModel, PackingIsRefusedInTheRecipe) {
  TempDir dir;
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--out", (dir.path() / "m").string()}).exit_code, 0);
  dir.write("data.jsonl", "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n");
  const auto recipe = dir.write("r.toml", "[run]\noutput_dir = \"run\"\n[method]\nname = \"reward\"\n[model]\npath = \"m\"\n"
                                          "[data]\nformat = \"jsonl\"\npath = \"data.jsonl\"\n[training]\nmax_steps = 1\n"
                                          "packing = true\n");
  const auto r = testing::run_alignkit({"train", recipe.string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(recipe.string() + ":"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("reward modelling scores padded rows"), std::string::npos) << r.output;
}

// A LoRA reward model: PEFT's SEQ_CLS adapter, whose score head trains whole beside the adapters
// (modules_to_save), step for step against the Python reference from the same starting adapter.
TEST(TrainingOracle, LoraRewardModelStepsTrackTheTrlReference) {
  TempDir dir;
  testing::HfLoader m;
  auto model = m.loader->load(kLlamaSeqcls, LoadOptions{});
  LoraConfig seq_cls;
  seq_cls.task_type = "SEQ_CLS";
  seq_cls.modules_to_save = {"classifier", "score"};
  save_starting_adapter(*model, dir.path() / "adapter", seq_cls, 22);
  const auto run = train_both(dir, kLlamaSeqcls, "name = \"reward\"\n", "trl_reward_step.py",
                              "[lora]\ninit_adapter = \"adapter\"\n[output]\nsave_adapter = true\n",
                              {"--adapter", (dir.path() / "adapter").string()}, 1e-2);
  expect_steps_agree(run, {"accuracy", "margin", "min_reward", "mean_reward", "max_reward"});
  // The saved adapter carries the trained head under PEFT's key, and the merged model equals it.
  const auto adapter = safetensors::File::open(dir.path() / "run/final/adapter/adapter_model.safetensors");
  ASSERT_TRUE(adapter.find("base_model.model.score.weight"));
  const auto head = adapter.tensor("base_model.model.score.weight");
  EXPECT_FALSE(torch::equal(head, model->output_weight()));  // it trained
  const auto merged = m.loader->load(dir.path() / "run/final/model", LoadOptions{});
  EXPECT_TRUE(torch::equal(merged->output_weight(), head));
}

// QLoRA on a causal checkpoint: the adapters merge into the base reloaded unquantized as a
// classifier, and the merged model's head is the trained one from the adapter, not a new draw.
TEST(RewardModel, QloraMergesTheTrainedHeadIntoTheSavedModel) {
  TempDir dir;
  write_tokenizer_and_pairs(dir);
  const auto recipe = dir.write(
      "q.toml", fmt::format("[run]\noutput_dir = \"run\"\n[training]\nmax_steps = 2\nper_device_train_batch_size = 2\n"
                            "[method]\nname = \"reward\"\n[model]\npath = \"{}\"\ntokenizer = \"tok\"\nquantization = \"nf4\"\n"
                            "[lora]\nr = 4\n[data]\nformat = \"jsonl\"\npath = \"pairs.jsonl\"\n[output]\nsave_adapter = true\n",
                            kLlama.string()));
  const auto r = testing::run_alignkit({"train", recipe.string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto adapter = safetensors::File::open(dir.path() / "run/final/adapter/adapter_model.safetensors");
  const auto merged = safetensors::File::open(dir.path() / "run/final/model/model.safetensors");
  EXPECT_TRUE(torch::equal(adapter.tensor("base_model.model.score.weight"), merged.tensor("score.weight")));
  EXPECT_EQ(merged.find("lm_head.weight"), nullptr);
  // ... and it trained: the run's starting head (the same load under the run's seed, 42) differs.
  testing::HfLoader m;
  LoadOptions start;
  start.classification_labels = 1;
  start.quantization = BaseQuantization::nf4;
  torch::manual_seed(42);
  const auto fresh = m.loader->load(kLlama, start)->output_weight();
  EXPECT_FALSE(torch::allclose(fresh, merged.tensor("score.weight")));
  // The reward model pools by the pad id it trained with.
  std::ifstream in(dir.path() / "run/final/model/config.json");
  EXPECT_EQ(nlohmann::json::parse(in)["pad_token_id"], 0);
}

// Other methods refuse a starting adapter that trains whole modules: PEFT's adapter-off view
// (the reference) would use the module's original, which alignkit does not keep.
TEST(RewardModel, ModulesToSaveAdapterIsRefusedForAMethodWithAReference) {
  TempDir dir;
  testing::HfLoader m;
  auto model = m.loader->load(kLlama, LoadOptions{});
  LoraConfig with_head;
  with_head.modules_to_save = {"lm_head"};
  save_starting_adapter(*model, dir.path() / "adapter", with_head, 3);
  ASSERT_TRUE(safetensors::File::open(dir.path() / "adapter/adapter_model.safetensors").find("base_model.model.lm_head.weight"));
  write_tokenizer_and_pairs(dir);
  const auto recipe = dir.write(
      "dpo.toml", fmt::format("[run]\noutput_dir = \"run\"\n[training]\nmax_steps = 1\n[method]\nname = \"dpo\"\n"
                              "[model]\npath = \"{}\"\ntokenizer = \"tok\"\n[lora]\ninit_adapter = \"adapter\"\n"
                              "[data]\nformat = \"jsonl\"\npath = \"pairs.jsonl\"\n",
                              kLlama.string()));
  const auto r = testing::run_alignkit({"train", recipe.string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("modules_to_save: lm_head"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("init_adapter"), std::string::npos) << r.output;
}

// PEFT's SEQ_CLS adapter format: the head saved as "base_model.model.score.weight" (PEFT drops its
// modules_to_save wrapper's prefix on save), the config's task_type and modules_to_save, and a
// round trip; a causal LM cannot take such an adapter.
TEST(RewardModel, SeqClsAdapterRoundTripsInPeftsFormat) {
  TempDir dir;
  testing::HfLoader m;
  LoadOptions as_classifier;
  as_classifier.classification_labels = 1;
  auto model = m.loader->load(kLlama, as_classifier);
  LoraConfig config;
  config.r = 2;
  config.target_modules = {"v_proj"};
  config.task_type = "SEQ_CLS";
  config.modules_to_save = {"classifier", "score"};
  apply_lora(*model, config);
  EXPECT_TRUE(model->output_weight().requires_grad());
  EXPECT_FALSE(model->named_parameters()["model.embed_tokens.weight"].requires_grad());
  testing::perturb_adapters(*model, 5);
  save_peft_adapter(*model, config, dir.path() / "a", "llama");
  std::ifstream in(dir.path() / "a/adapter_config.json");
  const auto json = nlohmann::json::parse(in);
  EXPECT_EQ(json["task_type"], "SEQ_CLS");
  EXPECT_EQ(json["modules_to_save"], nlohmann::json({"classifier", "score"}));
  const auto file = safetensors::File::open(dir.path() / "a/adapter_model.safetensors");
  EXPECT_EQ(file.header().tensors.size(), 5u);  // 2 layers x (A, B) + the head
  ASSERT_TRUE(file.find("base_model.model.score.weight"));

  auto fresh = m.loader->load(kLlama, as_classifier);  // another random head
  const auto loaded = load_peft_adapter(*fresh, dir.path() / "a");
  EXPECT_EQ(loaded.modules_to_save, config.modules_to_save);
  EXPECT_TRUE(torch::equal(fresh->output_weight(), model->output_weight()));
  auto causal = m.loader->load(kLlama, LoadOptions{});
  try {
    load_peft_adapter(*causal, dir.path() / "a");
    ADD_FAILURE() << "a causal LM took a SEQ_CLS adapter";
  } catch (const DiagnosticError& e) {
    EXPECT_NE(e.format().find("load the base as a one-output sequence classifier"), std::string::npos) << e.format();
  }
  // `alignkit merge` puts it on the base loaded as a classifier.
  const auto r = testing::run_alignkit({"merge", "--model", kLlama.string(), "--adapter", (dir.path() / "a").string(),
                                        "--out", (dir.path() / "merged").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto merged = m.loader->load(dir.path() / "merged", LoadOptions{});
  EXPECT_TRUE(torch::equal(merged->output_weight(), model->output_weight()));
}

TEST(TrainingData, RowsAreTruncatedAsTheModeSays) {
  std::vector<std::int64_t> prompt = {1, 2, 3, 4, 5}, completion = {6, 7, 8};
  EXPECT_FALSE(truncate_row(prompt, completion, 8, true));
  EXPECT_TRUE(truncate_row(prompt, completion, 6, true));
  EXPECT_EQ(prompt, (std::vector<std::int64_t>{3, 4, 5}));  // keep_end: the prompt loses its start
  EXPECT_EQ(completion, (std::vector<std::int64_t>{6, 7, 8}));
  EXPECT_TRUE(truncate_row(prompt, completion, 2, true));  // one prompt token always stays
  EXPECT_EQ(prompt, (std::vector<std::int64_t>{5}));
  EXPECT_EQ(completion, (std::vector<std::int64_t>{6}));
  prompt = {1, 2, 3, 4, 5}, completion = {6, 7, 8};
  EXPECT_TRUE(truncate_row(prompt, completion, 6, false));  // keep_start: the completion loses its end
  EXPECT_EQ(prompt, (std::vector<std::int64_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(completion, (std::vector<std::int64_t>{6}));
}

TEST(TrainingData, MalformedRecordsNameTheirLineOrAreCountedWhenSkipped) {
  TempDir dir;
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--out", (dir.path() / "m").string()}).exit_code, 0);
  dir.write("data.jsonl",
            "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n"
            "{\"prompt\": \"a\", \"chosen\": 5, \"rejected\": \"c\"}\n"
            "not json\n"
            "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"d\"}\n");
  const auto recipe = dir.write("r.toml",
                                "[run]\noutput_dir = \"run\"\n[training]\nmax_steps = 1\n[method]\nname = \"orpo\"\n"
                                "[model]\npath = \"m\"\n[data]\nformat = \"jsonl\"\npath = \"data.jsonl\"\n");
  auto r = testing::run_alignkit({"train", recipe.string()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find((dir.path() / "data.jsonl").string() + ":2: error: 'chosen' must be text or a list of messages"),
            std::string::npos)
      << r.output;
  r = testing::run_alignkit({"train", recipe.string(), "--set", "data.on_error=\"skip\""});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("data: 4 records, 2 train / 0 eval examples, 2 skipped"), std::string::npos) << r.output;
}

TEST(TrainingData, ConversationsSplitWhereThePromptsTokensEnd) {
  // ChatML rendering through the tiny model's template: the prompt is rendered with the
  // generation prompt, the completion is the rest of the whole conversation, and prompt ids +
  // completion ids are the ids of the whole rendered text (plus EOS).
  TempDir dir;
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--config-only", "--out", (dir.path() / "m").string()})
                .exit_code,
            0);
  const auto tokenizer = Tokenizer::from_directory(dir.path() / "m");
  dir.write("chat.jsonl",
            "{\"prompt\": [{\"role\": \"user\", \"content\": \"Hi there\"}], \"chosen\": [{\"role\": \"assistant\", "
            "\"content\": \"Hello!\"}], \"rejected\": [{\"role\": \"assistant\", \"content\": \"Go away.\"}]}\n");
  RecipeFixture fixture("[data]\nformat = \"jsonl\"\npath = \"" + (dir.path() / "chat.jsonl").string() + "\"\n");
  auto dataset = fixture.registry.create<Dataset>(*fixture.recipe.plugins.at("data"), fixture.recipe.section("data"));
  const auto data = prepare_training_data(*dataset, tokenizer, ExampleLayout::paired, {}, false, 0.0, 1);
  ASSERT_EQ(data.train.size(), 1u);
  const auto& e = data.train[0];
  const auto whole = tokenizer.encode("<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n", false);
  auto joined = e.prompt;
  joined.insert(joined.end(), e.completion.begin(), e.completion.end() - 1);
  EXPECT_EQ(joined, whole);
  EXPECT_EQ(e.completion.back(), *tokenizer.eos_token_id());
  EXPECT_EQ(tokenizer.decode(e.prompt), "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(data.report.boundary_mismatches, 0u);

  // Text whose boundary merges across prompt and completion (" t" + "he" -> " the" is one
  // token joined) is tokenized apart and counted.
  dir.write("text.jsonl", "{\"prompt\": \"Say t\", \"chosen\": \"he end\", \"rejected\": \"x\"}\n");
  RecipeFixture text_fixture("[data]\nformat = \"jsonl\"\npath = \"" + (dir.path() / "text.jsonl").string() + "\"\n");
  auto text = text_fixture.registry.create<Dataset>(*text_fixture.recipe.plugins.at("data"), text_fixture.recipe.section("data"));
  const auto merged = prepare_training_data(*text, tokenizer, ExampleLayout::paired, {}, false, 0.0, 1);
  EXPECT_EQ(merged.report.boundary_mismatches, 1u);
  EXPECT_EQ(merged.train[0].prompt, tokenizer.encode("Say t", false));
}

// Reward rows as TRL's RewardTrainer makes them: text joined and encoded with the tokenizer's
// special tokens, EOS text appended only when missing; a conversation rendered whole, no EOS
// added; token ids as given; rows over max_length dropped, not cut.
TEST(TrainingData, RewardRowsAreWholeAsRewardTrainerMakesThem) {
  TempDir dir;
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--config-only", "--out", (dir.path() / "m").string()})
                .exit_code,
            0);
  const auto tokenizer = Tokenizer::from_directory(dir.path() / "m");
  const std::string eos = *tokenizer.eos_token();
  TokenizationOptions options;
  options.whole_rows = true;
  auto prepare = [&](const std::string& name, const std::string& lines) {
    dir.write(name, lines);
    RecipeFixture fixture("[data]\nformat = \"jsonl\"\npath = \"" + (dir.path() / name).string() + "\"\n");
    auto dataset = fixture.registry.create<Dataset>(*fixture.recipe.plugins.at("data"), fixture.recipe.section("data"));
    return prepare_training_data(*dataset, tokenizer, ExampleLayout::paired, options, false, 0.0, 1);
  };
  options.max_length = 64;
  const auto text = prepare("text.jsonl", "{\"prompt\": \"Q: hi\", \"chosen\": \" yes\", \"rejected\": \" no" + eos + "\"}\n");
  ASSERT_EQ(text.train.size(), 1u);
  EXPECT_TRUE(text.train[0].prompt.empty());
  EXPECT_EQ(text.train[0].completion, tokenizer.encode("Q: hi yes" + eos, true));
  EXPECT_EQ(text.train[0].rejected, tokenizer.encode("Q: hi no" + eos, true));  // its EOS not doubled
  const auto& rejected = text.train[0].rejected;
  EXPECT_EQ(std::count(rejected.begin(), rejected.end(), *tokenizer.eos_token_id()), 1);

  const auto chat = prepare("chat.jsonl", "{\"prompt\": [{\"role\": \"user\", \"content\": \"Hi\"}], \"chosen\": "
                                          "[{\"role\": \"assistant\", \"content\": \"Hello!\"}], \"rejected\": "
                                          "[{\"role\": \"assistant\", \"content\": \"No.\"}]}\n");
  ASSERT_EQ(chat.train.size(), 1u);
  EXPECT_EQ(chat.train[0].completion,
            tokenizer.encode("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n", false));

  options.max_length = 6;
  const auto ids = prepare("ids.jsonl", "{\"prompt_ids\": [1, 5], \"chosen_ids\": [6, 7], \"rejected_ids\": [8]}\n"
                                        "{\"prompt_ids\": [1, 5], \"chosen_ids\": [6, 7, 8, 9, 10], \"rejected_ids\": [8]}\n");
  ASSERT_EQ(ids.train.size(), 1u);
  EXPECT_EQ(ids.report.too_long, 1u);  // 7 tokens over a max_length of 6: dropped, not cut
  EXPECT_EQ(ids.train[0].completion, (std::vector<std::int64_t>{1, 5, 6, 7}));
  EXPECT_EQ(ids.train[0].rejected, (std::vector<std::int64_t>{1, 5, 8}));
  // When every row is too long, the error says so and what to raise.
  options.max_length = 2;
  try {
    prepare("ids2.jsonl", "{\"prompt_ids\": [1, 5], \"chosen_ids\": [6], \"rejected_ids\": [8]}\n");
    ADD_FAILURE() << "no example fits, yet the data was accepted";
  } catch (const DiagnosticError& e) {
    EXPECT_NE(e.format().find("every example (1) has a row longer than max_length 2"), std::string::npos) << e.format();
    EXPECT_NE(e.format().find("raise [training] max_length"), std::string::npos) << e.format();
  }
}

TEST(TrainingData, HhRlhfPromptIsTheCommonPrefixUpToTheLastAssistantTurn) {
  TempDir dir;
  dir.write("hh.jsonl",
            "{\"chosen\": \"\\n\\nHuman: Hi\\n\\nAssistant: Hello\\n\\nHuman: Help me\\n\\nAssistant: Sure, here.\", "
            "\"rejected\": \"\\n\\nHuman: Hi\\n\\nAssistant: Hello\\n\\nHuman: Help me\\n\\nAssistant: No.\"}\n");
  struct Sink : ExampleSink {
    std::vector<Example> examples;
    void add(Example e) override { examples.push_back(std::move(e)); }
    void reject(Diagnostic d) override { FAIL() << d.format(); }
  } sink;
  RecipeFixture fixture("[data]\nformat = \"hh_rlhf\"\npath = \"" + (dir.path() / "hh.jsonl").string() + "\"\n");
  fixture.registry.create<Dataset>(*fixture.recipe.plugins.at("data"), fixture.recipe.section("data"))->read(sink);
  ASSERT_EQ(sink.examples.size(), 1u);
  EXPECT_EQ(sink.examples[0].prompt.text, "\n\nHuman: Hi\n\nAssistant: Hello\n\nHuman: Help me\n\nAssistant:");
  EXPECT_EQ(sink.examples[0].chosen.text, " Sure, here.");
  EXPECT_EQ(sink.examples[0].rejected.text, " No.");
}

TEST(MetricsLog, WritesJsonlCsvAndAPlot) {
  TempDir dir;
  MetricsLog log(dir.path());
  log.log(1, {{"loss", 0.69}, {"rewards/accuracies", 0.5}});
  log.log(2, {{"loss", 0.5}, {"eval_loss", 0.6}});
  EXPECT_EQ(read_jsonl(dir.path() / "metrics.jsonl").size(), 2u);
  std::ifstream csv(dir.path() / "metrics.csv");
  std::string header;
  std::getline(csv, header);
  EXPECT_EQ(header, "step,eval_loss,loss,rewards/accuracies");
  std::stringstream svg;
  svg << std::ifstream(dir.path() / "metrics.svg").rdbuf();
  EXPECT_NE(svg.str().find(">loss</text>"), std::string::npos);
  EXPECT_NE(svg.str().find(">eval_loss</text>"), std::string::npos);
  EXPECT_NE(svg.str().find("<path d=\"M"), std::string::npos);
}

}  // namespace
}  // namespace alignkit

namespace alignkit {
namespace {

TEST(TrainingRecipe, ProblemsTheLoopWouldMeetLateAreRecipeErrorsUpFront) {
  TempDir dir;
  const auto recipe = dir.write("r.toml",
                                "[method]\nname = \"dpo\"\n[model]\npath = \"m\"\nquantization = \"nf4\"\n"
                                "[reference]\nstrategy = \"adapter-off\"\n[data]\nformat = \"jsonl\"\npath = \"d.jsonl\"\n"
                                "[run]\noutput_dir = \"run\"\n"
                                "[training]\nprecision = \"float16\"\nmaster_weights = \"none\"\n");
  const auto r = testing::run_alignkit({"train", recipe.string()});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  for (const char* message : {"[training] max_steps is not set", "a quantized base needs LoRA adapters to train",
                              "adapter-off needs LoRA adapters on the policy",
                              "full fine-tuning in float16 needs float32 master weights"})
    EXPECT_NE(r.output.find(message), std::string::npos) << message << "\n" << r.output;
  EXPECT_FALSE(fs::exists(dir.path() / "run"));  // nothing was started
}

TEST(TrainingData, TokenIdsOutsideTheVocabularyNameTheirExample) {
  TempDir dir;
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--out", (dir.path() / "m").string()}).exit_code, 0);
  const auto data = dir.write("d.jsonl", "{\"prompt_ids\": [1, 5], \"chosen_ids\": [6], \"rejected_ids\": [7]}\n"
                                         "{\"prompt_ids\": [1, 5], \"chosen_ids\": [6000], \"rejected_ids\": [7]}\n");
  const auto recipe = dir.write("r.toml",
                                "[run]\noutput_dir = \"run\"\n[training]\nmax_steps = 1\n[method]\nname = \"dpo\"\n"
                                "[model]\npath = \"m\"\n[data]\nformat = \"jsonl\"\npath = \"d.jsonl\"\n");
  const auto r = testing::run_alignkit({"train", recipe.string()});
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(data.string() + ":2: error: token id 6000 is outside the model's vocabulary of 300"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace alignkit

namespace alignkit {
namespace {

TEST(PlanCommand, PlansFromTheConfigAloneAndTrainRefusesWhatDoesNotFit) {
  TempDir dir;
  // A 70B config and no weights: planning never loads anything.
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "70b", "--config-only", "--out", (dir.path() / "big").string()})
                .exit_code,
            0);
  dir.write("d.jsonl", "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n");
  const auto recipe = dir.write("r.toml",
                                "[run]\noutput_dir = \"run\"\n[training]\nmax_steps = 1\nper_device_train_batch_size = 1\n"
                                "max_length = 512\n[method]\nname = \"dpo\"\n[model]\npath = \"big\"\n[data]\n"
                                "format = \"jsonl\"\npath = \"d.jsonl\"\n");
  auto r = testing::run_alignkit({"plan", recipe.string(), "--gpu", "t4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto plan = nlohmann::json::parse(r.stdout_text);
  EXPECT_EQ(plan["fits"], false);
  EXPECT_FALSE(plan["suggestions"].empty());
  r = testing::run_alignkit({"plan", recipe.string(), "--gpu", "t5"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("did you mean 't4'?"), std::string::npos) << r.output;

  // train plans first and stops before loading anything (the weights do not even exist).
  r = testing::run_alignkit({"train", recipe.string(), "--gpu", "t4"});
  EXPECT_EQ(r.exit_code, 5) << r.output;
  EXPECT_NE(r.output.find("does not fit the memory budget"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.path() / "run"));
  // --force goes on (and then fails on the missing weights, which the plan never needed).
  r = testing::run_alignkit({"train", recipe.string(), "--gpu", "t4", "--force"});
  EXPECT_NE(r.output.find("--force: running a recipe the planner says does not fit"), std::string::npos) << r.output;
}

TEST(PlanCommand, JsonFollowsTheDocumentedSchema) {
  TempDir dir;
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "8b", "--config-only", "--out", (dir.path() / "m").string()})
                .exit_code,
            0);
  const auto recipe = dir.write("r.toml", "[method]\nname = \"dpo\"\n[model]\npath = \"m\"\n[training]\nmax_length = 512\n");
  const auto r = testing::run_alignkit({"plan", recipe.string(), "--gpu", "t4", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto plan = nlohmann::json::parse(r.stdout_text);
  // docs/memory-planner.md, "JSON schema": every documented field, with its type.
  EXPECT_EQ(plan["schema"], "alignkit.memory-plan/1");
  for (const char* key : {"parameters", "vocab_size", "hidden_size", "num_layers"})
    EXPECT_TRUE(plan["model"][key].is_number_integer()) << key;
  for (const char* key : {"micro_batch", "max_length", "logprob_chunk", "lora_r"})
    EXPECT_TRUE(plan["settings"][key].is_number_integer()) << key;
  EXPECT_TRUE(plan["settings"]["precision"].is_string());
  EXPECT_TRUE(plan["settings"]["gradient_checkpointing"].is_boolean());
  EXPECT_TRUE(plan["settings"]["lora"].is_boolean());
  const std::set<std::string> phases = {"weights", "optimizer", "forward", "backward", "step", "generation", "runtime"};
  std::int64_t transient_max = 0, resident_sum = 0;
  ASSERT_FALSE(plan["components"].empty());
  for (const auto& c : plan["components"]) {
    EXPECT_TRUE(c["name"].is_string());
    EXPECT_TRUE(c["bytes"].is_number_integer());
    EXPECT_TRUE(c["gib"].is_number());
    EXPECT_TRUE(phases.count(c["phase"].get<std::string>())) << c["phase"];
    for (const auto& p : c["live"]) EXPECT_TRUE(phases.count(p.get<std::string>())) << p;
    EXPECT_TRUE(c["transient"].is_boolean());
    EXPECT_TRUE(c["formula"].is_string());
    const bool in_peak = std::find(c["live"].begin(), c["live"].end(), plan["peak_phase"]) != c["live"].end();
    if (!in_peak) continue;
    if (c["transient"].get<bool>()) transient_max = std::max(transient_max, c["bytes"].get<std::int64_t>());
    else resident_sum += c["bytes"].get<std::int64_t>();
  }
  // The peak is the peak phase's residents plus its largest transient.
  EXPECT_EQ(plan["peak_bytes"].get<std::int64_t>(), resident_sum + transient_max);
  EXPECT_EQ(plan["phase_totals_bytes"][plan["peak_phase"].get<std::string>()], plan["peak_bytes"]);
  EXPECT_EQ(plan["budget"]["name"], "t4");
  EXPECT_EQ(plan["budget"]["device"], "cuda");
  EXPECT_TRUE(plan["budget"]["bytes"].is_number_integer());
  EXPECT_TRUE(plan["budget"]["source"].is_string());
  EXPECT_TRUE(plan["fits"].is_boolean());
  for (const auto& s : plan["suggestions"]) {
    EXPECT_TRUE(s["change"].is_string());
    EXPECT_EQ(s["total_bytes"].get<std::int64_t>() + s["saves_bytes"].get<std::int64_t>(), plan["peak_bytes"]);
    EXPECT_TRUE(s["fits"].is_boolean());
  }
}

TEST(PlanCommand, RecipeCarriesItsBudgetAndFlagsOverrideIt) {
  TempDir dir;
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "8b", "--config-only", "--out", (dir.path() / "m").string()})
                .exit_code,
            0);
  const std::string base = "[method]\nname = \"dpo\"\n[model]\npath = \"m\"\n";
  auto budget_of = [&](const std::string& recipe_text, std::vector<std::string> flags) {
    const auto recipe = dir.write("r.toml", base + recipe_text);
    std::vector<std::string> args = {"plan", recipe.string(), "--json"};
    args.insert(args.end(), flags.begin(), flags.end());
    const auto r = testing::run_alignkit(args);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.exit_code == 0 ? nlohmann::json::parse(r.stdout_text)["budget"] : nlohmann::json();
  };
  EXPECT_EQ(budget_of("[plan]\ngpu = \"a100-80\"\n", {})["name"], "a100-80");
  EXPECT_EQ(budget_of("[plan]\ngpu = \"a100-80\"\n", {"--gpu", "t4"})["name"], "t4");
  const auto gib = budget_of("[plan]\nmemory_gib = 20\n", {});
  EXPECT_EQ(gib["bytes"].get<std::int64_t>(), 20ll << 30);
  EXPECT_EQ(gib["source"], "[plan] memory_gib");
  EXPECT_EQ(budget_of("", {})["device"], "cpu");  // no budget anywhere: this machine's RAM

  // A wrong preset in the recipe points at its line, with the presets' names.
  const auto recipe = dir.write("bad.toml", base + "[plan]\ngpu = \"t5\"\n");
  const auto r = testing::run_alignkit({"plan", recipe.string()});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("bad.toml:6"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("did you mean 't4'?"), std::string::npos) << r.output;
}

TEST(PlanCommand, ExampleQloraDpoRecipeFitsOnItsT4) {
  // recipes/examples/dpo-7b-qlora-t4.toml carries its budget ([plan] gpu = "t4").
  const auto recipe = testing::source_dir() / "recipes/examples/dpo-7b-qlora-t4.toml";
  const auto r = testing::run_alignkit({"plan", recipe.string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto plan = nlohmann::json::parse(r.stdout_text);
  EXPECT_EQ(plan["budget"]["name"], "t4");
  EXPECT_TRUE(plan["fits"].get<bool>()) << plan.dump(2);
  EXPECT_LT(plan["peak_bytes"].get<std::int64_t>(), plan["budget"]["bytes"].get<std::int64_t>());
}

TEST(PlanCommand, ExampleQloraRewardModelFitsOnItsT4WithoutVocabularyLogits) {
  const auto examples = testing::source_dir() / "recipes/examples";
  auto r = testing::run_alignkit({"plan", (examples / "reward-7b-qlora-t4.toml").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto plan = nlohmann::json::parse(r.stdout_text);
  EXPECT_TRUE(plan["fits"].get<bool>()) << plan.dump(2);
  std::map<std::string, std::int64_t> bytes;
  for (const auto& c : plan["components"]) bytes[c["name"]] = c["bytes"];
  EXPECT_EQ(bytes.count("logits forward (transient)"), 0u);
  EXPECT_GT(bytes.at("score head backward (transient)"), 0);
  // The same 7B config as the DPO example, less its fp16 lm_head (32000 x 4096), plus the head.
  r = testing::run_alignkit({"plan", (examples / "dpo-7b-qlora-t4.toml").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto dpo = nlohmann::json::parse(r.stdout_text);
  std::int64_t dpo_weights = 0;
  for (const auto& c : dpo["components"])
    if (c["name"] == "policy weights") dpo_weights = c["bytes"];
  EXPECT_EQ(dpo_weights - bytes.at("policy weights"), (32000 * 4096 - 4096) * 2);
}

TEST(PlanCommand, ExamplePpoRecipesGetTheirVerdictsOnTheirT4) {
  // Four NF4 7B models of their own do not fit a T4 before any activation.
  auto r = testing::run_alignkit({"plan", (testing::source_dir() / "recipes/examples/ppo-7b-qlora-t4.toml").string(), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto plan = nlohmann::json::parse(r.stdout_text);
  EXPECT_FALSE(plan["fits"].get<bool>());
  std::map<std::string, std::int64_t> bytes;
  for (const auto& c : plan["components"]) bytes[c["name"]] = c["bytes"];
  const std::int64_t four_models = bytes.at("policy weights") + bytes.at("reference weights (copy)") +
                                   bytes.at("reward model weights") + bytes.at("value model weights");
  EXPECT_GT(four_models, plan["budget"]["bytes"].get<std::int64_t>());
  EXPECT_EQ(bytes.at("reference weights (copy)"), bytes.at("policy weights"));  // its own NF4 7B
  EXPECT_EQ(bytes.at("value model weights"), bytes.at("reward model weights"));  // both from the reward config
  EXPECT_GT(bytes.at("KV cache"), 0);
  // Sharing the base is among the changes offered.
  bool share_offered = false;
  for (const auto& s : plan["suggestions"]) share_offered |= s["change"].get<std::string>().find("share_base") != std::string::npos;
  EXPECT_TRUE(share_offered) << plan["suggestions"].dump(2);

  // One NF4 base with three adapters and the adapter-off reference fits, with its breakdown.
  r = testing::run_alignkit({"plan", (testing::source_dir() / "recipes/examples/ppo-7b-qlora-t4-shared-base.toml").string()});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("reward adapter and head"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("value adapter and head"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("reward model weights"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("verdict: fits"), std::string::npos) << r.output;
}

TEST(PlanCommand, OnlineMethodNamesTheModelItLacks) {
  TempDir dir;
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--config-only", "--out", (dir.path() / "m").string()})
                .exit_code,
            0);
  auto r = testing::run_alignkit(
      {"plan", dir.write("r.toml", "[method]\nname = \"ppo\"\n[model]\npath = \"m\"\n").string(), "--gpu", "t4"});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("r.toml:2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("'ppo' needs a reward model"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[reward_model]"), std::string::npos) << r.output;
  r = testing::run_alignkit({"plan",
                             dir.write("s.toml", "[method]\nname = \"ppo\"\n[model]\npath = \"m\"\n"
                                                 "[reward_model]\nshare_base = true\n")
                                 .string(),
                             "--gpu", "t4"});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("s.toml:6"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("needs [lora]"), std::string::npos) << r.output;
  // The value model inherits [reward_model]'s quantization; it trains, so it needs adapters.
  r = testing::run_alignkit({"plan",
                             dir.write("q.toml", "[method]\nname = \"ppo\"\n[model]\npath = \"m\"\n"
                                                 "[reward_model]\npath = \"m\"\nquantization = \"nf4\"\n")
                                 .string(),
                             "--gpu", "t4"});
  EXPECT_EQ(r.exit_code, 3) << r.output;
  EXPECT_NE(r.output.find("q.toml:7"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("a quantized value model trains through adapters"), std::string::npos) << r.output;
}

TEST(PlanCommand, GpuAutoReadsTheCudaDeviceOrSaysThereIsNone) {
  TempDir dir;
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--config-only", "--out", (dir.path() / "m").string()})
                .exit_code,
            0);
  const auto recipe = dir.write("r.toml", "[method]\nname = \"dpo\"\n[model]\npath = \"m\"\n");
  if (compat::cuda_available()) {
    // With a device, the budget is its free memory.
    const auto r = testing::run_alignkit({"plan", recipe.string(), "--gpu", "auto", "--json"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    const auto plan = nlohmann::json::parse(r.stdout_text);
    EXPECT_EQ(plan["budget"]["name"], "cuda:0 (free)");
    EXPECT_GT(plan["budget"]["bytes"].get<std::int64_t>(), 0);
    return;
  }
  const auto r = testing::run_alignkit({"plan", recipe.string(), "--gpu", "auto"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("needs a CUDA device"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("name a preset"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace alignkit

namespace alignkit {
namespace {

TEST(TrainingLoop, QuantizedCopyReferenceIsLoadedQuantized) {
  // [reference] quantization = "nf4": the frozen copy is stored in NF4, so it no longer equals the
  // fp32 policy it was copied from, and DPO's first loss moves off log 2 (an unquantized copy gives
  // exactly log 2: policy = reference).
  TempDir dir;
  write_tokenizer_and_pairs(dir);
  double first_loss[2] = {0, 0};
  for (int quantized = 0; quantized < 2; ++quantized) {
    const auto recipe = dir.write(
        fmt::format("r{}.toml", quantized),
        fmt::format("[run]\noutput_dir = \"run{}\"\n[training]\nmax_steps = 1\nper_device_train_batch_size = 4\n"
                    "logging_steps = 1\n[method]\nname = \"dpo\"\n[model]\npath = \"{}\"\ntokenizer = \"tok\"\n"
                    "[reference]\nstrategy = \"copy\"\nquantization = \"{}\"\n[data]\nformat = \"jsonl\"\n"
                    "path = \"pairs.jsonl\"\n[output]\nsave_model = false\n",
                    quantized, kLlama.string(), quantized ? "nf4" : "none"));
    const auto r = testing::run_alignkit({"train", recipe.string()});
    ASSERT_EQ(r.exit_code, 0) << r.output;
    first_loss[quantized] = read_jsonl(dir.path() / fmt::format("run{}/metrics.jsonl", quantized)).at(0)["loss"];
  }
  EXPECT_NEAR(first_loss[0], std::log(2.0), 1e-6);
  EXPECT_GT(std::abs(first_loss[1] - std::log(2.0)), 1e-6);
}

TEST(TrainingLoop, TokenMeanLossesAccumulateLikeOneBigBatch) {
  // SFT's loss is a token mean: two micro-batches of one example each, with completions of 2 and
  // 7 tokens, must give the step the gradient of one batch of both (transformers'
  // num_items_in_batch), not the mean of the two means.
  TempDir dir;
  ASSERT_EQ(testing::run_alignkit({"init-model", "--preset", "tiny", "--out", (dir.path() / "m").string()}).exit_code, 0);
  dir.write("sft.jsonl", "{\"prompt_ids\": [1, 40, 41], \"completion_ids\": [50]}\n"
                         "{\"prompt_ids\": [1, 60], \"completion_ids\": [70, 71, 72, 73, 74, 75]}\n");
  const std::string base =
      "[training]\nmax_steps = 1\nlogging_steps = 1\n[method]\nname = \"sft\"\n[model]\npath = \"m\"\n"
      "[data]\nformat = \"jsonl\"\npath = \"sft.jsonl\"\nkind = \"sft\"\n[output]\nsave_model = false\n";
  const auto one = dir.write("one.toml", base + "[run]\noutput_dir = \"one\"\n");
  const auto two = dir.write("two.toml", base + "[run]\noutput_dir = \"two\"\n");
  auto r = testing::run_alignkit({"train", one.string(), "--set", "training.per_device_train_batch_size=2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = testing::run_alignkit({"train", two.string(), "--set", "training.per_device_train_batch_size=1", "--set",
                             "training.gradient_accumulation_steps=2"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto a = read_jsonl(dir.path() / "one/metrics.jsonl").at(0), b = read_jsonl(dir.path() / "two/metrics.jsonl").at(0);
  // The same fp32 sums split in two: equal to rounding.
  EXPECT_NEAR(a["loss"].get<double>(), b["loss"].get<double>(), 1e-6 * a["loss"].get<double>());
  EXPECT_NEAR(a["grad_norm"].get<double>(), b["grad_norm"].get<double>(), 1e-5 * a["grad_norm"].get<double>());
}

}  // namespace
}  // namespace alignkit
