// Features -> speech: a mixed excitation (pitch-synchronous pulses and noise, mixed per band by the
// aperiodicity) through SPTK's MLSA filter.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>

#include "core/error.h"
#include "core/random.h"
#include "vocoder/detail/bands.h"
#include "vocoder/vocoder.h"

extern "C" {
#include <SPTK.h>
}

namespace dself::vocoder {
namespace {

constexpr int kPadeOrder = 5;  // MLSA's Padé approximation of exp(): 5 keeps its error under 0.27 dB at |c| ≤ 6

// The nearest frame of sample n, within the features.
int nearest_frame(const Features& f, long n) {
  return std::min(f.frame_count - 1, static_cast<int>((n + kHopSamples / 2) / kHopSamples));
}

// F0 at sample n: linear between the frames either side when both are voiced, else the voiced one's.
double f0_at(const Features& f, long n) {
  const int t = std::min(f.frame_count - 1, static_cast<int>(n / kHopSamples));
  const int u = std::min(f.frame_count - 1, t + 1);
  const double a = f.f0_hz[t], b = f.f0_hz[u];
  if (a > 0 && b > 0) return a + (b - a) * double(n - long(t) * kHopSamples) / kHopSamples;
  return a > 0 ? a : b;
}

// Unit-variance white Gaussian noise, the same for the same seed on every platform.
// ref: Box & Muller, "A note on the generation of random normal deviates", Ann. Math. Stat. 29, 1958
std::vector<double> gaussian_noise(size_t count, unsigned long seed) {
  Random random(seed, "vocoder-noise");
  std::vector<double> noise(count);
  for (size_t i = 0; i < count; i += 2) {
    const double u = 1 - random.uniform(0, 1), v = random.uniform(0, 1);
    const double r = std::sqrt(-2 * std::log(u));
    noise[i] = r * std::cos(2 * std::numbers::pi * v);
    if (i + 1 < count) noise[i + 1] = r * std::sin(2 * std::numbers::pi * v);
  }
  return noise;
}

// The mixed excitation: in voiced samples a pulse every period (amplitude √period, so that pulses
// and noise both have unit power) whose spectrum is band k scaled by √(1 − bap_k), plus noise
// whose band k is scaled by √bap_k; unvoiced samples are white noise. Pulses are placed
// pitch-synchronously by accumulating the instantaneous F0's phase.
// ref: McCree & Barnwell, "A mixed excitation LPC vocoder model for low bit rate speech coding",
// IEEE Trans. Speech Audio Process. 3(4), 1995, §III-A (mixed pulse and noise filters per band)
// ref: SPTK 3.9 bin/excite/excite.c (pulse amplitude √period, unit-variance noise when unvoiced)
std::vector<double> mixed_excitation(const Features& f, unsigned long seed) {
  const auto& bands = detail::band_filters();
  const long count = long(f.frame_count) * kHopSamples;
  const std::vector<double> noise = gaussian_noise(size_t(count), seed);
  std::vector<double> excitation(size_t(count), 0.0);
  std::array<double, detail::kBandTaps> shape{};
  double phase = 1;  // in periods since the last pulse: the first voiced sample gets a pulse
  for (long n = 0; n < count; ++n) {
    const int t = nearest_frame(f, n);
    const float* bap = f.bap.data() + size_t(t) * kBandCount;
    if (f.f0_hz[t] <= 0) {
      excitation[n] += noise[n];
      phase = 1;
      continue;
    }
    // Noise: band k scaled by √bap_k, one mixed FIR per sample (constant over a frame).
    double mixed = 0;
    const long lo = std::max(-long(detail::kBandHalfTaps), n - (count - 1)), hi = std::min(long(detail::kBandHalfTaps), n);
    if (n == 0 || nearest_frame(f, n - 1) != t) {
      shape.fill(0);
      for (int k = 0; k < kBandCount; ++k) {
        const double gain = std::sqrt(std::clamp(double(bap[k]), 0.0, 1.0));
        for (int j = 0; j < detail::kBandTaps; ++j) shape[j] += gain * bands[k][j];
      }
    }
    for (long j = lo; j <= hi; ++j) mixed += shape[j + detail::kBandHalfTaps] * noise[n - j];
    excitation[n] += mixed;
    // Pulses: band k scaled by √(1 − bap_k), the mixed pulse spread over the filter's taps, at the
    // sub-sample instant where the phase reached a whole period.
    const double hz = f0_at(f, n);
    if (phase >= 1) {
      const double late = (phase - 1) * kSampleRate / hz;  // samples since the period ended, < 1
      phase -= std::floor(phase);
      const double at = double(n) - std::min(late, 1.0);
      long base = long(std::floor(at));
      int sub = int(std::lround((at - double(base)) * detail::kBandPhases));
      if (sub == detail::kBandPhases) ++base, sub = 0;
      const auto& shifted = detail::band_filters(sub);
      const double amplitude = std::sqrt(kSampleRate / hz);
      for (int k = 0; k < kBandCount; ++k) {
        const double gain = amplitude * std::sqrt(std::clamp(1.0 - bap[k], 0.0, 1.0));
        if (gain == 0) continue;
        for (long j = std::max(-long(detail::kBandHalfTaps), -base); j <= std::min(long(detail::kBandHalfTaps), count - 1 - base); ++j) {
          excitation[base + j] += gain * shifted[k][j + detail::kBandHalfTaps];
        }
      }
    }
    phase += hz / kSampleRate;
  }
  return excitation;
}

}  // namespace

std::vector<double> mlsa_filter(std::span<const double> excitation, std::span<const float> mcep, int frame_count) {
  // ref: SPTK 3.9 bin/mlsadf/mlsadf.c main(): b = mc2b(mc) per frame; across each frame period the
  // coefficients move linearly towards the next frame's, updated after every sample (-i 1); the
  // input is scaled by exp(b0) (the gain) before the filter. After the last frame they are held.
  // The filter's state lives in `d`; SPTK's mlsadf() only sets a static pointer to its Padé table
  // (the same one on every call), so separate calls may run on separate threads.
  constexpr int m = kMcepOrder;
  std::vector<double> d(3 * (kPadeOrder + 1) + kPadeOrder * (m + 2), 0.0);
  std::vector<double> b(m + 1), next(m + 1), inc(m + 1), mc(m + 1);
  auto b_of = [&](int t, std::vector<double>& out) {
    t = std::min(t, frame_count - 1);
    for (int i = 0; i <= m; ++i) mc[i] = mcep[size_t(t) * (m + 1) + i];
    mc2b(mc.data(), out.data(), m, kAlpha);
  };
  std::vector<double> out(excitation.size());
  if (frame_count <= 0) return out;
  b_of(0, b);
  for (size_t n = 0; n < excitation.size(); ++n) {
    if (n % kHopSamples == 0) {
      const int t = static_cast<int>(n / kHopSamples);
      b_of(t + 1, next);
      for (int i = 0; i <= m; ++i) inc[i] = (next[i] - b[i]) / kHopSamples;
    }
    const double x = excitation[n] * std::exp(b[0]);
    out[n] = mlsadf(x, b.data(), m, kAlpha, kPadeOrder, d.data());
    for (int i = 0; i <= m; ++i) b[i] += inc[i];
    if ((n + 1) % kHopSamples == 0) b = next;
  }
  return out;
}

std::vector<float> synthesize(const Features& features, const SynthesisOptions& options) {
  // Features may come from a model's output: their shape is checked, not assumed.
  const size_t frames = size_t(std::max(0, features.frame_count));
  if (features.mcep.size() != frames * (kMcepOrder + 1) || features.f0_hz.size() != frames ||
      features.bap.size() != frames * kBandCount) {
    throw InputError(fmt::format("vocoder features of {} frames hold {} mel-cepstral values (want {}), {} F0 values, "
                                 "{} aperiodicities (want {})",
                                 features.frame_count, features.mcep.size(), frames * (kMcepOrder + 1),
                                 features.f0_hz.size(), features.bap.size(), frames * kBandCount));
  }
  const std::vector<double> excitation = mixed_excitation(features, options.noise_seed);
  const std::vector<double> speech = mlsa_filter(excitation, features.mcep, features.frame_count);
  std::vector<float> samples(speech.size());
  for (size_t i = 0; i < speech.size(); ++i) samples[i] = static_cast<float>(std::clamp(speech[i], -1.0, 1.0));
  return samples;
}

}  // namespace dself::vocoder
