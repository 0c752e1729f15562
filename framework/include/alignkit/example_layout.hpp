// How a method's training examples are laid out: what a Dataset yields and a Loss consumes.
#pragma once

namespace alignkit {

enum class ExampleLayout {
  single,       // one completion per prompt, all desirable (SFT)
  paired,       // prompt, chosen, rejected (DPO, IPO, ORPO, SimPO, CPO)
  unpaired,     // prompt, completion, desirable-or-not label (KTO)
  prompt_only,  // prompts; completions are generated during training (online methods)
};

}  // namespace alignkit
