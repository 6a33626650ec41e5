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
const BandFilters& band_filters();

}  // namespace dself::vocoder::detail
