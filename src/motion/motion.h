// How the avatar's face moves while it speaks (DESIGN.md §1, use): phones with times -> 68
// landmarks per output frame. `Motion` is the interface trained audio->face models plug into;
// the first engine is the person's own viseme motion, learned from their aligned phones and face
// track by `prepare`'s outputs alone.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <opencv2/core.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "face/face.h"
#include "speech/speech.h"

namespace dself::motion {

using Landmarks = std::array<cv::Point2f, face::kLandmarkCount>;

// The head's rigid motion about the person's rest pose, in the canonical face frame
// (face::TrackOptions::canonical_size pixels square): turned by roll_deg about the face's centre
// (the canonical nose tip, (0.5, 0.57) x size), scaled about it, then shifted.
struct HeadMotion {
  float roll_deg = 0;
  float scale = 1;
  float shift_x = 0;  // canonical pixels
  float shift_y = 0;
};

// One output frame's face: the 68 landmarks in the canonical face frame (the face frontal and
// still; mouth, jaw and eyelids moving) and the head's motion on top of it.
struct FacePose {
  Landmarks points{};
  HeadMotion head;
};

// The landmarks with the head's motion applied (still in the canonical frame).
Landmarks with_head_motion(const FacePose& pose, int canonical_size);

class Motion {
 public:
  virtual ~Motion() = default;
  virtual std::string name() const = 0;
  // Frames at `fps` covering [0, duration_s) of speech whose phones (times from 0) are given;
  // `audio_16k` is the speech itself, for engines that listen. Consecutive calls continue one
  // another (head motion and blinks carry on across sentences, no jump); reset() starts over.
  virtual std::vector<FacePose> animate(const std::vector<speech::TimedPhone>& phones,
                                        std::span<const float> audio_16k, double duration_s, double fps) = 0;
  // Frames of silence (mouth closed and relaxed, still blinking and moving the head).
  virtual std::vector<FacePose> idle(int frame_count, double fps) = 0;
  virtual void reset() = 0;
};

// ---------------------------------------------------------------------------------------------
// The person-specific viseme motion

struct VisemeOptions {
  double coarticulation_s = 0.08;     // how far a phone's shape reaches into its neighbours
  double blinks_per_minute = 0;       // 0: the person's own rate, measured on their face track
  double max_speed_iod_per_s = 4.0;   // fastest a landmark may move (no popping), IODs per second
  double head_crossfade_s = 0.6;      // blend time when one stretch of real head motion hands over
  uint64_t seed = 1;                  // which stretches of the person's head motion and blinks are used
};

// The viseme class of an ARPAbet phone (lower case; stress digits ignored): "sil", "pbm", "fv",
// "th", "tdnl", "kg", "sz", "sh", "r", "wuw", "iy", "eh", "aa", "ao". Silence ("sil", "pau", "")
// and unknown phones: "sil" and "tdnl" respectively. The table is in docs/FORMATS.md.
std::string viseme_class(std::string_view phone);

// What is learned from the person (shared, read-only; one per avatar, many Motion streams):
// the mouth and jaw shape of each viseme class and of rest, their blink rate and shape, and their
// real head-motion trajectories.
class VisemeModel;

// Learns the model from every prepared source (speech/<id>/utterances.json, train split only,
// and faces/<id>/landmarks.bin). Throws InputError naming the `prepare` step to run when the
// avatar has no speech dataset or face track, or too few aligned frames to learn from.
std::shared_ptr<const VisemeModel> learn_viseme_model(const std::filesystem::path& avatar);

// A motion stream on a learned model.
std::unique_ptr<Motion> make_viseme_motion(std::shared_ptr<const VisemeModel> model, const VisemeOptions& options = {});

// The person's rest face (mouth closed, relaxed) in the canonical frame.
const Landmarks& rest_face(const VisemeModel& model);

// The mouth and jaw (0-16, 48-67) the model learned for a viseme class (see viseme_class), on
// the rest face's brows, eyes and nose. Throws InputError for an unknown class name.
Landmarks viseme_face(const VisemeModel& model, std::string_view viseme);

// What was learned, for metrics.json and the report: frames and samples used per class, the
// blink rate and length found, the head-motion stretches kept.
nlohmann::json model_summary(const VisemeModel& model);

// Held-out evaluation on the avatar's own data: for every held-out utterance, the viseme motion
// driven by its aligned phones against the person's tracked landmarks on those frames (landmark
// distance in % IOD over the mouth and jaw, mouth-opening correlation); with `truth_dir` (a
// sample person's --out directory) also against the commanded (true) landmarks. JSON fields in
// docs/FORMATS.md.
nlohmann::json evaluate_motion(const std::filesystem::path& avatar, const std::filesystem::path& truth_dir = {});

}  // namespace dself::motion
