// libFuzzer target for tokenizer.json: the input is a tokenizer.json, then a NUL byte and a text.
// Loading either succeeds or is refused with a DiagnosticError; a loaded tokenizer encodes the
// text, decodes the ids back and decodes ids around its vocabulary without throwing or crashing.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <alignkit/diagnostic.hpp>
#include <alignkit/tokenizer.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto cut = input.find('\0');
  const auto json = input.substr(0, cut);
  const auto text = cut == std::string_view::npos ? std::string_view("Hello world, 123!") : input.substr(cut + 1);
  try {
    const auto tokenizer = alignkit::Tokenizer::from_json(json, "fuzz/tokenizer.json");
    const auto ids = tokenizer.encode(text);
    (void)tokenizer.decode(ids);
    (void)tokenizer.decode(ids, /*skip_special_tokens=*/true);
    (void)tokenizer.tokenize(text);
    const std::vector<std::int64_t> edges = {-1, 0, tokenizer.vocab_size() - 1, tokenizer.vocab_size()};
    (void)tokenizer.decode(edges);
  } catch (const alignkit::DiagnosticError&) {
  }
  return 0;
}
