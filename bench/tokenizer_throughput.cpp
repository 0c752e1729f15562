// Encode throughput of alignkit::Tokenizer.
//   tokenizer_throughput --write-text FILE [BYTES]    write the deterministic English text
//   tokenizer_throughput TOKENIZER_DIR TEXT_FILE       time encode(text) and print one line of JSON
// The first encode fills the word cache; the reported time is the best of the timed runs that
// follow (tokenizers.js is timed the same way by tests/js/tokenize_bench.mjs).
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>

#include <fmt/format.h>

#include <alignkit/diagnostic.hpp>
#include <alignkit/tokenizer.hpp>

#include "../tests/tokenizer/corpus.hpp"

int main(int argc, char** argv) {
  using Clock = std::chrono::steady_clock;
  try {
    if (argc >= 3 && std::string(argv[1]) == "--write-text") {
      const std::size_t bytes = argc >= 4 ? std::stoul(argv[3]) : (1u << 20);
      std::ofstream(argv[2], std::ios::binary) << alignkit::test::english_text(bytes);
      return 0;
    }
    if (argc != 3) {
      std::cerr << "usage: tokenizer_throughput TOKENIZER_DIR TEXT_FILE | --write-text FILE [BYTES]\n";
      return 2;
    }
    std::ifstream in(argv[2], std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    const std::string text = buffer.str();

    const auto load_start = Clock::now();
    const auto tokenizer = alignkit::Tokenizer::from_directory(argv[1]);
    const double load_seconds = std::chrono::duration<double>(Clock::now() - load_start).count();

    auto time_encode = [&](std::size_t& tokens) {
      const auto start = Clock::now();
      tokens = tokenizer.encode(text).size();
      return std::chrono::duration<double>(Clock::now() - start).count();
    };
    std::size_t tokens = 0;
    const double cold = time_encode(tokens);
    double best = 1e9;
    for (int run = 0; run < 5; ++run) best = std::min(best, time_encode(tokens));
    const double megabytes = static_cast<double>(text.size()) / 1e6;
    std::cout << fmt::format(
        "{{\"bytes\": {}, \"tokens\": {}, \"load_seconds\": {:.3f}, \"cold_seconds\": {:.4f}, \"seconds\": {:.4f}, "
        "\"mb_per_s\": {:.2f}, \"cold_mb_per_s\": {:.2f}}}\n",
        text.size(), tokens, load_seconds, cold, best, megabytes / best, megabytes / cold);
    return 0;
  } catch (const alignkit::DiagnosticError& e) {
    std::cerr << e.format();
    return 1;
  }
}
