// The face track: find the face with dlib's HOG detector (rarely, on a downscaled frame), then
// follow it by fitting the 68 landmarks every frame in a box placed from the previous frame's
// landmarks; the detector runs again every few frames to confirm the face, and at once when
// the fit drifts.
#include "face/track.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <optional>

#include <opencv2/imgproc.hpp>

#include "core/log.h"
#include "face/detail/track_geometry.h"
#include "face/detail/track_select.h"
#include "media/media.h"

namespace dself::face::track {

namespace {

using detail::fit_similarity;
using detail::stable_points;
using detail::stable_template;

// The shape predictor was trained on the HOG detector's boxes, so a tracked frame gets a box
// placed as the detector places its box: the box's centre and size are kept in the frame of the
// mean face's stable points (eyes, nose), which follow the head but not the mouth, so that an
// open jaw does not grow the box. The detector's boxes sit on a coarse grid (HOG cells, pyramid
// levels), so one box is off the face by up to half a grid step; the mean of a few is not.
class BoxModel {
 public:
  void reset() { count_ = 0, centre_ = {0, 0}, width_ = 0, height_ = 0; }
  void add(const cv::Rect& detected, const Landmarks& points) {
    Similarity to_mean = fit_similarity(stable_points(points), stable_template());
    cv::Point2f centre = to_mean.apply({detected.x + detected.width / 2.0f, detected.y + detected.height / 2.0f});
    ++count_;
    float k = 1.0f / static_cast<float>(count_);
    centre_ += (centre - centre_) * k;
    width_ += (static_cast<float>(detected.width) * to_mean.scale() - width_) * k;
    height_ += (static_cast<float>(detected.height) * to_mean.scale() - height_) * k;
  }
  int count() const { return count_; }
  cv::Rect place(const Landmarks& points) const {
    Similarity to_image = fit_similarity(stable_template(), stable_points(points));
    cv::Point2f c = to_image.apply(centre_);
    float w = width_ * to_image.scale(), h = height_ * to_image.scale();
    return {static_cast<int>(std::lround(c.x - w / 2)), static_cast<int>(std::lround(c.y - h / 2)),
            static_cast<int>(std::lround(w)), static_cast<int>(std::lround(h))};
  }

 private:
  int count_ = 0;
  cv::Point2f centre_;  // mean-face units (IODs from the eye midpoint)
  float width_ = 0, height_ = 0;
};

double iou(const cv::Rect& a, const cv::Rect& b) {
  double inter = (a & b).area();
  double uni = static_cast<double>(a.area()) + b.area() - inter;
  return uni > 0 ? inter / uni : 0;
}

cv::Point2f stable_centre(const Landmarks& points) {
  auto stable = stable_points(points);
  cv::Point2f sum(0, 0);
  for (const auto& p : stable) sum += p;
  return sum * (1.0f / static_cast<float>(stable.size()));
}

// A face the detector found, in full-frame pixels.
struct Found {
  cv::Rect box;
  Landmarks points;
};

class Tracker {
 public:
  Tracker(const FaceDetector& detector, const TrackOptions& options, int width, int height, TrackStats& stats)
      : detector_(detector), options_(options), width_(width), height_(height), stats_(stats) {}

  // Searches the whole frame; picks the largest, most central face.
  std::optional<Found> acquire(const cv::Mat& gray) {
    DetectOptions detect;
    detect.detect_scale = options_.detect_scale;
    ++stats_.detector_runs;
    std::vector<FaceLandmarks> faces = detector_.detect(gray, detect);
    const FaceLandmarks* best = nullptr;
    double best_score = 0;
    cv::Point2f middle(width_ / 2.0f, height_ / 2.0f);
    double diagonal = std::hypot(width_, height_);
    for (const auto& face : faces) {
      cv::Point2f c(face.box.x + face.box.width / 2.0f, face.box.y + face.box.height / 2.0f);
      double score = face.box.area() * (1 - 0.5 * cv::norm(c - middle) / diagonal);
      if (score > best_score) best_score = score, best = &face;
    }
    if (!best) return std::nullopt;
    // The box again at full resolution, around the face only: the predictor fits best in the
    // boxes it was trained on, and the downscaled search places them on a coarser grid.
    Found found{best->box, {}};
    if (auto exact = detect_near(gray, best->box, 1.0)) found = *exact;
    else found.points = fit(gray, found.box);
    return found;
  }

  // The detector on a region around `box`, scaled so the face is about 100 pixels wide (or
  // `scale` if given); the detection overlapping `box` most.
  std::optional<Found> detect_near(const cv::Mat& gray, const cv::Rect& box, double scale = 0) {
    int margin = std::max(box.width, box.height) / 2;
    cv::Rect region = cv::Rect(box.x - margin, box.y - margin, box.width + 2 * margin, box.height + 2 * margin) &
                      cv::Rect(0, 0, gray.cols, gray.rows);
    if (region.width < 16 || region.height < 16) return std::nullopt;
    DetectOptions detect;
    detect.detect_scale = scale > 0 ? scale : std::clamp(100.0 / std::max(1, box.width), 0.25, 1.0);
    ++stats_.detector_runs;
    std::vector<FaceLandmarks> faces = detector_.detect(gray(region), detect);
    std::optional<Found> best;
    double best_overlap = 0.3;
    for (const auto& face : faces) {
      cv::Rect b = face.box + region.tl();
      double overlap = iou(b, box);
      if (overlap > best_overlap) {
        best_overlap = overlap;
        best = Found{b, {}};
        for (int k = 0; k < kLandmarkCount; ++k) best->points[k] = face.points[k] + cv::Point2f(region.tl());
      }
    }
    return best;
  }

  Landmarks fit(const cv::Mat& gray, const cv::Rect& box) {
    ++stats_.fits;
    FaceLandmarks face = detector_.fit(gray, box);
    Landmarks out;
    std::copy(face.points.begin(), face.points.end(), out.begin());
    return out;
  }

  // Landmarks on this frame from the previous frame's, each pass in the box the last gives.
  Landmarks follow(const cv::Mat& gray, const Landmarks& previous) {
    Landmarks shape = previous;
    for (int pass = 0; pass < std::max(1, options_.fit_passes); ++pass) shape = fit(gray, box_.place(shape));
    return shape;
  }

  // Whether a fit is still the face the previous frame had: no jump, no sudden change of size,
  // and a face's shape.
  bool plausible(const Landmarks& shape, const Landmarks& previous) const {
    double iod = inter_ocular_distance(previous);
    double now = inter_ocular_distance(shape);
    if (iod <= 1 || now <= 1) return false;
    if (cv::norm(stable_centre(shape) - stable_centre(previous)) > options_.max_jump_iod * iod) return false;
    if (std::abs(now / iod - 1) > options_.max_scale_change) return false;
    return detail::shape_residual_iod(shape) <= options_.max_shape_residual;
  }

  // Starts the box model again from a detection (a new face, or a track that slid off it).
  void restart(const Found& found) {
    box_.reset();
    box_.add(found.box, found.points);
  }
  // Refines the box model with a full-resolution detection near the face.
  void calibrate(const cv::Mat& gray, const Landmarks& points) {
    if (auto seen = detect_near(gray, box_.place(points), 1.0)) box_.add(seen->box, seen->points);
  }
  int calibrations() const { return box_.count(); }
  cv::Rect box_for(const Landmarks& points) const { return box_.place(points); }

 private:
  const FaceDetector& detector_;
  const TrackOptions& options_;
  int width_, height_;
  TrackStats& stats_;
  BoxModel box_;
};

// Geometry and flags that follow from a frame's landmarks (blur_score is measured on the image).
void describe(FrameTrack& frame, int width, int height, const TrackOptions& options) {
  frame.flags &= ~(kSmall | kNotFrontal | kBlurry);
  if (!(frame.flags & kFaceFound)) return;
  frame.iod_px = static_cast<float>(inter_ocular_distance(frame.points));
  frame.pose = detail::head_pose(frame.points, width, height);
  frame.to_canonical = detail::to_canonical(frame.points, options.canonical_size);
  if (frame.iod_px < options.min_iod_px) frame.flags |= kSmall;
  if (std::abs(frame.pose.yaw_deg) > options.max_yaw_deg || std::abs(frame.pose.pitch_deg) > options.max_pitch_deg) {
    frame.flags |= kNotFrontal;
  }
  if (frame.blur_score < options.min_blur_score) frame.flags |= kBlurry;
}

// A small, mean-free, unit-norm picture of the aligned face: tells one person's tracked runs
// from another's.
constexpr int kIdentitySide = 24;
cv::Mat identity_patch(const cv::Mat& gray, const Similarity& to_canonical, int canonical_size) {
  Similarity t = to_canonical;
  float k = static_cast<float>(kIdentitySide) / (0.6f * static_cast<float>(canonical_size));
  // The inner face: 0.2..0.8 of the canonical frame across, 0.25..0.85 down.
  t.a *= k, t.b *= k;
  t.tx = t.tx * k - 0.2f * canonical_size * k;
  t.ty = t.ty * k - 0.25f * canonical_size * k;
  cv::Mat patch;
  cv::warpAffine(gray, patch, t.matrix(), cv::Size(kIdentitySide, kIdentitySide), cv::INTER_AREA,
                 cv::BORDER_REPLICATE);
  patch.convertTo(patch, CV_32F);
  cv::Scalar mean = cv::mean(patch);
  patch -= mean[0];
  double n = cv::norm(patch);
  if (n > 0) patch /= n;
  return patch;
}

// One tracked run of frames (from finding a face to losing it).
struct Segment {
  int64_t frames = 0;
  cv::Mat identity = cv::Mat::zeros(kIdentitySide, kIdentitySide, CV_32F);  // sum of patches
};

// Which runs are the person: runs are joined when their mean faces look alike, and the group
// tracked over the most frames is the person.
std::vector<bool> dominant_segments(const std::vector<Segment>& segments) {
  constexpr double kSamePerson = 0.5;  // correlation of mean aligned faces
  std::vector<int> group(segments.size(), -1);
  std::vector<cv::Mat> group_face;
  std::vector<int64_t> group_frames;
  std::vector<size_t> order(segments.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return segments[x].frames > segments[y].frames; });
  for (size_t i : order) {
    if (segments[i].frames == 0) continue;
    cv::Mat face = segments[i].identity / std::max(1e-9, cv::norm(segments[i].identity));
    int best = -1;
    double best_similarity = kSamePerson;
    for (size_t g = 0; g < group_face.size(); ++g) {
      double similarity = face.dot(group_face[g] / std::max(1e-9, cv::norm(group_face[g])));
      if (similarity > best_similarity) best_similarity = similarity, best = static_cast<int>(g);
    }
    if (best < 0) {
      best = static_cast<int>(group_face.size());
      group_face.push_back(cv::Mat::zeros(kIdentitySide, kIdentitySide, CV_32F));
      group_frames.push_back(0);
    }
    group[i] = best;
    group_face[best] += segments[i].identity;
    group_frames[best] += segments[i].frames;
  }
  std::vector<bool> keep(segments.size(), false);
  if (group_frames.empty()) return keep;
  int person = static_cast<int>(std::max_element(group_frames.begin(), group_frames.end()) - group_frames.begin());
  for (size_t i = 0; i < segments.size(); ++i) keep[i] = group[i] == person;
  return keep;
}

// A frame decoded while no face was tracked, kept (gray) so that a face found a few frames later
// can be followed back into it.
struct Recent {
  int64_t index = 0;
  cv::Mat gray;
};

}  // namespace

double FaceTrack::found_share() const {
  if (frames.empty()) return 0;
  auto found = std::count_if(frames.begin(), frames.end(), [](const FrameTrack& f) { return f.flags & kFaceFound; });
  return static_cast<double>(found) / static_cast<double>(frames.size());
}

double FaceTrack::mean_iod_px() const {
  double sum = 0;
  int64_t n = 0;
  for (const auto& f : frames) {
    if (f.flags & kFaceFound) sum += f.iod_px, ++n;
  }
  return n ? sum / static_cast<double>(n) : 0;
}

FaceTrack track_faces(const std::filesystem::path& video, const FaceDetector& detector, const TrackOptions& options,
                      const TrackProgress& progress) {
  auto started = std::chrono::steady_clock::now();
  media::VideoReader reader(video);
  const media::MediaInfo& info = reader.info();
  FaceTrack track;
  track.width = info.width;
  track.height = info.height;
  track.fps = info.fps;
  int64_t frame_count = info.frame_count > 0 ? info.frame_count : static_cast<int64_t>(info.duration_s * info.fps);

  Tracker tracker(detector, options, info.width, info.height, track.stats);
  detail::ReferencePicker references(options, frame_count);
  detail::MouthCollector mouths(options);
  std::vector<Segment> segments;
  std::vector<int> segment_of;  // per frame; -1 where nothing was tracked

  bool tracking = false;
  Landmarks previous{};
  int since_confirmed = 0;   // frames since the detector last saw the tracked face
  int failed_confirms = 0;   // confirmations in a row that did not see it
  int since_search = 0;      // frames since the last whole-frame search while lost
  int since_calibrated = 0;  // frames since the box model last took a detection
  std::deque<Recent> recent;  // frames since the face was lost, newest last
  const int keep_recent = std::max(0, options.lost_detect_every - 1);

  media::VideoFrame frame;
  cv::Mat gray;
  // Records a found frame: its measures and flags, what the renderer may want from it.
  auto record = [&](int64_t index, const cv::Mat& gray_image, const cv::Mat* bgr, const Landmarks& points,
                    uint32_t extra) {
    FrameTrack& f = track.frames[index];
    f.flags = kFaceFound | extra;
    f.points = points;
    f.to_canonical = detail::to_canonical(points, options.canonical_size);
    f.blur_score = detail::blur_score(gray_image, f.to_canonical, options.canonical_size);
    describe(f, track.width, track.height, options);
    Segment& segment = segments.back();
    ++segment.frames;
    segment.identity += identity_patch(gray_image, f.to_canonical, options.canonical_size);
    segment_of[index] = static_cast<int>(segments.size()) - 1;
    if (bgr) {
      references.offer(index, *bgr, f, segment_of[index]);
      mouths.offer(index, *bgr, f, segment_of[index]);
    }
  };

  while (reader.read(frame)) {
    const int64_t index = static_cast<int64_t>(track.frames.size());
    track.frames.push_back(FrameTrack{});
    track.frames.back().time_s = frame.time_s;
    segment_of.push_back(-1);
    cv::cvtColor(frame.bgr, gray, cv::COLOR_BGR2GRAY);

    std::optional<Landmarks> shape;
    uint32_t extra = 0;
    if (tracking) {
      Landmarks fitted = tracker.follow(gray, previous);
      if (tracker.plausible(fitted, previous)) shape = fitted;
      ++since_confirmed;
      // Confirm with the detector every few frames (sooner after a miss); two misses in a row
      // and the face is gone.
      int every = failed_confirms > 0 ? std::max(1, options.redetect_every / 3) : options.redetect_every;
      if (shape && since_confirmed >= every) {
        if (auto seen = tracker.detect_near(gray, tracker.box_for(*shape))) {
          since_confirmed = 0, failed_confirms = 0;
          extra |= kDetected;
          // A track that slid off the face the detector sees starts again from the detection.
          if (iou(seen->box, tracker.box_for(*shape)) < 0.5) {
            tracker.restart(*seen);
            shape = tracker.follow(gray, seen->points);
          }
        } else if (++failed_confirms >= 2) {
          shape.reset();
        } else {
          since_confirmed = 0;
        }
      }
      if (shape && tracker.calibrations() < options.calibrations &&
          ++since_calibrated >= std::max(1, options.calibrate_every)) {
        since_calibrated = 0;
        tracker.calibrate(gray, *shape);
      }
      if (!shape) {
        tracking = false;
        since_search = options.lost_detect_every;  // search this very frame
      }
    }
    if (!tracking) {
      if (++since_search >= std::max(1, options.lost_detect_every) || index == 0) {
        since_search = 0;
        if (auto found = tracker.acquire(gray)) {
          tracker.restart(*found);
          since_calibrated = 0;
          shape = found->points;
          extra |= kDetected;
          tracking = true;
          since_confirmed = 0, failed_confirms = 0;
          segments.emplace_back();
          if (index > 0) ++track.stats.reacquired;
        }
      }
    }
    if (tracking && shape) {
      record(index, gray, &frame.bgr, *shape, extra);
      // Follow the face back into the frames decoded while it was lost.
      Landmarks later = *shape;
      while (!recent.empty()) {
        Recent& r = recent.back();
        Landmarks earlier = tracker.follow(r.gray, later);
        if (segment_of[r.index] >= 0 || !tracker.plausible(earlier, later)) break;
        record(r.index, r.gray, nullptr, earlier, 0);
        later = earlier;
        recent.pop_back();
      }
      recent.clear();
      previous = *shape;
    } else if (keep_recent > 0) {
      recent.push_back(Recent{index, gray.clone()});
      if (static_cast<int>(recent.size()) > keep_recent) recent.pop_front();
    }
    if (progress) progress(index + 1, frame_count);
  }

  std::vector<bool> keep = dominant_segments(segments);
  for (size_t i = 0; i < track.frames.size(); ++i) {
    if (segment_of[i] >= 0 && !keep[segment_of[i]]) {
      track.frames[i].flags = (track.frames[i].flags & ~kFaceFound) | kOtherFace;
    }
  }
  smooth_landmarks(track.frames, options);
  for (auto& f : track.frames) describe(f, track.width, track.height, options);
  // The renderer's images keep the landmarks they were cut with; their points follow the
  // smoothed track.
  track.references = references.take(keep);
  for (auto& r : track.references) r.points = track.frames[r.frame].points;
  track.mouths = mouths.take(keep);
  for (auto& m : track.mouths) {
    for (int k = 0; k < kLandmarkCount; ++k) m.points[k] = m.to_crop.apply(track.frames[m.frame].points[k]);
  }
  track.stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  spdlog::debug("face track {}: {} frames, {:.1f}% found, {} detector runs, {} fits, {:.1f} s", video.string(),
             track.frames.size(), 100 * track.found_share(), track.stats.detector_runs, track.stats.fits,
             track.stats.seconds);
  return track;
}

FaceTrack track_faces(const std::filesystem::path& video, const TrackOptions& options, const TrackProgress& progress) {
  FaceDetector detector;
  return track_faces(video, detector, options, progress);
}

}  // namespace dself::face::track
