// The espeak-ng engine behind the fallback voice, shared by espeak.cpp and evaluate.cpp.
#pragma once

#include <string>
#include <vector>

#include "voice/voice.h"

namespace dself::voice::detail {

// Speech straight from espeak-ng at kSampleRate: `text` is said as given (numbers and
// abbreviations already written out), punctuation giving the pauses. Holds espeak-ng's lock.
Utterance espeak_say(const std::string& voice, int pitch, int words_per_minute, const std::string& text);

// espeak-ng's pitch parameter (0..100, 50 the voice's own) that brings `voice` closest to
// target_hz, measured (and cached per process) by saying a fixed sentence at a few settings.
int espeak_pitch_for(const std::string& voice, double target_hz);

}  // namespace dself::voice::detail
