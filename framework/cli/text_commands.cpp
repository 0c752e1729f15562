// Commands on text: `alignkit tokenize` (text <-> ids with a model's tokenizer.json) and
// `alignkit chat-format` (a conversation through the model's own chat template, then its ids).
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <alignkit/chat_template.hpp>
#include <alignkit/diagnostic.hpp>
#include <alignkit/json_file.hpp>
#include <alignkit/tokenizer.hpp>

#include "command_line.hpp"
#include "commands.hpp"

namespace alignkit::cli {

namespace fs = std::filesystem;

namespace {

std::string read_all(const std::string& path) {
  if (path == "-") {
    std::ostringstream buffer;
    buffer << std::cin.rdbuf();
    return buffer.str();
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_file_error(path, "cannot open the file for reading");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The lines of a file, without their "\n" (a final newline does not start an empty line).
std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    if (end == std::string::npos) {
      lines.push_back(text.substr(start));
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

// Ids written as a JSON array ("[1, 2]") or as integers separated by spaces or commas; `source`
// is the file and line they came from.
std::vector<int64_t> parse_ids(const std::string& text, const JsonSource& source) {
  const std::string where = source.first_line > 0 ? fmt::format("{}:{}", source.file, source.first_line) : source.file;
  std::string trimmed = text;
  const auto first = trimmed.find_first_not_of(" \t\r");
  if (first != std::string::npos && trimmed[first] == '[') {
    const auto ids = parse_json(trimmed, source);
    try {
      return ids.get<std::vector<int64_t>>();
    } catch (const nlohmann::json::exception& e) {
      throw DiagnosticError(make_error(fmt::format("{}: not a JSON array of integers: {}", where, e.what())));
    }
  }
  std::vector<int64_t> ids;
  for (char& c : trimmed)
    if (c == ',') c = ' ';
  std::istringstream in(trimmed);
  std::string word;
  while (in >> word) {
    try {
      std::size_t used = 0;
      ids.push_back(std::stoll(word, &used));
      if (used != word.size()) throw std::invalid_argument(word);
    } catch (const std::exception&) {
      throw DiagnosticError(make_error(fmt::format("{}: `{}` is not a token id", where, word),
                                       "give ids as integers, e.g. 9906 1917 or [9906, 1917]"));
    }
  }
  return ids;
}

}  // namespace

int run_tokenize(const Args& args) {
  CommandLine command_line(
      "alignkit tokenize --tokenizer DIR (--text T | --file F) [--json] [--decode] [--no-special-tokens]\n\n"
      "Encodes text with DIR/tokenizer.json (as Hugging Face's tokenizers do) and prints the ids: with\n"
      "--text, separated by spaces; with --file (- for stdin), one JSON array per input line. --json prints\n"
      "one object per input with the text, ids and token strings. --decode reads ids instead (a JSON\n"
      "array or integers separated by spaces or commas) and prints the text. --no-special-tokens: encode\n"
      "without the post-processor's special tokens (e.g. Llama 2's <s>); decode dropping special tokens.",
      CommandLine::no_recipe);
  command_line.add()("tokenizer", po::value<std::string>()->required(), "Folder with tokenizer.json")(
      "text", po::value<std::string>(), "The text (or ids, with --decode)")(
      "file", po::value<std::string>(), "A file of inputs, one per line (- for stdin)")(
      "json", "Print JSON objects")("decode", "Turn ids into text")(
      "no-special-tokens", "Encode without special tokens; decode skipping them");
  if (!command_line.parse(args)) return kOk;
  if (command_line.has("text") == command_line.has("file")) throw UsageError("give exactly one of --text and --file");
  const bool json = command_line.has("json");
  const bool decode = command_line.has("decode");
  const bool special = !command_line.has("no-special-tokens");
  const auto tokenizer = Tokenizer::from_directory(command_line.get<std::string>("tokenizer"));

  const bool from_file = command_line.has("file");
  const std::vector<std::string> inputs =
      from_file ? lines_of(read_all(command_line.get<std::string>("file"))) : std::vector{command_line.get<std::string>("text")};
  const std::string source = from_file ? command_line.get<std::string>("file") : "--text";
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const std::string& input = inputs[i];
    if (decode) {
      const auto ids = parse_ids(input, JsonSource{source, from_file ? static_cast<int>(i + 1) : 0});
      const std::string text = tokenizer.decode(ids, !special);
      if (json) std::cout << nlohmann::json{{"ids", ids}, {"text", text}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      else std::cout << text << "\n";
      continue;
    }
    const auto ids = tokenizer.encode(input, special);
    if (json) {
      nlohmann::json tokens = nlohmann::json::array();
      for (const auto id : ids) tokens.push_back(tokenizer.id_to_token(id).value_or(""));
      std::cout << nlohmann::json{{"text", input}, {"ids", ids}, {"tokens", tokens}}.dump(
                       -1, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
    } else if (from_file) {
      std::cout << nlohmann::json(ids).dump() << "\n";
    } else {
      std::cout << fmt::format("{}\n", fmt::join(ids, " "));
    }
  }
  return kOk;
}

int run_chat_format(const Args& args) {
  CommandLine command_line(
      "alignkit chat-format --tokenizer DIR --messages F.json [--add-generation-prompt] [--json]\n\n"
      "Renders a conversation with the model's own chat template (tokenizer_config.json's chat_template,\n"
      "or chat_template.jinja) and prints the text, then its ids (encoded without adding special tokens,\n"
      "as transformers' apply_chat_template does). F.json is a list of {\"role\", \"content\"} messages, or an\n"
      "object with \"messages\" and optionally \"tools\".",
      CommandLine::no_recipe);
  command_line.add()("tokenizer", po::value<std::string>()->required(), "Folder with tokenizer.json")(
      "messages", po::value<std::string>()->required(), "The conversation (JSON)")(
      "add-generation-prompt", "End with the start of an assistant turn")("json", "Print {\"text\", \"ids\"}");
  if (!command_line.parse(args)) return kOk;
  const fs::path dir = command_line.get<std::string>("tokenizer");
  const auto tokenizer = Tokenizer::from_directory(dir);
  if (!tokenizer.chat_template())
    throw_file_error((dir / "tokenizer_config.json").string(), "this tokenizer has no chat template",
                     "chat templates live in tokenizer_config.json (`chat_template`) or chat_template.jinja");

  // Ordered JSON keeps the keys of messages and tool schemas in the file's order, as
  // Hugging Face's `tojson` prints them.
  const std::string messages_path = command_line.get<std::string>("messages");
  const auto input = parse_ordered_json(read_all(messages_path), {messages_path});
  nlohmann::ordered_json context = nlohmann::ordered_json::object();
  if (input.is_array()) {
    context["messages"] = input;
  } else if (input.is_object() && input.contains("messages")) {
    context = input;
  } else {
    throw_file_error(messages_path, "expected a list of messages or an object with \"messages\"");
  }
  context["add_generation_prompt"] = command_line.has("add-generation-prompt");
  context["bos_token"] = tokenizer.bos_token().value_or("");
  context["eos_token"] = tokenizer.eos_token().value_or("");

  const ChatTemplate chat_template(*tokenizer.chat_template(), (dir / "tokenizer_config.json").string() + ": chat_template");
  const std::string text = chat_template.render_ordered(context);
  const auto ids = tokenizer.encode(text, false);
  if (command_line.has("json")) {
    std::cout << nlohmann::json{{"text", text}, {"ids", ids}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << text << (text.empty() || text.back() != '\n' ? "\n" : "") << fmt::format("{}\n", fmt::join(ids, " "));
  }
  return kOk;
}

}  // namespace alignkit::cli
