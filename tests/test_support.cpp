#include "test_support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <random>

#include <fmt/format.h>
#include <gtest/gtest.h>

namespace alignkit::testing {

namespace fs = std::filesystem;

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() / fmt::format("alignkit-test-{}-{:x}", ::getpid(), rd());
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

fs::path TempDir::write(const std::string& name, const std::string& content) const {
  const fs::path file = path_ / name;
  fs::create_directories(file.parent_path());
  std::ofstream out(file, std::ios::binary);
  out << content;
  return file;
}

namespace {

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string read_all(FILE* f) {
  std::string out;
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), f)) > 0) out.append(buffer.data(), n);
  return out;
}

}  // namespace

CommandResult run_alignkit(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  std::vector<std::string> argv = {ALIGNKIT_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, env);
}

CommandResult run_command(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  TempDir scratch;
  std::string command = "env";
  for (const auto& e : env) command += " " + shell_quote(e);
  for (const auto& a : argv) command += " " + shell_quote(a);
  const auto stderr_file = scratch.path() / "stderr";
  command += " 2>" + shell_quote(stderr_file.string()) + " </dev/null";
  CommandResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  result.stdout_text = read_all(pipe);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream err(stderr_file);
  std::string stderr_text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  result.output = result.stdout_text + stderr_text;
  return result;
}

fs::path copy_model(const TempDir& dir, const char* name) {
  static int copies = 0;  // a fresh folder for every copy, so one test may damage a model twice
  const fs::path target = dir.path() / (std::string(name) + "-" + std::to_string(++copies));
  fs::copy(source_dir() / "tests/fixtures/oracle" / name, target);
  for (const auto& entry : fs::directory_iterator(target))
    fs::permissions(entry.path(), fs::perms::owner_write, fs::perm_options::add);
  return target;
}

void edit_config(const fs::path& dir, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json config;
  {
    std::ifstream in(dir / "config.json");
    config = nlohmann::json::parse(in);
  }
  edit(config);
  std::ofstream(dir / "config.json") << config.dump();
}

void perturb_adapters(torch::nn::Module& model, std::uint64_t seed) {
  torch::manual_seed(seed);
  torch::NoGradGuard no_grad;
  for (auto& item : model.named_parameters())
    if (item.key().find("lora_B") != std::string::npos) item.value().normal_(0, 0.05);
}

std::string describe(const DiagnosticError& e) { return e.format(); }

std::vector<nlohmann::json> read_jsonl(const fs::path& file) {
  std::ifstream in(file);
  std::vector<nlohmann::json> rows;
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

void expect_same_metrics(const fs::path& expected, const fs::path& actual) {
  const auto a = read_jsonl(expected), b = read_jsonl(actual);
  ASSERT_EQ(a.size(), b.size()) << actual;
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "line " << i + 1 << " of " << actual;
}

std::string token_id_pairs(int shift) {
  std::string out;
  for (int i = 0; i < 8; ++i)
    out += fmt::format("{{\"prompt_ids\": [1, {}, {}], \"chosen_ids\": [{}, {}, {}], \"rejected_ids\": [{}, {}]}}\n",
                       10 + i + shift, 30 + 2 * i, 60 + i, 61 + i, 62 + i, 120 + 3 * i, 121 + i);
  return out;
}

RecipeFixture::RecipeFixture(const std::string& text, const std::vector<fs::path>& plugins) {
  for (const auto& p : plugins) registry.load(p);
  recipe = validate_recipe(load_recipe(dir.write("recipe.toml", text)), registry, {false});
}

fs::path source_dir() { return ALIGNKIT_SOURCE_DIR; }
fs::path plugin_dir() { return ALIGNKIT_PLUGIN_DIR; }
fs::path fixture_plugin_dir() { return FIXTURE_PLUGIN_DIR; }
fs::path fixture_plugin(const std::string& variant) {
  return fixture_plugin_dir() / fmt::format("libfixture_{}.so", variant);
}

}  // namespace alignkit::testing
