// The aperiodicity bands as a linear-phase FIR filter bank whose bands sum to a unit impulse, so
// that splitting a signal into bands and adding them back gives the signal (delayed by none: the
// taps are centred). Shared by analysis (band voicing) and synthesis (band mixing).
#pragma once

#include <array>
#include <vector>

#include "vocoder/vocoder.h"

namespace dself::vocoder::detail {

constexpr int kBandHalfTaps = 63;                 // taps at -63..63 (8 ms either side)
constexpr int kBandTaps = 2 * kBandHalfTaps + 1;  // 127: transition bands about 200 Hz wide

// taps[k][j + kBandHalfTaps] is band k's impulse response at lag j.
using BandFilters = std::array<std::array<double, kBandTaps>, kBandCount>;

// Sub-sample positions a pulse can be placed at: 1/32 sample, so that a pulse train's periods are
// not rounded to whole samples (a jitter of ±½ sample turns the harmonics above 2 kHz aperiodic).
constexpr int kBandPhases = 32;

// The bank delayed by phase / kBandPhases of a sample (phase 0..kBandPhases-1; 0: the bank itself).
const BandFilters& band_filters(int phase = 0);

}  // namespace dself::vocoder::detail
