// The photoreal renderer: the reference frame with its lower face warped to the target jaw, a
// real mouth crop (and, for blinks, a real eye crop) warped onto the target and blended in, then
// the head's motion as one affine warp of the frame.
#include <cmath>
#include <limits>

#include <opencv2/imgproc.hpp>

#include "render/detail/model.h"
#include "render/detail/warp.h"

namespace dself::render {
namespace {

// Cost of changing crops between frames, in IODs of mean point distance (times temporal_weight):
// a crop is kept until another fits the target this much better, so the texture does not flicker.
constexpr double kMouthSwitchCost = 0.015;
constexpr double kEyeSwitchCost = 0.01;
// Frames over which a new mouth crop fades in over the old one.
constexpr int kFadeFrames = 2;
// Eyes are only replaced when the target's are this much less open than the reference's.
constexpr double kBlinkRatio = 0.8;

// The head's motion about the canonical nose tip (motion.h's HeadMotion), in canonical pixels.
cv::Matx23d head_matrix(const motion::HeadMotion& head, int canonical_size) {
  const double px = 0.5 * canonical_size, py = 0.57 * canonical_size;
  double angle = head.roll_deg * CV_PI / 180;
  double c = head.scale * std::cos(angle), s = head.scale * std::sin(angle);
  return {c, -s, px - c * px + s * py + head.shift_x, s, c, py - s * px - c * py + head.shift_y};
}

bool is_identity(const motion::HeadMotion& head) {
  return head.roll_deg == 0 && head.scale == 1 && head.shift_x == 0 && head.shift_y == 0;
}

double mouth_distance(const Landmarks& a, const Landmarks& b) {
  cv::Point2f ca = face::centroid(a, 48, 68), cb = face::centroid(b, 48, 68);
  double sum = 0, weights = 0;
  for (int i = 48; i < 68; ++i) {
    double w = i >= 60 ? 1.5 : 1.0;
    sum += w * cv::norm((a[i] - ca) - (b[i] - cb));
    weights += w;
  }
  return sum / weights;
}

double eye_distance(const Landmarks& a, const Landmarks& b) {
  auto open = [](const Landmarks& p, int first) {
    return (cv::norm(p[first + 1] - p[first + 5]) + cv::norm(p[first + 2] - p[first + 4])) / 2;
  };
  return (std::abs(open(a, 36) - open(b, 36)) + std::abs(open(a, 42) - open(b, 42))) / 2;
}

class PhotorealRenderer : public Renderer {
 public:
  explicit PhotorealRenderer(std::shared_ptr<const PhotorealModel> model)
      : model_(std::move(model)), to_output_(canonical_to_output(*model_)), from_output_(invert(to_output_)) {}

  std::string name() const override { return "photoreal"; }
  cv::Size frame_size() const override { return {model_->options.size, model_->options.size}; }

  const cv::Mat& render(const motion::FacePose& pose) override {
    const PhotorealModel& m = *model_;
    Landmarks target;
    for (int i = 0; i < face::kLandmarkCount; ++i) target[i] = apply(to_output_, pose.points[i]);
    m.reference.copyTo(frame_);
    warp_jaw(target);
    int chosen = choose(m.mouth, target, mouth_, kMouthSwitchCost, mouth_distance);
    if (chosen != mouth_) fade_from_ = mouth_, fade_left_ = mouth_ >= 0 ? kFadeFrames : 0;
    mouth_ = chosen;
    if (fade_left_ > 0 && fade_from_ >= 0) {
      // A change of crop is a short cross-fade, not a cut: the old crop under the new one.
      paste(m.mouth, m.mouth.crops[static_cast<size_t>(fade_from_)], target);
      paste(m.mouth, m.mouth.crops[static_cast<size_t>(mouth_)], target, 255 * (kFadeFrames + 1 - fade_left_) / (kFadeFrames + 1));
      --fade_left_;
    } else if (mouth_ >= 0) {
      paste(m.mouth, m.mouth.crops[static_cast<size_t>(mouth_)], target);
    }
    if (eye_opening(target) < kBlinkRatio * m.reference_eye_opening && !m.eyes.crops.empty()) {
      eyes_ = choose(m.eyes, target, eyes_, kEyeSwitchCost, eye_distance);
      paste(m.eyes, m.eyes.crops[static_cast<size_t>(eyes_)], target);
    } else {
      eyes_ = -1;
    }
    if (is_identity(pose.head)) return frame_;
    cv::Matx23d head = compose(to_output_, compose(head_matrix(pose.head, kCanonicalSize), from_output_));
    cv::warpAffine(frame_, moved_, head, frame_.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    return moved_;
  }

  Landmarks frame_landmarks(const motion::FacePose& pose) const override {
    cv::Matx23d to_frame = compose(to_output_, head_matrix(pose.head, kCanonicalSize));
    Landmarks out;
    for (int i = 0; i < face::kLandmarkCount; ++i) out[i] = apply(to_frame, pose.points[i]);
    return out;
  }

  void reset() override { mouth_ = eyes_ = fade_from_ = -1, fade_left_ = 0; }

  int mouth_crop() const { return mouth_; }

 private:
  static constexpr int kCanonicalSize = 256;  // face::TrackOptions::canonical_size

  // The reference's jaw, cheeks, base of the nose and lips moved to the target's.
  void warp_jaw(const Landmarks& target) {
    const PhotorealModel& m = *model_;
    src_.clear(), dst_.clear();
    for (int i : m.jaw_indices) src_.push_back(m.reference_points[i]), dst_.push_back(target[i]);
    for (const cv::Point2f& a : m.jaw_anchors) src_.push_back(a), dst_.push_back(a);
    cv::Rect roi = bounds(dst_) & cv::Rect(0, 0, frame_.cols, frame_.rows);
    if (roi.empty()) return;
    piecewise_affine_map(src_, dst_, m.jaw_triangles, roi, {0, 0}, map_);
    cv::Mat out = frame_(roi);
    cv::remap(m.reference, out, map_, cv::noArray(), cv::INTER_LINEAR, cv::BORDER_TRANSPARENT);
  }

  // A crop warped onto the target's points and blended in through its feathered mask.
  void paste(const Part& part, const Crop& crop, const Landmarks& target, int strength = 255) {
    src_.clear(), dst_.clear();
    for (int i : part.indices) src_.push_back(crop.points[i]), dst_.push_back(target[i]);
    cv::Rect roi = bounds(dst_) & cv::Rect(0, 0, frame_.cols, frame_.rows);
    if (roi.empty()) return;
    piecewise_affine_map(src_, dst_, part.triangles, roi,
                         {static_cast<float>(part.rect.x), static_cast<float>(part.rect.y)}, map_);
    cv::remap(crop.image, warped_, map_, cv::noArray(), cv::INTER_LINEAR, cv::BORDER_CONSTANT, cv::Scalar::all(0));
    cv::Mat out = frame_(roi);
    blend(out, warped_, strength);
  }

  template <typename Distance>
  int choose(const Part& part, const Landmarks& target, int current, double switch_cost, Distance distance) const {
    if (part.crops.empty()) return -1;
    const double iod = model_->iod_px;
    int best = -1;
    double best_cost = std::numeric_limits<double>::max();
    for (size_t k = 0; k < part.crops.size(); ++k) {
      double cost = distance(part.crops[k].points, target) / iod;
      if (current >= 0 && static_cast<int>(k) != current) cost += model_->options.temporal_weight * switch_cost;
      if (cost < best_cost) best_cost = cost, best = static_cast<int>(k);
    }
    return best;
  }

  static cv::Rect bounds(const std::vector<cv::Point2f>& points) {
    cv::Rect2f r = cv::boundingRect(points);
    return cv::Rect(cv::Point(cvFloor(r.x) - 1, cvFloor(r.y) - 1), cv::Point(cvCeil(r.x + r.width) + 2, cvCeil(r.y + r.height) + 2));
  }

  std::shared_ptr<const PhotorealModel> model_;
  cv::Matx23d to_output_;
  cv::Matx23d from_output_;
  cv::Mat frame_, moved_, map_, warped_;
  std::vector<cv::Point2f> src_, dst_;
  int mouth_ = -1;
  int eyes_ = -1;
  int fade_from_ = -1;  // the mouth crop being faded out, and for how many more frames
  int fade_left_ = 0;
};

}  // namespace

int current_mouth_crop(const Renderer& renderer) {
  const auto* photoreal = dynamic_cast<const PhotorealRenderer*>(&renderer);
  return photoreal ? photoreal->mouth_crop() : -1;
}

std::unique_ptr<Renderer> make_photoreal_renderer(std::shared_ptr<const PhotorealModel> model) {
  return std::make_unique<PhotorealRenderer>(std::move(model));
}

}  // namespace dself::render
