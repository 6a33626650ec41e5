#include <cmath>
#include <numbers>

#include "vocoder/detail/bands.h"

namespace dself::vocoder::detail {
namespace {

// A windowed-sinc low-pass at cutoff_hz, unit gain at DC (cutoff 0: nothing; Nyquist: an impulse).
// ref: Oppenheim & Schafer, Discrete-Time Signal Processing, 3rd ed., §7.5 (window method),
// Blackman window (eq. 7.60c)
std::array<double, kBandTaps> low_pass(double cutoff_hz) {
  std::array<double, kBandTaps> h{};
  if (cutoff_hz <= 0) return h;
  if (cutoff_hz >= kSampleRate / 2.0) {
    h[kBandHalfTaps] = 1;
    return h;
  }
  const double fc = cutoff_hz / kSampleRate;  // cycles per sample
  double sum = 0;
  for (int j = -kBandHalfTaps; j <= kBandHalfTaps; ++j) {
    const double x = 2 * std::numbers::pi * (j + kBandHalfTaps) / (kBandTaps - 1);
    const double w = 0.42 - 0.5 * std::cos(x) + 0.08 * std::cos(2 * x);
    const double sinc = j == 0 ? 2 * fc : std::sin(2 * std::numbers::pi * fc * j) / (std::numbers::pi * j);
    h[j + kBandHalfTaps] = sinc * w;
    sum += sinc * w;
  }
  for (double& v : h) v /= sum;
  return h;
}

BandFilters make_band_filters() {
  // Each band is the difference of two low-passes, so the bands telescope to an impulse.
  BandFilters bands{};
  for (int k = 0; k < kBandCount; ++k) {
    const auto upper = low_pass(kBandEdgesHz[k + 1]);
    const auto lower = low_pass(kBandEdgesHz[k]);
    for (int j = 0; j < kBandTaps; ++j) bands[k][j] = upper[j] - lower[j];
  }
  return bands;
}

}  // namespace

const BandFilters& band_filters() {
  static const BandFilters bands = make_band_filters();
  return bands;
}

}  // namespace dself::vocoder::detail
