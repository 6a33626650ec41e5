// The pitch a person speaks at, from the vocoder's YIN tracker (vocoder::track_f0).
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "media/media.h"
#include "vocoder/vocoder.h"
#include "voice/voice.h"

namespace dself::voice {
namespace {

// F0 in Hz of each voiced 5 ms frame, in order: the vocoder's tracker, so that the pitch a
// voice is picked by and the F0 a voice is judged by are the same measure.
std::vector<double> track_pitch(std::span<const float> audio) {
  std::vector<double> f0s;
  for (float hz : vocoder::track_f0(audio)) {
    if (hz > 0) f0s.push_back(hz);
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
