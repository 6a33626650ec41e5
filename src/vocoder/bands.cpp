#include <algorithm>
#include <cmath>
#include <numbers>
#include <vector>

#include "vocoder/detail/bands.h"

namespace dself::vocoder::detail {
namespace {

// A windowed-sinc low-pass at cutoff_hz, unit gain at DC (cutoff 0: nothing; Nyquist: an impulse),
// its centre delayed by `delay` samples (0 <= delay < 1): the ideal low-pass sampled off its centre,
// which is also how a fractional delay is made (at Nyquist it is the band-limited impulse).
// ref: Oppenheim & Schafer, Discrete-Time Signal Processing, 3rd ed., §7.5 (window method),
// Blackman window (eq. 7.60c); Laakso et al., "Splitting the unit delay", IEEE Signal Process.
// Mag. 13(1), 1996, §3.2 (windowed-sinc fractional delay)
std::array<double, kBandTaps> low_pass(double cutoff_hz, double delay) {
  std::array<double, kBandTaps> h{};
  if (cutoff_hz <= 0) return h;
  const double fc = std::min(0.5, cutoff_hz / kSampleRate);  // cycles per sample
  if (fc == 0.5 && delay == 0) {
    h[kBandHalfTaps] = 1;
    return h;
  }
  double sum = 0;
  for (int j = -kBandHalfTaps; j <= kBandHalfTaps; ++j) {
    const double t = j - delay;
    const double x = 2 * std::numbers::pi * (t + kBandHalfTaps) / (kBandTaps - 1);
    const double w = 0.42 - 0.5 * std::cos(x) + 0.08 * std::cos(2 * x);
    const double sinc = t == 0 ? 2 * fc : std::sin(2 * std::numbers::pi * fc * t) / (std::numbers::pi * t);
    h[j + kBandHalfTaps] = sinc * w;
    sum += sinc * w;
  }
  for (double& v : h) v /= sum;
  return h;
}

BandFilters make_band_filters(double delay) {
  // Each band is the difference of two low-passes, so the bands telescope to a (delayed) impulse.
  BandFilters bands{};
  for (int k = 0; k < kBandCount; ++k) {
    const auto upper = low_pass(kBandEdgesHz[k + 1], delay);
    const auto lower = low_pass(kBandEdgesHz[k], delay);
    for (int j = 0; j < kBandTaps; ++j) bands[k][j] = upper[j] - lower[j];
  }
  return bands;
}

}  // namespace

const BandFilters& band_filters(int phase) {
  static const std::vector<BandFilters> banks = [] {
    std::vector<BandFilters> all;
    for (int q = 0; q < kBandPhases; ++q) all.push_back(make_band_filters(double(q) / kBandPhases));
    return all;
  }();
  return banks[size_t(phase)];
}

}  // namespace dself::vocoder::detail
