// sft: supervised fine-tuning, the token-mean negative log-likelihood of the completions.
//
//   loss = -sum_{i, t} log pi(y_{i,t} | x_i, y_{i,<t}) / sum_i |y_i|
//
// The mean runs over every completion token of the batch, not over per-example means: this is
// the causal-LM loss transformers computes (cross-entropy with reduction "mean" over the labels
// that are not -100), which TRL 0.19.1's SFTTrainer.compute_loss returns. Only completion tokens
// count, as with TRL's completion_only_loss on prompt-completion data; the dataset decides what a
// completion is. No options (SFTConfig has none for the loss). TRL also logs mean_token_accuracy,
// which needs the per-token argmax and is not computed here.
#include <stdexcept>

#include <alignkit/loss.hpp>
#include <alignkit/recipe_section.hpp>

namespace {

class SftLoss final : public alignkit::Loss {
 public:
  alignkit::LossRequirements requirements() const override {
    alignkit::LossRequirements r;
    r.reference_model = false;
    r.examples = alignkit::ExampleLayout::single;
    r.reduction = alignkit::LogProbReduction::sum;
    r.token_mean = true;
    return r;
  }

  alignkit::LossResult compute(const alignkit::LossBatch& batch) override {
    const auto& logps = batch.completions.logps;
    const auto& counts = batch.completions.token_counts;
    if (!logps.defined() || !counts.defined() || logps.dim() != 1 || counts.numel() != logps.numel())
      throw std::invalid_argument("sft needs the summed log-probs and token counts of every completion");
    alignkit::LossResult result;
    result.loss = -logps.sum() / counts.to(logps.scalar_type()).sum();
    return result;
  }
};

std::unique_ptr<SftLoss> make(const alignkit::RecipeSection&) { return std::make_unique<SftLoss>(); }

}  // namespace

ALIGNKIT_PLUGIN(alignkit::plugin_info<make>(alignkit::PluginKind::loss, "sft", "1.0.0",
                                            "Supervised fine-tuning: token-mean NLL of the completions "
                                            "(TRL's SFTTrainer)"))
