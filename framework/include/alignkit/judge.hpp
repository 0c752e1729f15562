// Judge: held-out prompts and a programmatic score for what a model generates for them.
//
// `alignkit eval` renders each prompt as training renders prompts (the chat template with
// add_generation_prompt when conversational), generates greedily, decodes, and asks the judge
// for a score per completion; it reports the mean per category and overall. A judge belongs to
// a task with a ground truth (a generated dataset such as task_api): its prompts are never in
// that task's training data.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <alignkit/dataset.hpp>
#include <alignkit/plugin.hpp>

namespace alignkit {

class Judge : public PluginObject {
 public:
  ~Judge() override;
  // Held-out prompts (never in the training data of the same task) to generate completions for;
  // only each Example's prompt is read. Called once; the indices below refer to this list.
  virtual std::vector<Example> prompts() = 0;
  // The category of prompts()[i] for the report (e.g. "create", "private"); "" for none.
  virtual std::string category(std::size_t prompt_index) const { (void)prompt_index; return {}; }
  // A score in [0, 1] for one completion (decoded text, special tokens skipped) of prompts()[i].
  virtual double score(std::size_t prompt_index, const std::string& completion) = 0;
};

}  // namespace alignkit
