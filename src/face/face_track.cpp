#include "face/face_track.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <opencv2/calib3d.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "face/identity.h"
#include "media/media.h"

namespace dself::face {
namespace {

using Points = std::array<cv::Point2f, kLandmarkCount>;

// ---------------------------------------------------------------------------------------------
// Geometry

cv::Rect2f landmark_box(const Points& p) {
  float x0 = p[0].x, y0 = p[0].y, x1 = x0, y1 = y0;
  for (const auto& q : p) {
    x0 = std::min(x0, q.x), y0 = std::min(y0, q.y), x1 = std::max(x1, q.x), y1 = std::max(y1, q.y);
  }
  return {x0, y0, x1 - x0, y1 - y0};
}

double iou(const cv::Rect2f& a, const cv::Rect2f& b) {
  double inter = (a & b).area();
  double uni = a.area() + b.area() - inter;
  return uni > 0 ? inter / uni : 0;
}

// Least-squares similarity (rotation, uniform scale, translation) taking src onto dst.
// ref: Umeyama 1991, "Least-squares estimation of transformation parameters", 2-D case.
Similarity fit_similarity(const std::vector<cv::Point2f>& src, const std::vector<cv::Point2f>& dst) {
  cv::Point2f ms(0, 0), md(0, 0);
  for (size_t i = 0; i < src.size(); ++i) ms += src[i], md += dst[i];
  ms *= 1.0f / src.size(), md *= 1.0f / dst.size();
  double sxx = 0, sxy = 0, norm = 0;
  for (size_t i = 0; i < src.size(); ++i) {
    cv::Point2f s = src[i] - ms, d = dst[i] - md;
    sxx += s.x * d.x + s.y * d.y;
    sxy += s.x * d.y - s.y * d.x;
    norm += s.x * s.x + s.y * s.y;
  }
  Similarity t;
  t.a = static_cast<float>(sxx / norm);
  t.b = static_cast<float>(sxy / norm);
  t.tx = md.x - (t.a * ms.x - t.b * ms.y);
  t.ty = md.y - (t.b * ms.x + t.a * ms.y);
  return t;
}

cv::Point2f apply(const Similarity& t, cv::Point2f p) { return {t.a * p.x - t.b * p.y + t.tx, t.b * p.x + t.a * p.y + t.ty}; }

// The canonical face frame: eye centres and nose tip at fixed places in a size x size square.
Similarity to_canonical(const Points& p, int size) {
  std::vector<cv::Point2f> src = {centroid(p, 36, 42), centroid(p, 42, 48), p[30]};
  std::vector<cv::Point2f> dst = {{0.35f * size, 0.40f * size}, {0.65f * size, 0.40f * size}, {0.5f * size, 0.57f * size}};
  return fit_similarity(src, dst);
}

// Head pose from six landmarks and a generic face (millimetres; x right, y down, z away from the
// camera, nose tip at the origin), with a pinhole camera whose focal length is the image width.
HeadPose head_pose(const Points& p, int width, int height) {
  static const std::vector<cv::Point3f> model = {{0, 0, 0},          {0, 63.6f, 12.5f},      {-43.3f, -32.7f, 26},
                                                 {43.3f, -32.7f, 26}, {-28.9f, 28.9f, 24.1f}, {28.9f, 28.9f, 24.1f}};
  std::vector<cv::Point2f> image = {p[30], p[8], p[36], p[45], p[48], p[54]};
  cv::Matx33d camera(width, 0, width / 2.0, 0, width, height / 2.0, 0, 0, 1);
  // Start from a face looking at the camera at the distance its eye span implies; without the
  // guess the solver sometimes lands on the mirrored solution behind the camera.
  double eye_span_px = std::max(1.0, cv::norm(p[45] - p[36]));
  cv::Vec3d rvec(0, 0, 0);
  cv::Vec3d tvec((p[30].x - width / 2.0) * 86.6 / eye_span_px, (p[30].y - height / 2.0) * 86.6 / eye_span_px,
                 width * 86.6 / eye_span_px);
  if (!cv::solvePnP(model, image, camera, cv::noArray(), rvec, tvec, true)) return {};
  cv::Matx33d rotation;
  cv::Rodrigues(rvec, rotation);
  cv::Matx33d r, q;
  cv::Vec3d euler = cv::RQDecomp3x3(rotation, r, q);
  return {static_cast<float>(euler[1]), static_cast<float>(euler[0]), static_cast<float>(euler[2])};
}

// The shape predictor was trained on the HOG detector's boxes and is sensitive to where the box
// sits. A tracked frame's box is placed from the previous frame's eyes (their centre, distance
// and angle), with the box's size and offset relative to the eyes averaged over every detection
// so far: one detection's quantised box would bias a whole stretch, and a box that followed the
// jaw and lips would feed their motion back into the fit.
class BoxTracker {
 public:
  void detected(const cv::Rect& box, const Points& points) {
    Eyes e = eyes(points);
    cv::Point2f centre(box.x + box.width / 2.0f, box.y + box.height / 2.0f);
    cv::Point2f d = centre - e.middle;
    // The offset in the eyes' own frame (x along the eye line), in units of their distance.
    float along = (d.x * e.cos + d.y * e.sin) / e.distance, across = (-d.x * e.sin + d.y * e.cos) / e.distance;
    ++count_;
    size_ += (box.width / e.distance - size_) / count_;
    along_ += (along - along_) / count_;
    across_ += (across - across_) / count_;
  }
  cv::Rect follow(const Points& previous) const {
    Eyes e = eyes(previous);
    cv::Point2f centre = e.middle + cv::Point2f((along_ * e.cos - across_ * e.sin) * e.distance,
                                                (along_ * e.sin + across_ * e.cos) * e.distance);
    float side = size_ * e.distance;
    return cv::Rect(cvRound(centre.x - side / 2), cvRound(centre.y - side / 2), cvRound(side), cvRound(side));
  }

 private:
  struct Eyes {
    cv::Point2f middle;
    float distance, cos, sin;
  };
  static Eyes eyes(const Points& p) {
    cv::Point2f left = centroid(p, 36, 42), right = centroid(p, 42, 48);
    cv::Point2f d = right - left;
    float distance = std::max(1.0f, static_cast<float>(cv::norm(d)));
    return {(left + right) * 0.5f, distance, d.x / distance, d.y / distance};
  }
  int count_ = 0;
  float size_ = 0, along_ = 0, across_ = 0;
};

float mouth_opening(const Points& p, float iod) { return static_cast<float>(cv::norm(p[62] - p[66]) / iod); }
float mouth_width(const Points& p, float iod) { return static_cast<float>(cv::norm(p[48] - p[54]) / iod); }

// Eye aspect ratio, mean of both eyes: lid distance over eye width (about 0.3 open, under 0.15 shut).
float eye_openness(const Points& p) {
  auto ear = [&](int o) {
    return (cv::norm(p[o + 1] - p[o + 5]) + cv::norm(p[o + 2] - p[o + 4])) / (2 * cv::norm(p[o] - p[o + 3]) + 1e-6);
  };
  return static_cast<float>((ear(36) + ear(42)) / 2);
}

float sharpness(const cv::Mat& gray, const cv::Rect& box) {
  cv::Rect inside = box & cv::Rect(0, 0, gray.cols, gray.rows);
  if (inside.area() < 16) return 0;
  cv::Mat laplacian;
  cv::Laplacian(gray(inside), laplacian, CV_32F);
  cv::Scalar mean, stddev;
  cv::meanStdDev(laplacian, mean, stddev);
  return static_cast<float>(stddev[0] * stddev[0]);
}

// ---------------------------------------------------------------------------------------------
// Keeping references and mouth crops while streaming: bounded, whatever the video's length.

class ReferencePicker {
 public:
  ReferencePicker(int count, int64_t frame_count) : count_(count), frame_count_(std::max<int64_t>(frame_count, 1)) {}
  void offer(const media::VideoFrame& frame, const TrackedFrame& tracked) {
    if ((tracked.flags & (kFaceFound | kSmall | kNotFrontal | kBlurry)) != kFaceFound) return;
    if (mouth_opening(tracked.points, tracked.iod_px) > 0.05f || eye_openness(tracked.points) < 0.2f) return;
    double score = tracked.sharpness * (1 - std::abs(tracked.pose.yaw_deg) / 45.0) * (1 - std::abs(tracked.pose.pitch_deg) / 45.0);
    int64_t segment = std::min<int64_t>(count_ - 1, frame.index * count_ / frame_count_);
    auto& best = best_[segment];
    if (best.image.empty() || score > scores_[segment]) {
      best = ReferenceFrame{frame.index, frame.time_s, frame.bgr.clone(), tracked.points};
      scores_[segment] = score;
    }
  }
  std::vector<ReferenceFrame> take() {
    std::vector<ReferenceFrame> result;
    for (auto& [segment, reference] : best_) result.push_back(std::move(reference));
    return result;
  }

 private:
  int count_;
  int64_t frame_count_;
  std::map<int64_t, ReferenceFrame> best_;
  std::map<int64_t, double> scores_;
};

// Mouth shapes binned by opening and width (both over IOD); each bin keeps its sharpest crops,
// so rare shapes (wide open, rounded) are kept as well as the common closed mouth.
class MouthCollector {
 public:
  explicit MouthCollector(const TrackOptions& options)
      : options_(options), per_bin_(std::max(1, options.max_mouth_crops / 24)) {}
  void offer(const media::VideoFrame& frame, const TrackedFrame& tracked) {
    if ((tracked.flags & (kFaceFound | kSmall | kNotFrontal | kBlurry)) != kFaceFound) return;
    float opening = mouth_opening(tracked.points, tracked.iod_px);
    float width = mouth_width(tracked.points, tracked.iod_px);
    int open_bin = std::clamp(static_cast<int>(opening / 0.05f), 0, 7);
    int width_bin = std::clamp(static_cast<int>((width - 0.6f) / 0.15f), 0, 3);
    auto& bin = bins_[open_bin * 4 + width_bin];
    if (static_cast<int>(bin.size()) >= per_bin_ && tracked.sharpness <= bin.back().first) return;
    bin.push_back({tracked.sharpness, crop(frame, tracked, opening, width)});
    std::sort(bin.begin(), bin.end(), [](const auto& x, const auto& y) { return x.first > y.first; });
    if (static_cast<int>(bin.size()) > per_bin_) bin.pop_back();
  }
  std::vector<MouthCrop> take() {
    std::vector<MouthCrop> result;
    for (auto& [key, bin] : bins_) {
      for (auto& [score, crop] : bin) result.push_back(std::move(crop));
    }
    std::sort(result.begin(), result.end(), [](const auto& a, const auto& b) { return a.opening < b.opening; });
    if (static_cast<int>(result.size()) > options_.max_mouth_crops) result.resize(options_.max_mouth_crops);
    return result;
  }

 private:
  // The crop is cut in the canonical frame (so every crop has the same scale and roll), centred
  // on the mouth.
  MouthCrop crop(const media::VideoFrame& frame, const TrackedFrame& tracked, float opening, float width) const {
    const Similarity& t = tracked.to_canonical;
    cv::Point2f centre(0, 0);
    for (int i = 48; i < 68; ++i) centre += apply(t, tracked.points[i]);
    centre *= 1.0f / 20;
    cv::Size size = options_.mouth_crop_size;
    cv::Matx23f affine(t.a, -t.b, t.tx - centre.x + size.width / 2.0f, t.b, t.a, t.ty - centre.y + size.height / 2.0f);
    MouthCrop crop;
    crop.frame = frame.index;
    cv::warpAffine(frame.bgr, crop.image, affine, size, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
    for (int i = 48; i < 68; ++i) {
      cv::Point2f q = apply(t, tracked.points[i]);
      crop.points[i - 48] = {q.x - centre.x + size.width / 2.0f, q.y - centre.y + size.height / 2.0f};
    }
    crop.opening = opening;
    crop.width = width;
    return crop;
  }

  const TrackOptions& options_;
  int per_bin_;
  std::map<int, std::vector<std::pair<float, MouthCrop>>> bins_;
};

// Centred (lag-free) Gaussian smoothing of landmarks within runs of found frames; the mouth's
// points get a narrower window so that quick lip movements keep their timing.
void smooth(std::vector<TrackedFrame>& frames, int radius) {
  if (radius <= 0) return;
  std::vector<Points> raw;
  raw.reserve(frames.size());
  for (const auto& f : frames) raw.push_back(f.points);
  auto found = [&](int64_t i) { return i >= 0 && i < static_cast<int64_t>(frames.size()) && (frames[i].flags & kFaceFound); };
  for (int64_t i = 0; i < static_cast<int64_t>(frames.size()); ++i) {
    if (!found(i)) continue;
    for (int k = 0; k < kLandmarkCount; ++k) {
      int r = k >= 48 ? std::min(radius, 1) : radius;
      double sigma = std::max(0.5, r / 1.5);
      cv::Point2d sum(0, 0);
      double weights = 0;
      for (int d = -r; d <= r; ++d) {
        if (!found(i + d)) continue;
        double w = std::exp(-0.5 * d * d / (sigma * sigma));
        sum += w * cv::Point2d(raw[i + d][k]);
        weights += w;
      }
      frames[i].points[k] = cv::Point2f(sum * (1.0 / weights));
    }
  }
}

// Flags and geometry that follow from the (smoothed) landmarks.
void describe_frame(TrackedFrame& f, int width, int height, const TrackOptions& options) {
  if (!(f.flags & kFaceFound)) return;
  f.iod_px = static_cast<float>(inter_ocular_distance(f.points));
  f.pose = head_pose(f.points, width, height);
  f.to_canonical = to_canonical(f.points, options.canonical_size);
  if (f.iod_px < options.min_iod_px) f.flags |= kSmall;
  if (std::abs(f.pose.yaw_deg) > options.max_yaw_deg || std::abs(f.pose.pitch_deg) > options.max_pitch_deg) {
    f.flags |= kNotFrontal;
  }
  if (f.sharpness < options.min_sharpness) f.flags |= kBlurry;
}

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

template <typename T>
T get(const std::string& in, size_t& at) {
  T value;
  std::memcpy(&value, in.data() + at, sizeof value);
  at += sizeof value;
  return value;
}

void write_png(const std::filesystem::path& path, const cv::Mat& image) {
  std::vector<uchar> png;
  cv::imencode(".png", image, png);
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

}  // namespace

double FaceTrack::found_share() const {
  if (frames.empty()) return 0;
  size_t found = std::count_if(frames.begin(), frames.end(), [](const auto& f) { return f.flags & kFaceFound; });
  return static_cast<double>(found) / static_cast<double>(frames.size());
}

namespace {

// ---------------------------------------------------------------------------------------------
// Shots: a colour signature per frame (hue x saturation and value histograms in each cell of a
// 4 x 4 grid over a 64 px thumbnail: where the colours are, not only which, so that a cut between
// two shots of one scene shows); a cut is a big jump between two frames, a dissolve a big change
// across a few frames made of many steady smaller ones. Measured in docs/FACES.md.

constexpr int kShotGrid = 4;
constexpr int64_t kMinShotFrames = 5;
constexpr int kCellBins = 16 * 4 + 8;
using Signature = std::array<float, kShotGrid * kShotGrid * kCellBins>;

Signature signature(const cv::Mat& bgr) {
  cv::Mat small, hsv;
  cv::resize(bgr, small, cv::Size(64, 64), 0, 0, cv::INTER_AREA);
  cv::cvtColor(small, hsv, cv::COLOR_BGR2HSV);
  Signature s{};
  const int cell = 64 / kShotGrid;
  for (int y = 0; y < hsv.rows; ++y) {
    for (int x = 0; x < hsv.cols; ++x) {
      const cv::Vec3b& v = hsv.at<cv::Vec3b>(y, x);
      float* h = s.data() + ((y / cell) * kShotGrid + x / cell) * kCellBins;
      h[std::min(15, v[0] * 16 / 180) * 4 + std::min(3, v[1] / 64)] += 1;
      h[64 + std::min(7, v[2] / 32)] += 1;
    }
  }
  for (float& value : s) value /= cell * cell;
  return s;
}

// Half the L1 distance of each histogram, averaged over histograms and cells: 0 the same, 1
// nothing in common.
float signature_distance(const Signature& a, const Signature& b) {
  float d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += std::abs(a[i] - b[i]);
  return d / (4 * kShotGrid * kShotGrid);
}

class ShotDetector {
 public:
  explicit ShotDetector(const ShotOptions& options) : options_(options) { shots_.push_back(Shot{}); }

  // Whether a shot change was found at this frame (a cut here, or a dissolve ending here).
  bool observe(const cv::Mat& bgr, int64_t index) {
    Signature now = signature(bgr);
    float step = recent_.empty() ? 0 : signature_distance(recent_.back(), now);
    steps_.push_back(step);
    recent_.push_back(now);
    if (static_cast<int>(recent_.size()) > options_.dissolve_span + 1) recent_.pop_front(), steps_.pop_front();
    if (step > options_.cut_distance) {
      // Jumps a few frames apart are one quick dissolve, not shots of a frame or two.
      Shot& current = shots_.back();
      if (shots_.size() > 1 && index - current.start_frame < kMinShotFrames) {
        current.fade_frames = index - current.start_frame + 1;
      } else {
        start_shot(index, 0);
      }
      recent_.assign(1, now);
      steps_.assign(1, 0.0f);
      return true;
    }
    int span = options_.dissolve_span;
    if (static_cast<int>(recent_.size()) == span + 1 && index - shots_.back().start_frame > 2 * span) {
      int moving = 0;
      for (size_t i = 1; i < steps_.size(); ++i) moving += steps_[i] >= options_.dissolve_step ? 1 : 0;
      if (signature_distance(recent_.front(), recent_.back()) > options_.dissolve_distance && moving * 10 >= span * 7) {
        start_shot(index - span, span + 1);
        recent_.assign(1, now);
        steps_.assign(1, 0.0f);
        return true;
      }
    }
    return false;
  }

  // The shot the latest frame is in (an index into the shots found so far).
  int current() const { return static_cast<int>(shots_.size()) - 1; }

  std::vector<Shot> finish(int64_t frame_count) {
    shots_.back().end_frame = frame_count;
    return shots_;
  }

 private:
  void start_shot(int64_t start, int64_t fade) {
    shots_.back().end_frame = start;
    shots_.push_back(Shot{start, start, fade});
  }

  ShotOptions options_;
  std::deque<Signature> recent_;
  std::deque<float> steps_;
  std::vector<Shot> shots_;
};

int shot_of(const std::vector<Shot>& shots, int64_t frame) {
  auto it = std::upper_bound(shots.begin(), shots.end(), frame, [](int64_t f, const Shot& s) { return f < s.start_frame; });
  return static_cast<int>(std::max<std::ptrdiff_t>(0, it - shots.begin() - 1));
}

// A face being followed while the frames stream by.
struct LiveTrack {
  size_t track = 0;  // index into the tracks found so far
  BoxTracker box;
  Points previous{};
  int since_detection = 0;
  std::vector<float> look;  // appearance at the last detection: a fit that drifts from it is lost
};

// Appearance sampled while streaming, summed per (track, shot): a dissolve found a few frames
// late splits a track afterwards, and each piece keeps its own appearance.
struct Appearance {
  std::vector<double> sum;
  int count = 0;
  float best_sharpness = -1;
  cv::Mat thumbnail;
};

cv::Mat canonical_thumbnail(const cv::Mat& bgr, const Points& points, int size) {
  Similarity t = to_canonical(points, size);
  cv::Matx23f affine(t.a, -t.b, t.tx, t.b, t.a, t.ty);
  cv::Mat out;
  cv::warpAffine(bgr, out, affine, cv::Size(size, size), cv::INTER_AREA, cv::BORDER_REPLICATE);
  return out;
}

// Splits tracks where a shot changes and drops their frames inside dissolves; smooths and
// describes each piece.
std::vector<Track> split_at_shots(std::vector<Track>& raw, const std::vector<Shot>& shots,
                                  std::map<std::pair<size_t, int>, Appearance>& appearances, int width, int height,
                                  const TrackOptions& options) {
  std::vector<Track> pieces;
  for (size_t t = 0; t < raw.size(); ++t) {
    Track* piece = nullptr;
    for (size_t i = 0; i < raw[t].frames.size(); ++i) {
      int64_t f = raw[t].first_frame + static_cast<int64_t>(i);
      int s = shot_of(shots, f);
      bool dissolving = f - shots[s].start_frame < shots[s].fade_frames;
      if (dissolving) {
        piece = nullptr;
        continue;
      }
      if (piece == nullptr || piece->shot != s || piece->end_frame() != f) {
        pieces.push_back(Track{s, f, {}, {}, {}});
        piece = &pieces.back();
        auto found = appearances.find({t, s});
        if (found != appearances.end() && found->second.count > 0) {
          piece->descriptor.assign(found->second.sum.begin(), found->second.sum.end());
          double norm = 0;
          for (float v : piece->descriptor) norm += static_cast<double>(v) * v;
          for (float& v : piece->descriptor) v = static_cast<float>(v / std::sqrt(std::max(norm, 1e-12)));
          piece->thumbnail = found->second.thumbnail;
        }
      }
      piece->frames.push_back(raw[t].frames[i]);
    }
  }
  for (Track& piece : pieces) {
    smooth(piece.frames, options.smoothing_radius);
    for (auto& f : piece.frames) {
      f.flags &= kFaceFound | kDetected;
      describe_frame(f, width, height, options);
    }
  }
  std::sort(pieces.begin(), pieces.end(), [](const Track& a, const Track& b) {
    return a.first_frame != b.first_frame ? a.first_frame < b.first_frame : a.shot < b.shot;
  });
  return pieces;
}

}  // namespace

FaceTrack find_tracks(const std::filesystem::path& video, const FaceDetector& detector, const TrackOptions& options,
                      const FrameProgress& progress) {
  media::VideoReader reader(video);
  const media::MediaInfo& info = reader.info();
  FaceTrack result;
  result.width = info.width;
  result.height = info.height;
  result.fps = info.fps;
  ShotDetector shots(options.shots);
  std::vector<Track> raw;
  std::map<std::pair<size_t, int>, Appearance> appearances;
  std::vector<LiveTrack> live;
  int current_shot = 0;
  int64_t index = 0;
  media::VideoFrame frame;
  cv::Mat gray;
  for (; reader.read(frame); ++index) {
    if (shots.observe(frame.bgr, index)) live.clear();  // no track crosses a shot change
    current_shot = shots.current();
    // Follow each face from its last landmarks; a fit that jumps or changes size is lost.
    std::vector<std::optional<FaceLandmarks>> faces(live.size());
    std::vector<bool> detected(live.size(), false);
    bool detect_now = live.empty();
    for (size_t i = 0; i < live.size(); ++i) {
      faces[i] = detector.fit(frame.bgr, live[i].box.follow(live[i].previous));
      cv::Point2f moved = centroid(faces[i]->points, 0, kLandmarkCount) - centroid(live[i].previous, 0, kLandmarkCount);
      double iod = inter_ocular_distance(live[i].previous);
      double size_change = landmark_box(faces[i]->points).area() / std::max(1.0f, landmark_box(live[i].previous).area());
      // A fit that jumps, changes size or no longer looks like the face detected (the shot
      // dissolved into something else) is lost.
      if (cv::norm(moved) > options.max_jump_iod * iod || size_change < 0.7 || size_change > 1.4 ||
          descriptor_distance(face_descriptor(frame.bgr, faces[i]->points), live[i].look) > options.max_drift) {
        faces[i].reset();
        detect_now = true;
      }
      if (live[i].since_detection >= options.redetect_every) detect_now = true;
    }
    if (detect_now) {
      DetectOptions detect;
      detect.detect_scale = options.detect_scale;
      std::vector<FaceLandmarks> found = detector.detect(frame.bgr, detect);
      std::vector<bool> used(found.size(), false);
      // Each followed face takes the detection that overlaps it most: the same person.
      for (size_t i = 0; i < live.size(); ++i) {
        double best = 0.3;
        int chosen = -1;
        cv::Rect2f where = landmark_box(faces[i] ? faces[i]->points : live[i].previous);
        for (size_t j = 0; j < found.size(); ++j) {
          double overlap = used[j] ? 0 : iou(landmark_box(found[j].points), where);
          if (overlap > best) best = overlap, chosen = static_cast<int>(j);
        }
        if (chosen >= 0) {
          used[chosen] = true;
          faces[i] = found[chosen];
          live[i].box.detected(found[chosen].box, found[chosen].points);
          live[i].since_detection = 0;
          live[i].look = face_descriptor(frame.bgr, found[chosen].points);
          detected[i] = true;
        }
      }
      // Faces no track follows start tracks of their own.
      for (size_t j = 0; j < found.size(); ++j) {
        if (used[j]) continue;
        bool taken = false;
        for (const auto& f : faces) taken = taken || (f && iou(landmark_box(f->points), landmark_box(found[j].points)) > 0.3);
        if (taken) continue;
        LiveTrack track;
        track.track = raw.size();
        track.box.detected(found[j].box, found[j].points);
        track.look = face_descriptor(frame.bgr, found[j].points);
        raw.push_back(Track{current_shot, index, {}, {}, {}});
        live.push_back(track);
        faces.push_back(found[j]);
        detected.push_back(true);
      }
    }
    if (!live.empty()) cv::cvtColor(frame.bgr, gray, cv::COLOR_BGR2GRAY);
    std::vector<LiveTrack> still;
    for (size_t i = 0; i < live.size(); ++i) {
      if (!faces[i]) continue;  // lost: the track ends
      LiveTrack& l = live[i];
      ++l.since_detection;
      l.previous = faces[i]->points;
      TrackedFrame tracked;
      tracked.time_s = frame.time_s;
      tracked.points = faces[i]->points;
      tracked.flags = kFaceFound | (detected[i] ? kDetected : 0u);
      tracked.sharpness = sharpness(gray, cv::Rect(landmark_box(faces[i]->points)));
      Track& track = raw[l.track];
      if (static_cast<int>(track.frames.size()) % options.descriptor_every == 0) {
        Appearance& a = appearances[{l.track, current_shot}];
        std::vector<float> d = face_descriptor(frame.bgr, tracked.points);
        if (a.sum.empty()) a.sum.assign(d.size(), 0.0);
        for (size_t k = 0; k < d.size(); ++k) a.sum[k] += d[k];
        ++a.count;
        if (tracked.sharpness > a.best_sharpness) {
          a.best_sharpness = tracked.sharpness;
          a.thumbnail = canonical_thumbnail(frame.bgr, tracked.points, options.thumbnail_size);
        }
      }
      track.frames.push_back(tracked);
      still.push_back(l);
    }
    live = std::move(still);
    if (progress) progress(index + 1, info.frame_count);
  }
  result.frame_count = index;
  result.shots = shots.finish(index);
  result.tracks = split_at_shots(raw, result.shots, appearances, result.width, result.height, options);
  return result;
}

void follow_tracks(const std::filesystem::path& video, FaceTrack& track, const std::vector<int>& chosen,
                   const TrackOptions& options, const FrameProgress& progress) {
  media::VideoReader reader(video);
  const media::MediaInfo& info = reader.info();
  // For each frame, the chosen face (the biggest where two chosen tracks share a frame).
  std::map<int64_t, const TrackedFrame*> person;
  for (int t : chosen) {
    const Track& piece = track.tracks.at(static_cast<size_t>(t));
    for (size_t i = 0; i < piece.frames.size(); ++i) {
      const TrackedFrame* f = &piece.frames[i];
      auto [it, inserted] = person.emplace(piece.first_frame + static_cast<int64_t>(i), f);
      if (!inserted && f->iod_px > it->second->iod_px) it->second = f;
    }
  }
  ReferencePicker references(options.reference_count, info.frame_count);
  MouthCollector mouths(options);
  track.frames.clear();
  media::VideoFrame frame;
  for (int64_t index = 0; reader.read(frame); ++index) {
    TrackedFrame tracked;
    tracked.time_s = frame.time_s;
    auto found = person.find(index);
    if (found != person.end()) {
      tracked = *found->second;
      references.offer(frame, tracked);
      mouths.offer(frame, tracked);
    }
    track.frames.push_back(tracked);
    if (progress) progress(index + 1, info.frame_count);
  }
  track.references = references.take();
  track.mouths = mouths.take();
}

FaceTrack track_faces(const std::filesystem::path& video, const FaceDetector& detector, const TrackOptions& options,
                      const FrameProgress& progress) {
  FaceTrack track = find_tracks(video, detector, options, progress);
  std::vector<int> all(track.tracks.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  follow_tracks(video, track, all, options);
  return track;
}

void write_face_track(const std::filesystem::path& dir, const FaceTrack& track, const TrackOptions& options) {
  std::filesystem::create_directories(dir / "references");
  write_file_atomic(dir / "landmarks.bin", landmarks_bytes(track));

  auto points_json = [](auto begin, auto end) {
    nlohmann::json xy = nlohmann::json::array();
    for (auto p = begin; p != end; ++p) xy.push_back(std::round(p->x * 100) / 100), xy.push_back(std::round(p->y * 100) / 100);
    return xy;
  };

  nlohmann::json references = nlohmann::json::array();
  for (size_t i = 0; i < track.references.size(); ++i) {
    const auto& r = track.references[i];
    std::string file = fmt::format("{:02}.png", i);
    write_png(dir / "references" / file, r.image);
    references.push_back({{"file", "references/" + file}, {"frame", r.frame}, {"time_s", r.time_s},
                          {"landmarks", points_json(r.points.begin(), r.points.end())}});
  }
  write_file_atomic(dir / "references" / "references.json", nlohmann::json{{"references", references}}.dump(1));

  const int columns = 16;
  const cv::Size size = options.mouth_crop_size;
  nlohmann::json crops = nlohmann::json::array();
  if (!track.mouths.empty()) {
    int rows = (static_cast<int>(track.mouths.size()) + columns - 1) / columns;
    cv::Mat atlas(rows * size.height, columns * size.width, CV_8UC3, cv::Scalar(0, 0, 0));
    for (size_t i = 0; i < track.mouths.size(); ++i) {
      const auto& m = track.mouths[i];
      int col = static_cast<int>(i) % columns, row = static_cast<int>(i) / columns;
      m.image.copyTo(atlas(cv::Rect(col * size.width, row * size.height, size.width, size.height)));
      crops.push_back({{"index", i}, {"frame", m.frame}, {"opening", m.opening}, {"width", m.width},
                       {"landmarks", points_json(m.points.begin(), m.points.end())}});
    }
    write_png(dir / "mouths.png", atlas);
  }
  write_file_atomic(dir / "mouths.json", nlohmann::json{{"atlas", track.mouths.empty() ? "" : "mouths.png"},
                                                        {"crop_width", size.width},
                                                        {"crop_height", size.height},
                                                        {"columns", columns},
                                                        {"crops", crops}}
                                             .dump(1));

  std::map<std::string, int> flag_counts;
  double iod_sum = 0;
  for (const auto& f : track.frames) {
    if (f.flags & kFaceFound) iod_sum += f.iod_px, ++flag_counts["found"];
    if (f.flags & kSmall) ++flag_counts["small"];
    if (f.flags & kNotFrontal) ++flag_counts["not_frontal"];
    if (f.flags & kBlurry) ++flag_counts["blurry"];
    if (f.flags & kDetected) ++flag_counts["detected"];
  }
  nlohmann::json summary = {
      {"format", "dself-face-track"},
      {"version", 1},
      {"frames", track.frames.size()},
      {"found_share", track.found_share()},
      {"mean_iod_px", flag_counts["found"] ? iod_sum / flag_counts["found"] : 0.0},
      {"flags", flag_counts},
      {"references", track.references.size()},
      {"mouth_crops", track.mouths.size()},
      {"thresholds",
       {{"min_iod_px", options.min_iod_px},
        {"max_yaw_deg", options.max_yaw_deg},
        {"max_pitch_deg", options.max_pitch_deg},
        {"min_sharpness", options.min_sharpness}}}};
  write_file_atomic(dir / "summary.json", summary.dump(1));
}

FaceTrack read_landmarks(const std::filesystem::path& path) { return parse_landmarks(read_file(path), path.string()); }

// tracks.bin: "DSELFTK\0", version, track count, record size; then each track's frames in
// track order, as landmarks.bin's records (tracks.json says how many each has).
constexpr char kTracksMagic[8] = {'D', 'S', 'E', 'L', 'F', 'T', 'K', '\0'};
constexpr uint32_t kTracksVersion = 1;

void write_tracks(const std::filesystem::path& dir, const FaceTrack& track, const TrackOptions& options) {
  std::filesystem::create_directories(dir);
  std::string bin(kTracksMagic, sizeof kTracksMagic);
  put<uint32_t>(bin, kTracksVersion);
  put<uint32_t>(bin, static_cast<uint32_t>(track.tracks.size()));
  put<uint32_t>(bin, kFrameRecordBytes);
  for (const Track& t : track.tracks) {
    for (const auto& f : t.frames) put_frame_record(bin, f);
  }
  write_file_atomic(dir / "tracks.bin", bin);

  const int size = options.thumbnail_size, columns = 16;
  if (!track.tracks.empty()) {
    int rows = (static_cast<int>(track.tracks.size()) + columns - 1) / columns;
    cv::Mat atlas(rows * size, columns * size, CV_8UC3, cv::Scalar(0, 0, 0));
    for (size_t i = 0; i < track.tracks.size(); ++i) {
      const cv::Mat& thumb = track.tracks[i].thumbnail;
      if (thumb.empty() || thumb.size() != cv::Size(size, size)) continue;
      thumb.copyTo(atlas(cv::Rect(static_cast<int>(i) % columns * size, static_cast<int>(i) / columns * size, size, size)));
    }
    write_png(dir / "tracks.png", atlas);
  }
  nlohmann::json shots = nlohmann::json::array();
  for (const Shot& shot : track.shots) shots.push_back({shot.start_frame, shot.end_frame, shot.fade_frames});
  nlohmann::json tracks = nlohmann::json::array();
  for (const Track& t : track.tracks) {
    nlohmann::json descriptor = nlohmann::json::array();
    for (float v : t.descriptor) descriptor.push_back(std::round(v * 1e5) / 1e5);
    tracks.push_back({{"shot", t.shot}, {"first_frame", t.first_frame}, {"frames", t.frames.size()},
                      {"descriptor", descriptor}});
  }
  write_file_atomic(dir / "tracks.json", nlohmann::json{{"format", "dself-face-tracks"},
                                                        {"version", 1},
                                                        {"frames", track.frame_count},
                                                        {"fps", track.fps},
                                                        {"width", track.width},
                                                        {"height", track.height},
                                                        {"thumbnail_size", size},
                                                        {"thumbnail_columns", columns},
                                                        {"shots", shots},
                                                        {"tracks", tracks}}
                                             .dump());
}

FaceTrack read_tracks(const std::filesystem::path& dir) {
  auto bad = [&](const std::string& what) {
    return InputError(fmt::format("{}: {}: run `dself prepare` again", (dir / "tracks.json").string(), what));
  };
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(read_file(dir / "tracks.json"));
  } catch (const nlohmann::json::exception& e) {
    throw bad(e.what());
  }
  if (json.value("format", "") != "dself-face-tracks" || json.value("version", 0) != 1) throw bad("not a tracks file");
  FaceTrack track;
  track.frame_count = json.at("frames").get<int64_t>();
  track.fps = json.at("fps").get<double>();
  track.width = json.at("width").get<int>();
  track.height = json.at("height").get<int>();
  for (const auto& s : json.at("shots")) track.shots.push_back(Shot{s[0].get<int64_t>(), s[1].get<int64_t>(), s[2].get<int64_t>()});
  std::string bin = read_file(dir / "tracks.bin");
  const size_t header_bytes = sizeof kTracksMagic + 3 * 4;
  if (bin.size() < header_bytes || std::memcmp(bin.data(), kTracksMagic, sizeof kTracksMagic) != 0) {
    throw bad("tracks.bin has a bad header");
  }
  size_t at = sizeof kTracksMagic;
  uint32_t version = get<uint32_t>(bin, at), count = get<uint32_t>(bin, at), record = get<uint32_t>(bin, at);
  size_t frames = 0;
  for (const auto& t : json.at("tracks")) frames += t.at("frames").get<size_t>();
  if (version != kTracksVersion || record != kFrameRecordBytes || count != json.at("tracks").size() ||
      bin.size() != header_bytes + frames * record) {
    throw bad("tracks.bin does not match tracks.json");
  }
  cv::Mat atlas;
  if (std::filesystem::exists(dir / "tracks.png")) atlas = cv::imread((dir / "tracks.png").string(), cv::IMREAD_COLOR);
  int size = json.value("thumbnail_size", 64), columns = json.value("thumbnail_columns", 16);
  for (const auto& t : json.at("tracks")) {
    Track piece;
    piece.shot = t.at("shot").get<int>();
    piece.first_frame = t.at("first_frame").get<int64_t>();
    piece.descriptor = t.at("descriptor").get<std::vector<float>>();
    size_t n = t.at("frames").get<size_t>();
    for (size_t i = 0; i < n; ++i) piece.frames.push_back(get_frame_record(bin, at));
    int i = static_cast<int>(track.tracks.size());
    cv::Rect cell(i % columns * size, i / columns * size, size, size);
    if (!atlas.empty() && (cell & cv::Rect(0, 0, atlas.cols, atlas.rows)) == cell) piece.thumbnail = atlas(cell).clone();
    track.tracks.push_back(std::move(piece));
  }
  return track;
}

}  // namespace dself::face
