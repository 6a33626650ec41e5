// Pitch (F0) tracking with YIN, and the pitch a person speaks at.
// ref: de Cheveigné & Kawahara, "YIN, a fundamental frequency estimator for speech and music",
// JASA 111(4), 2002: steps 2-5 (difference function, cumulative mean normalisation, absolute
// threshold, parabolic interpolation).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "media/media.h"
#include "voice/voice.h"

namespace dself::voice {
namespace {

struct YinParams {
  double frame_s = 0.040;       // analysis frame: lag range plus the integration window
  double hop_s = 0.010;         // one F0 value per 10 ms
  double min_hz = 60;           // lowest F0 looked for (a deep male voice)
  double max_hz = 400;          // highest (a high female or child's voice)
  double threshold = 0.2;       // YIN's absolute threshold on the normalised difference
  double min_rms = 1e-3;        // frames quieter than -60 dBFS are unvoiced
  double relative_floor_db = 35;  // and frames this far below the loudest one
};

// F0 in Hz of each voiced frame, in order.
std::vector<double> track_pitch(std::span<const float> audio, const YinParams& p = {}) {
  const int rate = kSampleRate;
  const size_t frame = static_cast<size_t>(p.frame_s * rate);
  const size_t hop = static_cast<size_t>(p.hop_s * rate);
  const size_t tau_min = static_cast<size_t>(std::floor(rate / p.max_hz));
  const size_t tau_max = static_cast<size_t>(std::ceil(rate / p.min_hz));
  const size_t window = frame - tau_max;  // the integration window: frame = window + largest lag
  std::vector<double> f0s;
  if (audio.size() < frame) return f0s;
  const size_t frame_count = (audio.size() - frame) / hop + 1;

  std::vector<double> rms(frame_count);
  double loudest = 0;
  for (size_t f = 0; f < frame_count; ++f) {
    double sum = 0;
    for (size_t j = 0; j < frame; ++j) sum += double(audio[f * hop + j]) * audio[f * hop + j];
    rms[f] = std::sqrt(sum / frame);
    loudest = std::max(loudest, rms[f]);
  }
  const double floor = std::max(p.min_rms, loudest * std::pow(10.0, -p.relative_floor_db / 20));

  std::vector<double> d(tau_max + 2);
  for (size_t f = 0; f < frame_count; ++f) {
    if (rms[f] < floor) continue;
    const float* x = audio.data() + f * hop;
    // Step 2: the difference function; step 3: its cumulative mean normalised form d'.
    d[0] = 1;
    double running = 0;
    for (size_t tau = 1; tau <= tau_max + 1; ++tau) {
      double sum = 0;
      const size_t n = std::min(window, frame - std::min(frame, tau));
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
      if (d[tau] < p.threshold) {
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
    const double period = best + std::clamp(shift, -0.5, 0.5);
    const double hz = rate / period;
    if (hz >= p.min_hz && hz <= p.max_hz) f0s.push_back(hz);
  }
  return f0s;
}

double percentile(std::vector<double>& values, double share) {
  const size_t k = std::min(values.size() - 1, static_cast<size_t>(share * (values.size() - 1) + 0.5));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

PitchProfile profile_of(std::vector<double> f0s) {
  PitchProfile profile;
  profile.voiced_frame_count = static_cast<int>(f0s.size());
  if (f0s.empty()) return profile;
  profile.median_hz = percentile(f0s, 0.5);
  profile.p10_hz = percentile(f0s, 0.1);
  profile.p90_hz = percentile(f0s, 0.9);
  return profile;
}

}  // namespace

PitchProfile measure_pitch(std::span<const float> audio_16k) { return profile_of(track_pitch(audio_16k)); }

PitchProfile measure_avatar_pitch(const std::filesystem::path& avatar) {
  namespace fs = std::filesystem;
  const fs::path speech_dir = avatar / "speech";
  // Every source's train clips; at most max_clips of them, spread evenly, so that hours of speech
  // cost no more than half an hour of it (the median settles long before that).
  constexpr size_t max_clips = 300;
  std::vector<fs::path> clips;
  std::error_code ec;
  if (fs::is_directory(speech_dir, ec)) {
    std::vector<fs::path> sources;
    for (const auto& entry : fs::directory_iterator(speech_dir)) {
      if (fs::exists(entry.path() / "utterances.json")) sources.push_back(entry.path());
    }
    std::sort(sources.begin(), sources.end());
    for (const auto& dir : sources) {
      for (const auto& u : speech::read_dataset(dir).utterances) {
        if (u.split == speech::Split::train) clips.push_back(dir / u.wav);
      }
    }
  }
  if (clips.empty()) {
    throw InputError(fmt::format("{} has no prepared speech (speech/*/utterances.json with train utterances): run "
                                 "`dself --avatar {} prepare` first",
                                 avatar.string(), avatar.string()));
  }
  std::vector<double> f0s;
  const size_t step = (clips.size() + max_clips - 1) / max_clips;
  for (size_t i = 0; i < clips.size(); i += step) {
    std::vector<float> audio = media::decode_audio(clips[i], kSampleRate);
    std::vector<double> clip_f0s = track_pitch(audio);
    f0s.insert(f0s.end(), clip_f0s.begin(), clip_f0s.end());
  }
  if (f0s.empty()) {
    throw InputError(fmt::format("{}: no voiced speech found in its {} speech clips; check that the videos have speech",
                                 avatar.string(), clips.size()));
  }
  return profile_of(std::move(f0s));
}

}  // namespace dself::voice
