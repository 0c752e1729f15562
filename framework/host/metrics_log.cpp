#include "metrics_log.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <alignkit/atomic_file.hpp>
#include <alignkit/diagnostic.hpp>

namespace alignkit {

namespace {

// The curves worth a glance when the loop names none; every metric is in the CSV.
const std::vector<std::string> kDefaultPlotted = {"loss", "eval_loss", "grad_norm", "learning_rate"};

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : std::string(1, c);
  return out;
}

}  // namespace

MetricsLog::MetricsLog(const std::filesystem::path& dir, std::optional<std::int64_t> resume_step,
                       std::vector<std::string> plotted)
    : dir_(dir), plotted_(plotted.empty() ? kDefaultPlotted : std::move(plotted)) {
  const auto file = dir_ / "metrics.jsonl";
  if (!resume_step) {
    std::filesystem::remove(file);  // a fresh run starts a fresh log
    return;
  }
  // Resumed: the lines up to the checkpoint's step stay; later ones (logged after it, before the
  // run was stopped) are logged again as the run repeats those steps. A line torn by a crash is
  // dropped.
  std::ifstream in(file);
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!row.is_object() || !row.contains("step") || !row["step"].is_number_integer()) continue;
    const auto step = row["step"].get<std::int64_t>();
    if (step > *resume_step) continue;
    std::map<std::string, double> values;
    for (const auto& [name, value] : row.items())
      if (name != "step") values[name] = value.is_number() ? value.get<double>() : std::nan("");
    rows_.emplace_back(step, std::move(values));
    kept += line + "\n";
  }
  write_file_atomically(file, kept);
  if (!rows_.empty()) {
    write_csv();
    write_plot();
  }
}

void MetricsLog::log(std::int64_t step, const std::map<std::string, double>& values) {
  rows_.emplace_back(step, values);
  nlohmann::ordered_json line;
  line["step"] = step;
  for (const auto& [name, value] : values) line[name] = std::isfinite(value) ? nlohmann::ordered_json(value) : nullptr;
  std::ofstream out(dir_ / "metrics.jsonl", std::ios::app);
  out << line.dump() << "\n";
  out.flush();
  if (!out) throw_file_error((dir_ / "metrics.jsonl").string(), "cannot be written");
  write_csv();
  write_plot();
}

void MetricsLog::write_csv() const {
  std::set<std::string> names;
  for (const auto& [step, values] : rows_)
    for (const auto& [name, value] : values) names.insert(name);
  std::string csv = "step";
  for (const auto& name : names) csv += "," + name;
  csv += "\n";
  for (const auto& [step, values] : rows_) {
    csv += std::to_string(step);
    for (const auto& name : names) {
      auto it = values.find(name);
      csv += it == values.end() ? "," : fmt::format(",{:.9g}", it->second);
    }
    csv += "\n";
  }
  write_file_atomically(dir_ / "metrics.csv", csv);
}

void MetricsLog::write_plot() const {
  std::vector<std::string> names;
  for (const auto& name : plotted_)
    if (std::any_of(rows_.begin(), rows_.end(), [&](const auto& row) { return row.second.count(name) > 0; }))
      names.push_back(name);
  write_file_atomically(dir_ / "metrics.svg", plot_svg(rows_, names));
}

std::string plot_svg(const std::vector<std::pair<std::int64_t, std::map<std::string, double>>>& rows,
                     const std::vector<std::string>& names) {
  const int width = 360, height = 220, columns = 2, margin = 46;
  const int charts = static_cast<int>(names.size());
  const int total_height = std::max(1, (charts + columns - 1) / columns) * height;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" font-family=\"sans-serif\" "
      "font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      width * columns, total_height);
  for (int c = 0; c < charts; ++c) {
    const auto& name = names[static_cast<std::size_t>(c)];
    std::vector<std::pair<double, double>> points;
    for (const auto& [step, values] : rows)
      if (auto it = values.find(name); it != values.end() && std::isfinite(it->second))
        points.emplace_back(static_cast<double>(step), it->second);
    const int x0 = (c % columns) * width, y0 = (c / columns) * height;
    svg += fmt::format("<g transform=\"translate({},{})\">\n<text x=\"{}\" y=\"16\" font-weight=\"bold\">{}</text>\n",
                       x0, y0, margin, escape(name));
    const int plot_w = width - margin - 14, plot_h = height - 60;
    svg += fmt::format("<rect x=\"{}\" y=\"24\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#bbb\"/>\n", margin,
                       plot_w, plot_h);
    if (points.empty()) {
      svg += "</g>\n";
      continue;
    }
    auto [xmin, xmax] = std::minmax_element(points.begin(), points.end(),
                                            [](const auto& a, const auto& b) { return a.first < b.first; });
    auto [ymin, ymax] = std::minmax_element(points.begin(), points.end(),
                                            [](const auto& a, const auto& b) { return a.second < b.second; });
    double lo = ymin->second, hi = ymax->second;
    if (hi - lo < 1e-12) lo -= 0.5, hi += 0.5;
    const double left = xmin->first, right = std::max(xmax->first, left + 1);
    auto px = [&](double x) { return margin + (x - left) / (right - left) * plot_w; };
    auto py = [&](double y) { return 24 + plot_h - (y - lo) / (hi - lo) * plot_h; };
    std::string path;
    for (const auto& [x, y] : points) path += fmt::format("{}{:.1f},{:.1f}", path.empty() ? "M" : " L", px(x), py(y));
    const bool eval = name.rfind("eval_", 0) == 0;
    svg += fmt::format("<path d=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n", path,
                       eval ? "#d62728" : "#1f77b4");
    if (points.size() == 1)
      svg += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\" fill=\"#d62728\"/>\n", px(points[0].first),
                         py(points[0].second));
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.4g}</text>\n", margin - 4, 30, hi);
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{:.4g}</text>\n", margin - 4, 24 + plot_h, lo);
    svg += fmt::format("<text x=\"{}\" y=\"{}\">{}</text>\n", margin, 24 + plot_h + 16, static_cast<std::int64_t>(left));
    svg += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"end\">step {}</text>\n</g>\n", margin + plot_w,
                       24 + plot_h + 16, static_cast<std::int64_t>(right));
  }
  return svg + "</svg>\n";
}

}  // namespace alignkit
