// Small SVG charts for the prepare report: the page must open in a browser with no scripts and
// nothing fetched from the network.
#pragma once

#include <string>
#include <vector>

namespace dself::prepare::svg {

struct Bar {
  std::string label;
  double value = 0;
};

// A horizontal bar chart, one bar per label, values labelled in `unit`.
std::string bar_chart(const std::string& title, const std::vector<Bar>& bars, const std::string& unit);

// A histogram of values in `bin_count` equal bins between low and high.
std::string histogram(const std::string& title, const std::vector<double>& values, double low, double high,
                      int bin_count, const std::string& unit);

// A line over x (e.g. time) of y values in [y_low, y_high].
std::string line_chart(const std::string& title, const std::vector<double>& x, const std::vector<double>& y,
                       double y_low, double y_high, const std::string& x_unit, const std::string& y_unit);

// Text made safe to put inside HTML or SVG.
std::string escape(const std::string& text);

}  // namespace dself::prepare::svg
