// Dataset: reads one data format into examples of text, conversations or token ids.
//
// A dataset plugin knows a file format (pairwise JSONL, HH-RLHF's implicit prompts, KTO's
// unpaired records, ...). Tokenisation, chat templates and truncation are the host's, shared by
// every format, so a prompt/completion boundary is handled the same way whatever the source.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <alignkit/diagnostic.hpp>
#include <alignkit/example_layout.hpp>
#include <alignkit/plugin.hpp>

namespace alignkit {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant", ...
  std::string content;
};

// One side of an example, in whichever form the file gave it.
struct Segment {
  enum class Form { empty, text, messages, token_ids };
  Form form = Form::empty;
  std::string text;
  std::vector<ChatMessage> messages;
  std::vector<std::int64_t> token_ids;
};

struct Example {
  Segment prompt;
  Segment chosen, rejected;  // paired layout
  Segment completion;        // single and unpaired layouts
  bool desirable = true;     // unpaired layout
  SourceLocation where;      // file and line the example came from, for error reports
};

// How a dataset reports a record it cannot read: the recipe chooses skip-and-count or fail.
class ExampleSink {
 public:
  virtual ~ExampleSink();
  virtual void add(Example example) = 0;
  // A malformed record; the host either counts it or stops with it, per the recipe.
  virtual void reject(Diagnostic problem) = 0;
};

class Dataset : public PluginObject {
 public:
  ~Dataset() override;
  virtual ExampleLayout layout() const = 0;
  // Reads every example from the files the plugin's options name.
  virtual void read(ExampleSink& sink) = 0;
};

}  // namespace alignkit
