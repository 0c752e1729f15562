#include "corpus.hpp"

#include "../../framework/text/tokenizer/utf8.hpp"

#include <cctype>
#include <cstdint>
#include <iterator>
#include <string_view>

namespace alignkit::test {

namespace {

// A small deterministic generator (splitmix64): std::uniform_int_distribution differs between
// standard libraries, this does not.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }
  bool chance(int percent) { return below(100) < static_cast<std::size_t>(percent); }
  template <typename T, std::size_t N>
  const T& pick(const T (&items)[N]) { return items[below(N)]; }

 private:
  uint64_t state_;
};

// Code point ranges assigned long ago (Unicode 6.1 or earlier), so that PCRE2's and ICU's Unicode
// tables agree with node's on their properties.
struct Range {
  char32_t first, last;
};
constexpr Range kLatin[] = {{'a', 'z'}, {'A', 'Z'}, {0xC0, 0xFF}, {0x100, 0x17F}, {0x180, 0x24F}};
constexpr Range kGreekCyrillic[] = {{0x391, 0x3A9}, {0x3B1, 0x3C9}, {0x410, 0x44F}, {0x400, 0x40F}};
constexpr Range kCjk[] = {{0x4E00, 0x9FA5}, {0x3041, 0x3096}, {0x30A1, 0x30FA}, {0xAC00, 0xD7A3}, {0x3000, 0x303F}, {0xFF01, 0xFF5E}};
constexpr Range kRtl[] = {{0x5D0, 0x5EA}, {0x621, 0x63A}, {0x641, 0x64A}, {0x64B, 0x652}, {0x660, 0x669}, {0x6F0, 0x6F9}};
constexpr Range kIndic[] = {{0x905, 0x939}, {0x93E, 0x94D}, {0x966, 0x96F}, {0xE01, 0xE30}, {0xE50, 0xE59}};
constexpr Range kMarks[] = {{0x300, 0x36F}, {0x483, 0x487}, {0x20D0, 0x20F0}};
constexpr Range kEmoji[] = {{0x1F600, 0x1F64F}, {0x1F300, 0x1F320}, {0x1F680, 0x1F6C5}, {0x2600, 0x26FF}, {0x2700, 0x27BF}};
constexpr Range kControls[] = {{0x0, 0x8}, {0xE, 0x1F}, {0x7F, 0x9F}};
constexpr Range kSymbols[] = {{0x2190, 0x21FF}, {0x2200, 0x22FF}, {0x20A0, 0x20B5}, {0x2150, 0x2182}, {0x1D400, 0x1D433}};

constexpr char32_t kWhitespace[] = {' ', ' ', ' ', '\t', '\n', '\r', 0x0B, 0x0C, 0xA0, 0x85, 0x1680, 0x2000, 0x2003,
                                    0x2009, 0x200A, 0x200B, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF, 0x180E};
constexpr char32_t kOddLetters[] = {0x17F /* long s */, 0x212A /* Kelvin */, 0x130 /* I with dot */, 0x131, 0x3C2,
                                    0x1E9E, 0xDF, 0xFB01, 0x2126, 0x1F1, 0x2460, 0xB2, 0xB3, 0xB9, 0xBC, 0xFFFD, 0x2581};

constexpr std::string_view kWords[] = {
    "the", "of", "and", "to", "in", "is", "you", "that", "it", "he", "was", "for", "on", "are", "as", "with",
    "his", "they", "I", "at", "be", "this", "have", "from", "or", "one", "had", "by", "word", "but", "not",
    "what", "all", "were", "we", "when", "your", "can", "said", "there", "use", "an", "each", "which", "she",
    "do", "how", "their", "if", "will", "up", "other", "about", "out", "many", "then", "them", "these", "so",
    "tokenizer", "alignment", "preference", "Hugging", "Face", "transformers", "DPO", "LLaMA", "Qwen",
    "antidisestablishmentarianism", "naïve", "café", "résumé", "coöperate", "HTTPServer", "iPhone", "x86_64"};
constexpr std::string_view kContractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE",
                                              "'VE", "'M", "'LL", "'D", "'Ll", "'rE", "n't", "N'T", "'", "''"};
constexpr std::string_view kSpecialTokens[] = {
    "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>",
    "<|reserved_special_token_3|>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>",
    "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<s>", "</s>", "<unk>", "<|im_start", "im_end|>", "<|",
    "|>", "<0x41>", "<0xFF>", "<0x0A>", "< s>", "<S>", "<|IM_START|>"};
constexpr std::string_view kPunctuation[] = {"!", "?", ".", ",", ";", ":", "...", "!!!", "?!", "--", "—", "–",
                                             "(", ")", "[", "]", "{", "}", "\"", "“", "”", "«", "»", "#", "$",
                                             "%", "&", "*", "+", "=", "/", "\\", "|", "~", "`", "^", "_", "@", "<", ">"};
constexpr std::string_view kEmojiSequences[] = {
    "👨‍👩‍👧‍👦", "👍🏽", "🇺🇸", "🇯🇵", "1️⃣", "❤️", "🏳️‍🌈", "👩🏿‍💻", "🧑‍🤝‍🧑", "✌🏻", "☺️", "#️⃣"};
constexpr std::string_view kInvalidBytes[] = {
    "\xFF", "\xFE", "\xC0\x80", "\xC3", "\xE2\x82", "\xF0\x9F\x98", "\xED\xA0\x80", "\x80", "\xBF\xBF",
    "\xF8\x88\x80\x80\x80", "\xF4\x90\x80\x80", "\xE0\x80\xAF", "\xC3\x28", "\xEF\xBB\xBF"};
constexpr std::string_view kSentences[] = {
    "The quick brown fox jumps over the lazy dog.",
    "Direct Preference Optimization fine-tunes a language model on pairs of chosen and rejected answers.",
    "It's not what you'd expect: they've said we'll see, and I'm sure you're right.",
    "In 1969, 3 astronauts flew 384,400 km to the Moon; 2 of them walked on it.",
    "Prices rose 12.5% year-over-year (from $1,234.56 to $1,388.88).",
    "Email me at jane.doe@example.com or visit https://huggingface.co/docs?page=2#top.",
    "def f(x):\n    return x ** 2  # square\n\nprint(f(12))\n",
    "\"Hello,\" she said, \"how are you?\" -- \"Fine, thanks!\"",
    "E = mc² and ½ + ¼ = ¾; x₁ + x₂ ≤ 10.",
    "Ça va? Größe, façade, Œuvre, smörgåsbord, jalapeño.",
    "東京は日本の首都です。今日はいい天気ですね。",
    "안녕하세요, 세계! 저는 학생입니다.",
    "Привет, мир! Как дела? Ελληνικά: καλημέρα κόσμε, ΟΔΥΣΣΕΥΣ.",
    "مرحبا بالعالم! هذا نص عربي ١٢٣.",
    "שלום עולם, זה טקסט בעברית.",
    "नमस्ते दुनिया, यह हिन्दी पाठ है। १२३",
    "สวัสดีชาวโลก ภาษาไทย ๑๒๓",
    "Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇺🇸 — done.",
    "Tabs\tand\tnewlines\nmixed\r\nwith CRLF\r\n\r\nand   multiple    spaces.",
    "ALL CAPS SENTENCE WITH SHOUTING AND IT'S LOUD, ISN'T IT? YOU'LL SEE!",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>",
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are helpful.<|eot_id|>",
    "<s>[INST] Hello there [/INST] General Kenobi!</s>",
};

void append_range_char(Random& random, std::string& out, const Range* ranges, std::size_t count) {
  const Range& r = ranges[random.below(count)];
  tokenizer::append_code_point(out, r.first + static_cast<char32_t>(random.below(r.last - r.first + 1)));
}

template <std::size_t N>
void append_run(Random& random, std::string& out, const Range (&ranges)[N], std::size_t max_length) {
  const std::size_t n = 1 + random.below(max_length);
  for (std::size_t i = 0; i < n; ++i) append_range_char(random, out, ranges, N);
}

// One segment of a generated string; the kinds follow the issue's list.
void append_segment(Random& random, std::string& out) {
  switch (random.below(24)) {
    case 0: case 1: case 2: {  // English words with spaces and punctuation
      const std::size_t n = 1 + random.below(12);
      for (std::size_t i = 0; i < n; ++i) {
        if (i) out += random.chance(85) ? " " : random.pick(kPunctuation);
        std::string word(random.pick(kWords));
        if (random.chance(15)) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
        if (random.chance(5)) for (char& c : word) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        out += word;
        if (random.chance(15)) out += random.pick(kContractions);
      }
      return;
    }
    case 3: out += random.pick(kSentences); return;
    case 4: {  // whitespace runs, including long ones
      const std::size_t n = 1 + (random.chance(20) ? random.below(300) : random.below(6));
      const char32_t ws = random.pick(kWhitespace);
      for (std::size_t i = 0; i < n; ++i) tokenizer::append_code_point(out, random.chance(80) ? ws : random.pick(kWhitespace));
      return;
    }
    case 5: {  // digit runs
      const std::size_t n = 1 + (random.chance(20) ? random.below(200) : random.below(8));
      for (std::size_t i = 0; i < n; ++i) out += static_cast<char>('0' + random.below(10));
      return;
    }
    case 6: out += random.pick(kContractions); return;
    case 7: {  // punctuation runs
      const std::size_t n = 1 + random.below(10);
      for (std::size_t i = 0; i < n; ++i) out += random.pick(kPunctuation);
      return;
    }
    case 8: out += random.pick(kSpecialTokens); return;
    case 9: append_run(random, out, kCjk, 12); return;
    case 10: append_run(random, out, kRtl, 12); return;
    case 11: append_run(random, out, kIndic, 12); return;
    case 12: {  // letters followed by combining marks (NFC composes some)
      const std::size_t n = 1 + random.below(6);
      for (std::size_t i = 0; i < n; ++i) {
        append_range_char(random, out, kLatin, std::size(kLatin));
        const std::size_t marks = random.below(4);
        for (std::size_t m = 0; m < marks; ++m) append_range_char(random, out, kMarks, std::size(kMarks));
      }
      return;
    }
    case 13: {
      const std::size_t n = 1 + random.below(5);
      for (std::size_t i = 0; i < n; ++i) {
        if (random.chance(40)) out += random.pick(kEmojiSequences);
        else append_range_char(random, out, kEmoji, std::size(kEmoji));
      }
      return;
    }
    case 14: append_run(random, out, kControls, 4); return;
    case 15: append_run(random, out, kLatin, 10); return;
    case 16: append_run(random, out, kGreekCyrillic, 10); return;
    case 17: append_run(random, out, kSymbols, 6); return;
    case 18: tokenizer::append_code_point(out, random.pick(kOddLetters)); return;
    case 19: out += random.pick(kInvalidBytes); return;
    case 20: {  // a contraction after odd letters: (?i:'s) must fold ASCII only
      out += "'";
      tokenizer::append_code_point(out, random.pick(kOddLetters));
      return;
    }
    case 21: {  // newline runs
      const std::size_t n = 1 + random.below(random.chance(20) ? 80 : 5);
      for (std::size_t i = 0; i < n; ++i) out += random.chance(70) ? "\n" : (random.chance(50) ? "\r\n" : " \n");
      return;
    }
    case 22: {  // tabs and indentation
      const std::size_t n = 1 + random.below(12);
      for (std::size_t i = 0; i < n; ++i) out += random.chance(60) ? "\t" : "    ";
      return;
    }
    default: {  // anything from all pools, single characters
      const std::size_t n = 1 + random.below(10);
      for (std::size_t i = 0; i < n; ++i) {
        switch (random.below(6)) {
          case 0: append_range_char(random, out, kCjk, std::size(kCjk)); break;
          case 1: append_range_char(random, out, kMarks, std::size(kMarks)); break;
          case 2: tokenizer::append_code_point(out, random.pick(kWhitespace)); break;
          case 3: out += random.pick(kPunctuation); break;
          case 4: append_range_char(random, out, kEmoji, std::size(kEmoji)); break;
          default: out += static_cast<char>('a' + random.below(26)); break;
        }
      }
      return;
    }
  }
}

}  // namespace

std::vector<std::string> tokenizer_corpus(std::size_t count) {
  Random random(20240605);
  std::vector<std::string> corpus;
  corpus.reserve(count);
  // Fixed edge cases first.
  for (std::string_view s : {"", " ", "  ", "\n", "a", "'s", "'S", "'ſ", " 's", "   leading", "trailing   ",
                             "  both  ", "\xE2\x96\x81", "\xE2\x96\x81\xE2\x96\x81x", "<s>", "</s>", "<s></s>",
                             " <s> ", "<|im_start|><|im_end|>", "<|begin_of_text|>", "x<|endoftext|>y", "<0x41>"})
    corpus.emplace_back(s);
  for (std::string_view s : kSentences) corpus.emplace_back(s);
  for (std::string_view s : kInvalidBytes) corpus.emplace_back(s);
  while (corpus.size() < count) {
    std::string text;
    if (random.chance(10)) text += std::string(1 + random.below(3), ' ');
    const std::size_t segments = 1 + random.below(random.chance(10) ? 40 : 6);
    for (std::size_t i = 0; i < segments; ++i) {
      if (i && random.chance(50)) text += ' ';
      append_segment(random, text);
    }
    if (random.chance(10)) text += std::string(1 + random.below(3), random.chance(50) ? ' ' : '\n');
    corpus.push_back(std::move(text));
  }
  corpus.resize(count);
  return corpus;
}

std::string english_text(std::size_t bytes) {
  Random random(7);
  std::string text;
  text.reserve(bytes + 256);
  while (text.size() < bytes) {
    const std::size_t sentences = 3 + random.below(5);
    for (std::size_t s = 0; s < sentences; ++s) {
      if (random.chance(25)) {
        const std::string_view sentence = kSentences[random.below(10)];  // the English ones
        text += sentence;
      } else {
        const std::size_t words = 5 + random.below(20);
        for (std::size_t w = 0; w < words; ++w) {
          std::string word(kWords[random.below(std::size(kWords) - 13)]);
          if (w == 0) word[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(word[0])));
          if (w) text += random.chance(8) ? ", " : " ";
          text += word;
          if (random.chance(4)) text += kContractions[random.below(7)];
        }
        text += random.chance(85) ? "." : (random.chance(50) ? "?" : "!");
      }
      text += ' ';
    }
    text += "\n\n";
  }
  text.resize(bytes);
  while (!text.empty() && static_cast<unsigned char>(text.back()) >= 0x80) text.pop_back();  // whole characters
  return text;
}

}  // namespace alignkit::test
