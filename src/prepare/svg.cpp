#include "prepare/svg.h"

#include <algorithm>

#include <fmt/format.h>

#include "core/text.h"

namespace dself::prepare::svg {
namespace {

constexpr int width = 640;
constexpr int margin_left = 150;
constexpr int margin_right = 70;
constexpr const char* bar_colour = "#4c78a8";

std::string open(int height, const std::string& title) {
  return fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" role="img" )"
      R"(aria-label="{}" font-family="sans-serif" font-size="12"><text x="8" y="16" font-weight="bold">{}</text>)",
      width, height, width, height, escape(title), escape(title));
}

std::string format_value(double v) { return v >= 100 ? fmt::format("{:.0f}", v) : fmt::format("{:.3g}", v); }

}  // namespace

std::string escape(const std::string& text) { return escape_markup(text); }

std::string bar_chart(const std::string& title, const std::vector<Bar>& bars, const std::string& unit) {
  const int row = 22;
  const int height = 30 + row * static_cast<int>(std::max<size_t>(bars.size(), 1)) + 10;
  double max_value = 0;
  for (const auto& b : bars) max_value = std::max(max_value, b.value);
  std::string out = open(height, title);
  const double span = width - margin_left - margin_right;
  for (size_t i = 0; i < bars.size(); ++i) {
    int y = 28 + static_cast<int>(i) * row;
    double length = max_value > 0 ? span * bars[i].value / max_value : 0;
    std::string label = bars[i].label.size() > 22 ? bars[i].label.substr(0, 21) + "…" : bars[i].label;
    out += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)", margin_left - 6, y + 14, escape(label));
    out += fmt::format(R"(<rect x="{}" y="{}" width="{:.1f}" height="{}" fill="{}"/>)", margin_left, y + 2, length,
                       row - 6, bar_colour);
    out += fmt::format(R"(<text x="{:.1f}" y="{}">{} {}</text>)", margin_left + length + 4, y + 14,
                       format_value(bars[i].value), escape(unit));
  }
  if (bars.empty()) out += R"(<text x="8" y="40">no data</text>)";
  return out + "</svg>";
}

std::string histogram(const std::string& title, const std::vector<double>& values, double low, double high,
                      int bin_count, const std::string& unit) {
  std::vector<int> counts(static_cast<size_t>(bin_count), 0);
  for (double v : values) {
    int bin = static_cast<int>((v - low) / (high - low) * bin_count);
    ++counts[static_cast<size_t>(std::clamp(bin, 0, bin_count - 1))];
  }
  const int height = 220, top = 30, bottom = 190, left = 50, right = width - 20;
  int max_count = std::max(1, *std::max_element(counts.begin(), counts.end()));
  std::string out = open(height, title);
  double bar_width = double(right - left) / bin_count;
  for (int b = 0; b < bin_count; ++b) {
    double h = double(bottom - top) * counts[static_cast<size_t>(b)] / max_count;
    out += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}"><title>{}</title></rect>)",
                       left + b * bar_width + 1, bottom - h, bar_width - 2, h, bar_colour,
                       counts[static_cast<size_t>(b)]);
  }
  out += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#333"/>)", left, bottom, right, bottom);
  for (int t = 0; t <= 4; ++t) {
    double v = low + (high - low) * t / 4;
    out += fmt::format(R"(<text x="{:.1f}" y="{}" text-anchor="middle">{}</text>)", left + (right - left) * t / 4.0,
                       bottom + 16, format_value(v));
  }
  out += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)", right, bottom + 30, escape(unit));
  out += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)", left - 4, top + 10, max_count);
  return out + "</svg>";
}

std::string line_chart(const std::string& title, const std::vector<double>& x, const std::vector<double>& y,
                       double y_low, double y_high, const std::string& x_unit, const std::string& y_unit) {
  const int height = 200, top = 30, bottom = 170, left = 50, right = width - 20;
  std::string out = open(height, title);
  double x_max = x.empty() ? 1 : std::max(1e-9, x.back());
  std::string points;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    double px = left + (right - left) * x[i] / x_max;
    double py = bottom - (bottom - top) * (std::clamp(y[i], y_low, y_high) - y_low) / (y_high - y_low);
    points += fmt::format("{:.1f},{:.1f} ", px, py);
  }
  out += fmt::format(R"(<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5"/>)", points, bar_colour);
  out += fmt::format(R"(<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#333"/>)", left, bottom, right, bottom);
  out += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)", left - 4, top + 4, format_value(y_high));
  out += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{}</text>)", left - 4, bottom, format_value(y_low));
  out += fmt::format(R"(<text x="{}" y="{}" text-anchor="end">{} {}</text>)", right, bottom + 16, format_value(x_max),
                     escape(x_unit));
  out += fmt::format(R"(<text x="{}" y="{}">{}</text>)", left + 4, top + 4, escape(y_unit));
  return out + "</svg>";
}

}  // namespace dself::prepare::svg
