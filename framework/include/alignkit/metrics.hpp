// What a method declares about its metrics: how each is averaged over a logging window and which
// ones the progress line shows. The host knows no metric by name beyond its own (loss, grad_norm,
// learning_rate, epoch); it logs every metric a method reports and follows these declarations.
#pragma once

#include <string>
#include <vector>

namespace alignkit {

enum class MetricWindow {
  // The mean of the values reported over the window (every undeclared metric is averaged so).
  mean,
  // sum(a) / sum(b) over the window, of two reported values; omitted while sum(b) is 0. The two
  // inputs are not logged themselves. KTO's rewards/chosen = sum(rewards/chosen_sum) /
  // sum(count/chosen), as TRL's KTOTrainer.log computes it.
  ratio,
  // a - b of two metrics' window values, when the method did not report it itself and both exist.
  difference,
};

enum class MetricProgress {
  none,            // logged only
  train,           // also on the progress line of training steps
  train_and_eval,  // also on the progress line, and its eval_ form after an evaluation
};

struct MetricSpec {
  std::string name;  // as logged (an evaluation adds "eval_")
  MetricWindow window = MetricWindow::mean;
  std::string a, b;  // the operands of ratio and difference
  MetricProgress progress = MetricProgress::none;
};

}  // namespace alignkit
