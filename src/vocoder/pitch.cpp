// F0 per 5 ms frame with YIN: the one pitch tracker of dself (voice::measure_pitch uses it too).
// ref: de Cheveigné & Kawahara, "YIN, a fundamental frequency estimator for speech and music",
// JASA 111(4), 2002: steps 2-5 (difference function, cumulative mean normalisation, absolute
// threshold, parabolic interpolation).
#include <algorithm>
#include <cmath>

#include "vocoder/vocoder.h"

namespace dself::vocoder {

std::vector<float> track_f0(std::span<const float> audio, const AnalysisOptions& p) {
  // A 40 ms frame holds the largest lag (1/60 Hz ≈ 267 samples) plus an integration window of
  // 373 samples, about two periods of the lowest F0.
  constexpr size_t frame = 640;
  const size_t tau_min = static_cast<size_t>(std::floor(kSampleRate / p.max_f0_hz));
  const size_t tau_max = std::min(frame / 2, static_cast<size_t>(std::ceil(kSampleRate / p.min_f0_hz)));
  const size_t window = frame - tau_max;  // the integration window: frame = window + largest lag
  const int frame_count = static_cast<int>(audio.size() / kHopSamples) + 1;
  std::vector<float> f0(frame_count, 0.0f);

  // Frame t covers [t·hop − frame/2, t·hop + frame/2): centred on its sample like the mel-cepstrum's
  // frames, with zeros beyond the ends.
  std::vector<float> padded(audio.size() + frame + kHopSamples, 0.0f);
  std::copy(audio.begin(), audio.end(), padded.begin() + frame / 2);

  std::vector<double> rms(frame_count);
  double loudest = 0;
  for (int t = 0; t < frame_count; ++t) {
    const float* x = padded.data() + size_t(t) * kHopSamples;
    double sum = 0;
    for (size_t j = 0; j < frame; ++j) sum += double(x[j]) * x[j];
    rms[t] = std::sqrt(sum / frame);
    loudest = std::max(loudest, rms[t]);
  }
  const double floor = std::max(p.min_rms, loudest * std::pow(10.0, -p.relative_floor_db / 20));

  std::vector<double> d(tau_max + 2);
  for (int t = 0; t < frame_count; ++t) {
    if (rms[t] < floor) continue;
    const float* x = padded.data() + size_t(t) * kHopSamples;
    // Step 2: the difference function; step 3: its cumulative mean normalised form d'.
    d[0] = 1;
    double running = 0;
    for (size_t tau = 1; tau <= tau_max + 1; ++tau) {
      double sum = 0;
      const size_t n = std::min(window, frame - tau);
      for (size_t j = 0; j < n; ++j) {
        const double diff = double(x[j]) - x[j + tau];
        sum += diff * diff;
      }
      running += sum;
      d[tau] = running > 0 ? sum * tau / running : 1;
    }
    // Step 4: the first dip below the threshold, followed down to its local minimum.
    size_t best = 0;
    for (size_t tau = tau_min; tau <= tau_max; ++tau) {
      if (d[tau] < p.yin_threshold) {
        while (tau + 1 <= tau_max && d[tau + 1] < d[tau]) ++tau;
        best = tau;
        break;
      }
    }
    if (best == 0) continue;  // no clear period: unvoiced
    // Step 5: parabolic interpolation of the minimum between lags.
    double shift = 0;
    const double a = d[best - 1], b = d[best], c = d[best + 1];
    if (a + c - 2 * b > 0) shift = 0.5 * (a - c) / (a + c - 2 * b);
    const double hz = kSampleRate / (best + std::clamp(shift, -0.5, 0.5));
    if (hz >= p.min_f0_hz && hz <= p.max_f0_hz) f0[t] = static_cast<float>(hz);
  }
  return f0;
}

}  // namespace dself::vocoder
