// The parity corpus: strings generated from a fixed seed that stress what tokenizers get wrong
// (Unicode classes, whitespace runs, contractions, special-token strings, invalid UTF-8, ...).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace alignkit::test {

// `count` byte strings, the same on every run and platform. Some are not valid UTF-8.
std::vector<std::string> tokenizer_corpus(std::size_t count);

// About `bytes` of English prose (deterministic), for the throughput bench and long-input tests.
std::string english_text(std::size_t bytes);

}  // namespace alignkit::test
