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

// Self-reenactment on held-out real frames: renders them from their own tracked landmarks with a
// model whose library excludes them, and compares with the real frames over the face region
// (PSNR in dB, SSIM). JSON fields in docs/FORMATS.md.
nlohmann::json evaluate_reenactment(const std::filesystem::path& avatar, int frame_count = 100);

}  // namespace dself::render
