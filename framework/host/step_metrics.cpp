#include "step_metrics.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace alignkit {

void MetricWindowSums::add(const std::string& name, double value) {
  auto& [sum, count] = sums_[name];
  sum += value;
  ++count;
}

void MetricWindowSums::add(const std::vector<std::pair<std::string, torch::Tensor>>& metrics) {
  for (const auto& [name, tensor] : metrics)
    if (tensor.defined() && tensor.numel() > 0) add(name, tensor.detach().to(torch::kFloat64).mean().item<double>());
}

std::map<std::string, double> MetricWindowSums::values(const std::vector<MetricSpec>& specs,
                                                       const std::string& prefix) const {
  std::map<std::string, double> means;
  for (const auto& [name, v] : sums_) means[name] = v.first / static_cast<double>(v.second);
  // Ratios first (their inputs are not logged), then plain means, then differences of either.
  std::map<std::string, double> out;
  std::vector<std::string> inputs;
  for (const auto& spec : specs) {
    if (spec.window != MetricWindow::ratio) continue;
    inputs.push_back(spec.a), inputs.push_back(spec.b);
    const auto a = means.find(spec.a), b = means.find(spec.b);
    // The means' ratio is the sums' ratio: both count one value per micro-batch.
    if (a != means.end() && b != means.end() && b->second > 0) out[spec.name] = a->second / b->second;
  }
  for (const auto& [name, value] : means)
    if (std::find(inputs.begin(), inputs.end(), name) == inputs.end() && !out.count(name)) out[name] = value;
  for (const auto& spec : specs) {
    if (spec.window != MetricWindow::difference || out.count(spec.name)) continue;
    const auto a = out.find(spec.a), b = out.find(spec.b);
    if (a != out.end() && b != out.end()) out[spec.name] = a->second - b->second;
  }
  if (prefix.empty()) return out;
  std::map<std::string, double> prefixed;
  for (const auto& [name, value] : out) prefixed[prefix + name] = value;
  return prefixed;
}

nlohmann::json MetricWindowSums::to_json() const {
  auto out = nlohmann::json::object();
  for (const auto& [name, v] : sums_) out[name] = {v.first, v.second};
  return out;
}

void MetricWindowSums::from_json(const nlohmann::json& in) {
  sums_.clear();
  for (const auto& [name, v] : in.items()) sums_[name] = {v.at(0).get<double>(), v.at(1).get<std::int64_t>()};
}

void StepWindow::clear() {
  metrics.clear();
  loss = 0;
  steps = tokens = 0;
}

nlohmann::json StepWindow::to_json() const {
  return {{"values", metrics.to_json()}, {"loss", loss}, {"steps", steps}, {"tokens", tokens}};
}

void StepWindow::from_json(const nlohmann::json& in) {
  metrics.from_json(in.at("values"));
  loss = in.at("loss").get<double>();
  steps = in.at("steps").get<std::int64_t>();
  tokens = in.at("tokens").get<std::int64_t>();
}

std::vector<std::string> plotted_metrics(const std::vector<MetricSpec>& specs) {
  std::vector<std::string> out = {"loss", "eval_loss"};
  for (const auto& spec : specs)
    if (spec.progress != MetricProgress::none) out.push_back(spec.name), out.push_back("eval_" + spec.name);
  out.push_back("grad_norm");
  out.push_back("learning_rate");
  return out;
}

std::string progress_line(std::int64_t step, std::int64_t total, const std::map<std::string, double>& values,
                          const std::vector<MetricSpec>& specs, double tokens_per_second, double eta_seconds) {
  std::vector<std::string> shown = {"loss"};
  for (const auto& spec : specs)
    if (spec.progress != MetricProgress::none) shown.push_back(spec.name);
  shown.push_back("grad_norm");
  shown.push_back("learning_rate");
  shown.push_back("eval_loss");
  for (const auto& spec : specs)
    if (spec.progress == MetricProgress::train_and_eval) shown.push_back("eval_" + spec.name);
  std::string line = fmt::format("step {}/{}", step, total);
  for (const auto& name : shown)
    if (auto it = values.find(name); it != values.end()) line += fmt::format(" | {} {:.4g}", name, it->second);
  line += fmt::format(" | {:.0f} tok/s | ETA {}", tokens_per_second, format_duration(eta_seconds));
  return line;
}

std::string format_duration(double seconds) {
  const auto s = static_cast<std::int64_t>(std::max(0.0, seconds));
  return s >= 3600 ? fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60) : fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace alignkit
