// Step metrics: the method's metrics averaged over a logging window as the method declares
// (alignkit/metrics.hpp), the host's own (loss, grad_norm, learning_rate, epoch), and the
// progress line. Both loops log through these; neither names a method's metric.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include <alignkit/metrics.hpp>

namespace alignkit {

// Running sums of named values over a logging window (or an evaluation).
class MetricWindowSums {
 public:
  void add(const std::string& name, double value);
  // Per-example tensors or scalars: each adds its mean.
  void add(const std::vector<std::pair<std::string, torch::Tensor>>& metrics);
  // The window's values under `specs` (undeclared metrics: the mean), names prefixed.
  std::map<std::string, double> values(const std::vector<MetricSpec>& specs, const std::string& prefix = "") const;
  void clear() { sums_.clear(); }
  bool empty() const { return sums_.empty(); }

  // The running sums, for a checkpoint taken in the middle of a logging window.
  nlohmann::json to_json() const;
  void from_json(const nlohmann::json& in);

 private:
  std::map<std::string, std::pair<double, std::int64_t>> sums_;
};

// The logging window of the loop: the method's metrics and the host's step values since the
// last metrics line. Saved in checkpoints, so a resumed run logs the same lines.
struct StepWindow {
  MetricWindowSums metrics;
  double loss = 0;          // sum of the steps' losses
  std::int64_t steps = 0;   // optimizer steps in the window
  std::int64_t tokens = 0;  // tokens the policy saw in it

  void clear();
  nlohmann::json to_json() const;
  void from_json(const nlohmann::json& in);
};

// The curves metrics.svg shows for a method: loss and eval_loss, the method's progress metrics
// and their eval_ forms, then grad_norm and learning_rate.
std::vector<std::string> plotted_metrics(const std::vector<MetricSpec>& specs);

// "step 10/100 | loss 0.69 | <the method's progress metrics> | grad_norm .. | learning_rate .. |
// eval_loss .. | <their eval_ forms> | 812 tok/s | ETA 1:02"
std::string progress_line(std::int64_t step, std::int64_t total, const std::map<std::string, double>& values,
                          const std::vector<MetricSpec>& specs, double tokens_per_second, double eta_seconds);

// h:mm:ss, or m:ss under an hour.
std::string format_duration(double seconds);

}  // namespace alignkit
