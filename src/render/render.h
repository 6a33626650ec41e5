// Drawing the avatar (DESIGN.md §1, use): a face pose -> a photoreal frame of the person.
// `Renderer` is the interface; the first engine is sample-based: a reference frame of the person
// with real mouth-region crops of them, chosen to match the target shape, warped onto it and
// blended in. Teeth and tongue always come from real crops.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <vector>

#include "motion/motion.h"

namespace dself::render {

class Renderer {
 public:
  virtual ~Renderer() = default;
  virtual std::string name() const = 0;
  virtual cv::Size frame_size() const = 0;
  // The frame (8-bit BGR, frame_size()) for a pose; valid until the next call. Consecutive calls
  // are consecutive frames (the crop choice is kept steady over time); reset() starts over.
  virtual const cv::Mat& render(const motion::FacePose& pose) = 0;
  // Where the pose's landmarks are drawn in the frame's pixels (what a re-detection should find).
  virtual motion::Landmarks frame_landmarks(const motion::FacePose& pose) const = 0;
  virtual void reset() = 0;
};

struct PhotorealOptions {
  int size = 512;              // output frame width = height, pixels, around the head
  int max_crops = 400;         // mouth crops kept in the library
  double temporal_weight = 1;  // cost of switching crops between frames, against shape mismatch
  std::vector<std::pair<int64_t, std::pair<double, double>>> exclude;  // (source id, [start_s, end_s)):
                                                                       // frames never used (held out)
};

// The person's crop library and reference frame (shared, read-only; many Renderers). Built from
// the prepared sources' videos and face tracks; kept in <avatar>/models/render/ and rebuilt only
// when the face tracks or options change. Throws InputError naming the `prepare` step to run when
// the avatar has no face track or too few usable frames.
class PhotorealModel;
std::shared_ptr<const PhotorealModel> load_photoreal_model(const std::filesystem::path& avatar,
                                                           const PhotorealOptions& options = {});

std::unique_ptr<Renderer> make_photoreal_renderer(std::shared_ptr<const PhotorealModel> model);

// What the model holds, for metrics.json and the report: the reference (source, frame, time), the
// output crop, the mouth and eye crops kept, the usable frames they were chosen from.
nlohmann::json describe(const PhotorealModel& model);

// Lip sync by re-detection (DESIGN.md §4): renders the poses in order (after reset()), finds the face
// on each frame with dlib and compares its mouth landmarks (48-67) with frame_landmarks(). JSON:
// {"frames", "face_found_share", "mouth_error_iod_pct", "landmark_error_iod_pct", "opening_correlation"}
// (errors as mean point distance in % of the commanded inter-ocular distance, over frames found;
// opening: inner-lip opening, commanded against re-detected). Leaves the renderer reset.
nlohmann::json evaluate_lip_sync(Renderer& renderer, const std::vector<motion::FacePose>& poses);

// Self-reenactment on held-out real frames: renders them from their own tracked landmarks with a
// model whose library excludes them (the last 20% of each source; built in memory, not saved), and
// compares with the real frames over the face region (PSNR in dB, SSIM). JSON fields in
// docs/FORMATS.md.
nlohmann::json evaluate_reenactment(const std::filesystem::path& avatar, int frame_count = 100);

}  // namespace dself::render
