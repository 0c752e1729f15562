// The run's metrics as files a person or a script reads: metrics.jsonl (one object per logged
// step, appended and flushed as it happens), metrics.csv (rewritten atomically with every
// column seen so far) and metrics.svg (the curves, rewritten with each log line).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace alignkit {

class MetricsLog {
 public:
  // A fresh log, or with `resume_step`, the existing one up to that step (a resumed run).
  // `plotted`: the curves metrics.svg shows, in order, those present (default: loss, eval_loss,
  // grad_norm, learning_rate; a loop passes plotted_metrics() of its method's declarations).
  explicit MetricsLog(const std::filesystem::path& dir, std::optional<std::int64_t> resume_step = std::nullopt,
                      std::vector<std::string> plotted = {});
  // Records one line: `step` plus named values (TRL's names, eval ones prefixed "eval_").
  void log(std::int64_t step, const std::map<std::string, double>& values);

 private:
  void write_csv() const;
  void write_plot() const;

  std::filesystem::path dir_;
  std::vector<std::string> plotted_;
  std::vector<std::pair<std::int64_t, std::map<std::string, double>>> rows_;
};

// An SVG of one small chart per series (step on x), for the names present. Exposed for tests.
std::string plot_svg(const std::vector<std::pair<std::int64_t, std::map<std::string, double>>>& rows,
                     const std::vector<std::string>& names);

}  // namespace alignkit
