// Phone-boundary error of an alignment against known phone times (DESIGN.md §4, alignment).
#include <algorithm>
#include <cctype>
#include <cmath>

#include "speech/speech.h"

namespace dself::speech {
namespace {

// One label for what different phone sets call the same sound; "" for silence.
// flite writes schwa as "ax" where the CMU dictionary (and so the aligner) writes "ah".
std::string fold(const std::string& phone) {
  std::string p;
  for (char c : phone) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      p += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  if (p == "pau" || p == "sil" || p == "sp" || p == "h#" || p == "<sil>") return "";
  if (p == "ax") return "ah";
  if (p == "axr") return "er";
  if (p == "ix") return "ih";
  return p;
}

struct Speech {
  std::vector<size_t> index;       // positions of the speech phones in the full sequence
  std::vector<std::string> label;  // their folded labels
};

Speech speech_phones(std::span<const TimedPhone> phones) {
  Speech s;
  for (size_t i = 0; i < phones.size(); ++i) {
    std::string label = fold(phones[i].phone);
    if (label.empty()) continue;
    s.index.push_back(i);
    s.label.push_back(label);
  }
  return s;
}

// Pairs of positions (truth, aligned) that edit distance lines up, substitutions included.
std::vector<std::pair<size_t, size_t>> pair_up(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<int>> cost(n + 1, std::vector<int>(m + 1, 0));
  for (size_t i = 0; i <= n; ++i) cost[i][0] = static_cast<int>(i);
  for (size_t j = 0; j <= m; ++j) cost[0][j] = static_cast<int>(j);
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      cost[i][j] =
          std::min({cost[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1), cost[i - 1][j] + 1, cost[i][j - 1] + 1});
    }
  }
  std::vector<std::pair<size_t, size_t>> pairs;
  size_t i = n, j = m;
  while (i > 0 && j > 0) {
    if (cost[i][j] == cost[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)) {
      pairs.push_back({i - 1, j - 1});
      --i;
      --j;
    } else if (cost[i][j] == cost[i - 1][j] + 1) {
      --i;
    } else {
      --j;
    }
  }
  std::reverse(pairs.begin(), pairs.end());
  return pairs;
}

}  // namespace

BoundaryError phone_boundary_error(std::span<const TimedPhone> truth, std::span<const TimedPhone> aligned) {
  const Speech t = speech_phones(truth), a = speech_phones(aligned);
  BoundaryError result;
  result.truth_phone_count = static_cast<int>(t.index.size());
  std::vector<double> errors_ms;
  for (auto [i, j] : pair_up(t.label, a.label)) {
    const TimedPhone& tp = truth[t.index[i]];
    const TimedPhone& ap = aligned[a.index[j]];
    result.matched_phone_count += 1;
    errors_ms.push_back(1000 * std::fabs(tp.start_s - ap.start_s));
    size_t next = t.index[i] + 1;
    bool silence_follows = next == truth.size() || fold(truth[next].phone).empty();
    if (silence_follows) errors_ms.push_back(1000 * std::fabs(tp.end_s - ap.end_s));
  }
  result.boundary_count = static_cast<int>(errors_ms.size());
  if (errors_ms.empty()) return result;
  double sum = 0;
  int within = 0;
  for (double e : errors_ms) {
    sum += e;
    within += e <= 20 ? 1 : 0;
  }
  result.mean_ms = sum / static_cast<double>(errors_ms.size());
  result.within_20ms = static_cast<double>(within) / static_cast<double>(errors_ms.size());
  std::nth_element(errors_ms.begin(), errors_ms.begin() + static_cast<std::ptrdiff_t>(errors_ms.size() / 2),
                   errors_ms.end());
  result.median_ms = errors_ms[errors_ms.size() / 2];
  return result;
}

}  // namespace dself::speech
