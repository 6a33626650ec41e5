// What each video says and when: sentences picked from the monologue, spoken by the voice,
// laid end to end with pauses on one timeline.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "sample/detail/monologue.h"
#include "sample/detail/speech.h"

namespace dself::sample {

constexpr int kFps = 25;                              // frames per second of every video
constexpr int kSamplesPerFrame = kSampleRate / kFps;  // audio samples per video frame

// Who says a sentence or is on screen in the hard sample (the default sample has the host only).
enum class Speaker { host, guest };

// A stretch of the video in one framing (the hard sample; see detail/interview.h).
enum class ShotKind {
  intro,     // b-roll under music, before anyone speaks
  host,      // the host's face
  guest,     // the guest's face (a cut-away)
  two_shot,  // both faces side by side
  broll,     // pictures without a face
};

struct Shot {
  int64_t start_frame = 0;
  int64_t end_frame = 0;    // exclusive
  ShotKind kind = ShotKind::host;
  int64_t fade_frames = 0;  // a dissolve from the shot before over this shot's first frames (0: a cut)
};

struct Interval {
  double start_s = 0;
  double end_s = 0;
};

struct SpokenSentence {
  std::string text;
  std::string topic;
  int64_t start_sample = 0;  // where its audio starts in the video
  int64_t sample_count = 0;  // length of its audio, leading and trailing silence included
  std::vector<Word> words;   // times from the start of the video
  Speaker speaker = Speaker::host;
  double start_s() const { return words.empty() ? 0 : words.front().start_s; }
  double end_s() const { return words.empty() ? 0 : words.back().end_s; }
};

struct SpokenVideo {
  int index = 0;
  std::string name;   // file stem, "video_000"
  std::string title;  // from its first topic
  std::vector<SpokenSentence> sentences;
  std::vector<Phone> phones;  // every phone from 0 to the end, silences ("pau") included
  // The hard sample only (empty otherwise): the guest's phones on the same timeline (the host's
  // are silent where the guest speaks), the shots and the music under the intro.
  std::vector<Phone> guest_phones;
  std::vector<Shot> shots;
  std::vector<Interval> music;
  int64_t frame_count = 0;    // the audio is exactly frame_count * kSamplesPerFrame samples
  int64_t sample_count() const { return frame_count * kSamplesPerFrame; }
  double duration_s() const { return static_cast<double>(frame_count) / kFps; }
};

// Plans video_count videos of about seconds_per_video each. Video v starts on topic
// (r + v) mod T (r drawn from the seed) with that topic's greeting, goes on through the
// topic's body in order (then the next topic's) from where earlier videos left off, and ends
// with the sign-off of the topic it ends in; a sentence is added only while that keeps the
// video nearer to the target length. Pauses of 0.3-0.7 s (seeded) separate sentences.
std::vector<SpokenVideo> plan_videos(const std::vector<Topic>& topics, const Voice& voice, int video_count,
                                     double seconds_per_video, uint64_t seed);

// A video's audio, made again sentence by sentence as it is needed (flite is deterministic and
// fast), so that memory stays flat however long the video.
class SpeechTrack {
 public:
  // guest: the voice of the sentences the guest says (the hard sample), else null.
  SpeechTrack(const SpokenVideo& video, const Voice& voice, const Voice* guest = nullptr);
  // The next `count` samples (fewer at the end of the video).
  std::span<const float> next(int64_t count);

 private:
  const SpokenVideo& video_;
  const Voice& voice_;
  const Voice* guest_;
  int64_t position_ = 0;
  size_t sentence_ = 0;       // the first sentence that has not ended before position_
  size_t loaded_ = SIZE_MAX;  // the sentence whose samples are in audio_
  std::vector<float> audio_;
  std::vector<float> chunk_;
};

}  // namespace dself::sample
