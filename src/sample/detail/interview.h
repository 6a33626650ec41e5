// The hard sample person (issue 15): the host's monologue made into an interview. A guest
// (another portrait, another flite voice) puts questions between the host's sentences; the
// picture cuts between the host, cut-aways to the guest, two-shots and b-roll without faces;
// an intro of music over b-roll dissolves into the first shot, and the music goes on under
// the host's first sentence. The truth says who is on screen and who speaks at every frame.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <opencv2/core.hpp>

#include "sample/detail/motion.h"
#include "sample/detail/portrait.h"
#include "sample/detail/render.h"
#include "sample/detail/script.h"

namespace dself::sample {

constexpr double kIntroS = 2.0;        // music over b-roll before anyone speaks
constexpr int64_t kIntroFadeFrames = 12;  // the intro dissolves into the first shot
constexpr int64_t kBrollFadeFrames = 8;   // shots of b-roll dissolve in

const char* shot_kind_name(ShotKind kind);

// The planned host video made into an interview: guest lines inserted between the host's
// sentences (at least one when the host says two or more), the intro, the shots (changing in
// the pauses between sentences) and the music. Seeded: the same seed gives the same interview.
SpokenVideo interview_video(const SpokenVideo& planned, const Voice& host, const Voice& guest, uint64_t seed);

// The music bed: seeded chords (sines with a few harmonics, a bass note), faded in and out at
// the ends of each of the video's music intervals.
class MusicBed {
 public:
  MusicBed(const SpokenVideo& video, uint64_t seed);
  // Adds the music to `chunk`, whose first sample is the video's sample `first_sample`.
  void mix(std::span<float> chunk, int64_t first_sample) const;

 private:
  const SpokenVideo& video_;
  size_t first_chord_ = 0;
};

// Who is on screen in one frame, in frame pixels (the truth).
struct OnScreen {
  std::optional<Landmarks> host;
  std::optional<Landmarks> guest;
};

// Draws the hard sample's frames: each person by their own renderer, then framed as the shot
// wants (whole, half of a two-shot, or not at all), dissolves blended.
class Compositor {
 public:
  // Throws EnvironmentError when the b-roll pictures (Debian's opencv-doc) are missing.
  Compositor(const Portrait& host, const Portrait& guest, uint64_t seed);
  // The frame (valid until the next call) and who is on it.
  const cv::Mat& frame(const SpokenVideo& video, int64_t frame, const Pose& host, const Pose& guest, OnScreen& truth);

 private:
  cv::Mat draw(const Shot& shot, size_t shot_index, int64_t frame, const Pose& host, const Pose& guest,
               OnScreen& truth);
  cv::Mat broll(size_t shot_index, const Shot& shot, int64_t frame) const;

  Renderer host_;
  Renderer guest_;
  int size_;
  uint64_t seed_;
  std::vector<cv::Mat> pictures_;
  cv::Mat frame_;
};

}  // namespace dself::sample
