// Small helpers shared by the speech stage's files.
#pragma once

#include <algorithm>
#include <cstddef>
#include <span>

#include "speech/speech.h"

namespace dself::speech::detail {

// The samples of [start_s, end_s), clamped to the audio.
inline std::span<const float> samples_between(std::span<const float> audio, double start_s, double end_s) {
  auto index = [&](double t) {
    return std::min(audio.size(), static_cast<size_t>(std::max(0.0, t) * kSampleRate + 0.5));
  };
  size_t begin = index(start_s), end = std::max(begin, index(end_s));
  return audio.subspan(begin, end - begin);
}

}  // namespace dself::speech::detail
