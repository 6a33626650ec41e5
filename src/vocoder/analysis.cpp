// Speech -> features: SPTK mel-cepstrum, YIN F0 (pitch.cpp), band aperiodicity.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <numbers>

#include "vocoder/detail/bands.h"
#include "vocoder/vocoder.h"

extern "C" {
#include <SPTK.h>
}

namespace dself::vocoder {
namespace {

constexpr int kFftLength = 512;  // the 400-sample window zero-padded, as `window -L 512` does

// SPTK's mcep() keeps its work buffers in static variables, so calls from several threads are
// serialised; everything else in analysis runs in parallel.
std::mutex sptk_mcep_mutex;

// The Blackman window with power normalisation (Σw² = 1), as SPTK's `window -w 0 -n 1` makes it.
// ref: SPTK 3.9 bin/window/_window.c (blackman(), normalize with nflg 1)
std::vector<double> blackman_window() {
  std::vector<double> w(kWindowSamples);
  double power = 0;
  for (int i = 0; i < kWindowSamples; ++i) {
    const double x = 2 * std::numbers::pi * i / (kWindowSamples - 1);
    w[i] = 0.42 - 0.5 * std::cos(x) + 0.08 * std::cos(2 * x);
    power += w[i] * w[i];
  }
  for (double& v : w) v /= std::sqrt(power);
  return w;
}

// Mel-cepstrum of each frame, frame t over samples [t·hop − window/2, t·hop + window/2) (zeros
// beyond the ends): the frames of `frame -l 400 -p 80`, whose first frame is centred on sample 0.
void mel_cepstra(std::span<const float> audio, Features& features) {
  static const std::vector<double> window = blackman_window();
  std::vector<double> frame(kFftLength), mc(kMcepOrder + 1);
  for (int t = 0; t < features.frame_count; ++t) {
    std::fill(frame.begin(), frame.end(), 0.0);
    const long start = long(t) * kHopSamples - kWindowSamples / 2;
    bool silent = true;
    for (int i = 0; i < kWindowSamples; ++i) {
      const long n = start + i;
      if (n < 0 || n >= long(audio.size())) continue;
      frame[i] = audio[n] * window[i];
      silent = silent && audio[n] == 0;
    }
    // SPTK's defaults (`mcep -l 512 -m 24 -a 0.42`): 2..30 iterations, end condition 0.001, no
    // periodogram floor, determinant floor 1e-6. A frame of digital silence has a zero periodogram,
    // which mcep cannot take the log of: it is floored at 1e-10 instead (c0 ≈ −11.5, flat).
    // ref: SPTK 3.9 bin/mcep/mcep.c (option defaults), bin/mcep/_mcep.c
    std::lock_guard lock(sptk_mcep_mutex);
    std::vector<double> input = frame;  // mcep() may scribble on its input
    int status = silent ? -1 : mcep(input.data(), kFftLength, mc.data(), kMcepOrder, kAlpha, 2, 30, 0.001, 0, 0.0, 1e-6, 0);
    bool finite = true;
    for (double v : mc) finite = finite && std::isfinite(v);
    if (status != 0 || !finite) {
      input = frame;
      mcep(input.data(), kFftLength, mc.data(), kMcepOrder, kAlpha, 2, 30, 0.001, 1, 1e-10, 1e-6, 0);
    }
    std::copy(mc.begin(), mc.end(), features.mcep.begin() + size_t(t) * (kMcepOrder + 1));
  }
}

// Band aperiodicity of voiced frames: 1 − the normalised autocorrelation of the band-passed signal
// at the pitch period (the best of the lags within a sample of it), as MELP measures its band
// voicing strengths; unvoiced frames are aperiodic (1) in every band.
// ref: McCree & Barnwell, "A mixed excitation LPC vocoder model for low bit rate speech coding",
// IEEE Trans. Speech Audio Process. 3(4), 1995, §III-B (bandpass voicing analysis)
void band_aperiodicity(std::span<const float> audio, Features& features) {
  std::fill(features.bap.begin(), features.bap.end(), 1.0f);
  const auto& bands = detail::band_filters();
  const long n = static_cast<long>(audio.size());
  std::vector<double> band(audio.size());
  for (int k = 0; k < kBandCount; ++k) {
    // Only samples near voiced frames are needed.
    std::vector<bool> wanted(audio.size(), false);
    for (int t = 0; t < features.frame_count; ++t) {
      if (features.f0_hz[t] <= 0) continue;
      const long reach = std::max<long>(kHopSamples, long(1.6 * kSampleRate / features.f0_hz[t])) + 2;
      for (long i = std::max(0L, t * long(kHopSamples) - reach); i < std::min(n, t * long(kHopSamples) + reach); ++i) {
        wanted[i] = true;
      }
    }
    for (long i = 0; i < n; ++i) {
      if (!wanted[i]) continue;
      double sum = 0;
      const long lo = std::max(-long(detail::kBandHalfTaps), i - (n - 1)), hi = std::min(long(detail::kBandHalfTaps), i);
      for (long j = lo; j <= hi; ++j) sum += bands[k][j + detail::kBandHalfTaps] * audio[i - j];
      band[i] = sum;
    }
    for (int t = 0; t < features.frame_count; ++t) {
      if (features.f0_hz[t] <= 0) continue;
      const double period = kSampleRate / features.f0_hz[t];
      const long half = std::max<long>(kHopSamples, long(1.5 * period));
      const long centre = t * long(kHopSamples);
      const long first = std::max(0L, centre - half), end = std::min(n, centre + half);
      // Above the lowest band MELP also correlates the band's envelope (full-wave rectified, mean
      // removed), less 0.1, and keeps the larger: jitter scatters high harmonics' phases but not
      // the pitch-periodic bursts of energy.
      double envelope_mean = 0;
      for (long i = first; i < end; ++i) envelope_mean += std::abs(band[i]);
      envelope_mean /= double(std::max(1L, end - first));
      double best = 0;
      const long shortest = std::lround(period * 0.97) - 1, longest = std::lround(period * 1.03) + 1;
      for (long lag = shortest; lag <= longest; ++lag) {
        double xy = 0, xx = 0, yy = 0, exy = 0, exx = 0, eyy = 0;
        for (long i = first; i < end - lag; ++i) {
          xy += band[i] * band[i + lag];
          xx += band[i] * band[i];
          yy += band[i + lag] * band[i + lag];
          const double ex = std::abs(band[i]) - envelope_mean, ey = std::abs(band[i + lag]) - envelope_mean;
          exy += ex * ey;
          exx += ex * ex;
          eyy += ey * ey;
        }
        if (xx > 0 && yy > 0) best = std::max(best, xy / std::sqrt(xx * yy));
        if (k > 0 && exx > 0 && eyy > 0) best = std::max(best, exy / std::sqrt(exx * eyy) - 0.1);
      }
      features.bap[size_t(t) * kBandCount + k] = static_cast<float>(std::clamp(1 - best, 0.0, 1.0));
    }
  }
}

}  // namespace

Features analyze(std::span<const float> audio, const AnalysisOptions& options) {
  Features features;
  features.frame_count = static_cast<int>(audio.size() / kHopSamples) + 1;
  features.mcep.assign(size_t(features.frame_count) * (kMcepOrder + 1), 0.0f);
  features.bap.assign(size_t(features.frame_count) * kBandCount, 1.0f);
  features.f0_hz = track_f0(audio, options);
  mel_cepstra(audio, features);
  band_aperiodicity(audio, features);
  return features;
}

}  // namespace dself::vocoder
