// How far two recordings are apart: MCD, F0 RMSE and voicing error along a DTW path (DESIGN.md §4).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>

#include "vocoder/vocoder.h"

namespace dself::vocoder {

std::vector<bool> speech_frames(const Features& f) {
  std::vector<bool> speech(f.frame_count, false);
  if (f.frame_count == 0) return speech;
  std::vector<float> c0(f.frame_count);
  for (int t = 0; t < f.frame_count; ++t) c0[t] = f.mcep_frame(t)[0];
  std::vector<float> sorted = c0;
  const size_t k = static_cast<size_t>(0.95 * (sorted.size() - 1));
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(k), sorted.end());
  // c0 is the log gain (nepers of amplitude): 20/ln10 dB a unit.
  const double floor = sorted[k] - kSpeechMarginDb * std::numbers::ln10 / 20;
  for (int t = 0; t < f.frame_count; ++t) speech[t] = c0[t] >= floor;
  return speech;
}

namespace {

// ref: Kubichek, "Mel-cepstral distance measure for objective speech quality assessment", IEEE
// PACRIM 1993: MCD = 10/ln10 · sqrt(2 Σ_{d≥1} (c_d − c'_d)²), c0 (energy) left out.
double mel_cepstral_distortion(std::span<const float> a, std::span<const float> b) {
  double sum = 0;
  for (int d = 1; d <= kMcepOrder; ++d) sum += (double(a[d]) - b[d]) * (double(a[d]) - b[d]);
  return 10 / std::numbers::ln10 * std::sqrt(2 * sum);
}

std::vector<int> speech_frame_indices(const Features& f) {
  const std::vector<bool> speech = speech_frames(f);
  std::vector<int> frames;
  for (int t = 0; t < f.frame_count; ++t) {
    if (speech[t]) frames.push_back(t);
  }
  return frames;
}

}  // namespace

Distance distance(const Features& reference, const Features& candidate) {
  Distance result;
  const std::vector<int> a = speech_frame_indices(reference), b = speech_frame_indices(candidate);
  if (a.empty() || b.empty()) return result;
  // Plain symmetric DTW with steps (1,0), (0,1), (1,1), each costing the local MCD, over the whole
  // of both (both ends anchored); the path is traced back from the end.
  // ref: Sakoe & Chiba, "Dynamic programming algorithm optimization for spoken word recognition",
  // IEEE Trans. ASSP 26(1), 1978 (here without slope constraint or band); Müller, "Information
  // Retrieval for Music and Motion", 2007, §4.1 (the recursion D(i,j) = c(i,j) + min of the three)
  const size_t n = a.size(), m = b.size();
  // Only the accumulated costs are kept (n × m doubles); the local costs on the path are
  // computed again when it is traced back.
  auto local = [&](size_t i, size_t j) {
    return mel_cepstral_distortion(reference.mcep_frame(a[i]), candidate.mcep_frame(b[j]));
  };
  std::vector<double> total(n * m);
  constexpr double inf = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < m; ++j) {
      double best = i == 0 && j == 0 ? 0 : inf;
      if (i > 0) best = std::min(best, total[(i - 1) * m + j]);
      if (j > 0) best = std::min(best, total[i * m + j - 1]);
      if (i > 0 && j > 0) best = std::min(best, total[(i - 1) * m + j - 1]);
      total[i * m + j] = best + local(i, j);
    }
  }
  double mcd = 0, f0_squares = 0;
  int voiced_pairs = 0, voicing_errors = 0, length = 0;
  size_t i = n - 1, j = m - 1;
  while (true) {
    mcd += local(i, j);
    const double fa = reference.f0_hz[a[i]], fb = candidate.f0_hz[b[j]];
    if (fa > 0 && fb > 0) {
      f0_squares += (fa - fb) * (fa - fb);
      ++voiced_pairs;
    }
    if ((fa > 0) != (fb > 0)) ++voicing_errors;
    ++length;
    if (i == 0 && j == 0) break;
    // The predecessor with the least accumulated cost; ties prefer the diagonal.
    const double diagonal = i > 0 && j > 0 ? total[(i - 1) * m + j - 1] : inf;
    const double up = i > 0 ? total[(i - 1) * m + j] : inf;
    const double left = j > 0 ? total[i * m + j - 1] : inf;
    if (diagonal <= up && diagonal <= left) {
      --i, --j;
    } else if (up <= left) {
      --i;
    } else {
      --j;
    }
  }
  result.mcd_db = mcd / length;
  result.f0_rmse_hz = voiced_pairs > 0 ? std::sqrt(f0_squares / voiced_pairs) : 0;
  result.vuv_error = double(voicing_errors) / length;
  result.path_length = length;
  result.voiced_pair_count = voiced_pairs;
  return result;
}

}  // namespace dself::vocoder
