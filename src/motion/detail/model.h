// Inside the viseme motion: what the model holds, and the coarticulation both learning and
// synthesis use (so the targets are fitted to the very blend that plays them back).
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "face/face_track.h"
#include "motion/motion.h"

namespace dself::motion {

// The points a viseme moves: the jaw (0-16) and the mouth (48-67).
constexpr int kShapePointCount = 37;
constexpr std::array<int, kShapePointCount> kShapePoints = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                                            13, 14, 15, 16, 48, 49, 50, 51, 52, 53, 54, 55, 56,
                                                            57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67};
using Shape = std::array<cv::Point2f, kShapePointCount>;

// The eyelids' points (36-47) that a blink moves.
constexpr int kEyeFirst = 36;
constexpr int kEyeCount = 12;

// Viseme classes; index 0 is silence, whose target is always the rest face.
enum Viseme : int { kSil, kPbm, kFv, kTh, kTdnl, kKg, kSz, kSh, kR, kWuw, kIy, kEh, kAa, kAo, kVisemeCount };

struct VisemeInfo {
  const char* name;
  double dominance;  // how strongly the class holds its shape against its neighbours
};
const VisemeInfo& viseme_info(int viseme);
int viseme_of(std::string_view phone);

// A phone reduced to what the blend needs.
struct Segment {
  int viseme = kSil;
  double start_s = 0;
  double end_s = 0;
};

// The phones in time order with gaps filled by silence and silence reaching far before the first
// and after the last, so every moment has a nearest segment.
std::vector<Segment> segments_of(const std::vector<speech::TimedPhone>& phones);

// The share of each class's target in the shape at time t: Cohen-Massaro dominance blending,
// with bilabials closing the lips outright near their own span. Sums to 1. `first` is a search
// hint (index into segments) that the caller keeps as t advances.
std::array<double, kVisemeCount> blend_weights(const std::vector<Segment>& segments, double t, double coarticulation_s,
                                               size_t& first);

// A stretch of the person's real head motion, sampled at the track's frame rate.
struct HeadRun {
  double fps = 25;
  std::vector<HeadMotion> frames;
  double duration_s() const { return static_cast<double>(frames.size()) / fps; }
  HeadMotion at(double t) const;  // linear between frames, held at the ends
};

class VisemeModel {
 public:
  int canonical_size = 256;
  Landmarks rest{};                             // the whole rest face
  std::array<Shape, kVisemeCount> targets{};    // per class: jaw and mouth; targets[kSil] is the rest's
  std::array<int, kVisemeCount> samples{};      // phone centres seen per class (train split)
  double coarticulation_s = 0.08;               // the blend the targets were fitted under
  int train_utterances = 0;
  int train_frames = 0;                         // frames the targets were fitted to
  int rest_frames = 0;                          // frames the rest face's mouth is the median of
  int source_count = 0;

  bool blinks_measured = false;                 // false: the typical rate and shape below are used
  int blink_count = 0;
  double blinks_per_minute = 15;
  double blink_duration_s = 0.2;
  std::array<cv::Point2f, kEyeCount> blink_closed{};  // eyelid offsets from rest at the blink's deepest

  std::vector<HeadRun> head_runs;               // each relative to its source's median pose
};

Shape shape_of(const Landmarks& points);
void put_shape(Landmarks& points, const Shape& shape);

// Image pixels -> the canonical frame.
Landmarks to_canonical(const face::TrackedFrame& frame);

}  // namespace dself::motion
