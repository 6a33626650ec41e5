// How good the photoreal renderer is (DESIGN.md §4, render): lip sync by re-detection on rendered
// frames, and self-reenactment of held-out real frames (PSNR, SSIM over the face).
#include <algorithm>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>
#include <spdlog/spdlog.h>

#include "core/catalog.h"
#include "core/error.h"
#include "core/workspace.h"
#include "face/face.h"
#include "media/media.h"
#include "render/detail/model.h"

namespace dself::render {
namespace {

double round_to(double v, double step) { return std::round(v / step) * step; }

double inner_opening(const Landmarks& p) {
  return (cv::norm(p[61] - p[67]) + cv::norm(p[62] - p[66]) + cv::norm(p[63] - p[65])) / 3;
}

double correlation(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() < 2) return 0;
  double ma = 0, mb = 0;
  for (size_t i = 0; i < a.size(); ++i) ma += a[i], mb += b[i];
  ma /= static_cast<double>(a.size()), mb /= static_cast<double>(b.size());
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb), saa += (a[i] - ma) * (a[i] - ma), sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0;
}

// PSNR (dB) and mean SSIM (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5, on luma) over a mask.
struct ImageScore {
  double psnr_db = 0;
  double ssim = 0;
};

ImageScore compare(const cv::Mat& a, const cv::Mat& b, const cv::Mat& mask) {
  cv::Mat diff;
  cv::absdiff(a, b, diff);
  diff.convertTo(diff, CV_64F);
  diff = diff.mul(diff);
  cv::Scalar means = cv::mean(diff, mask);
  double mse = (means[0] + means[1] + means[2]) / 3;
  ImageScore score;
  score.psnr_db = mse > 0 ? 10 * std::log10(255.0 * 255.0 / mse) : 99;

  cv::Mat x, y;
  cv::cvtColor(a, x, cv::COLOR_BGR2GRAY), cv::cvtColor(b, y, cv::COLOR_BGR2GRAY);
  x.convertTo(x, CV_32F), y.convertTo(y, CV_32F);
  auto blur = [](const cv::Mat& m) {
    cv::Mat out;
    cv::GaussianBlur(m, out, cv::Size(11, 11), 1.5);
    return out;
  };
  cv::Mat mx = blur(x), my = blur(y);
  cv::Mat sxx = blur(x.mul(x)) - mx.mul(mx), syy = blur(y.mul(y)) - my.mul(my), sxy = blur(x.mul(y)) - mx.mul(my);
  const double c1 = 6.5025, c2 = 58.5225;  // (0.01 * 255)^2, (0.03 * 255)^2
  cv::Mat num = (2 * mx.mul(my) + c1).mul(2 * sxy + c2);
  cv::Mat den = (mx.mul(mx) + my.mul(my) + c1).mul(sxx + syy + c2);
  cv::Mat ssim_map;
  cv::divide(num, den, ssim_map);
  score.ssim = cv::mean(ssim_map, mask)[0];
  return score;
}

cv::Mat hull_mask(cv::Size size, const Landmarks& p, std::initializer_list<std::pair<int, int>> ranges) {
  std::vector<cv::Point> points, hull;
  for (const auto& [first, end] : ranges) {
    for (int i = first; i < end; ++i) points.emplace_back(cvRound(p[i].x), cvRound(p[i].y));
  }
  cv::convexHull(points, hull);
  cv::Mat mask = cv::Mat::zeros(size, CV_8U);
  cv::fillConvexPoly(mask, hull, cv::Scalar(255));
  return mask;
}

// The head's motion that carries the reference's face onto a frame's: S_ref o S_frame^-1 in the
// canonical frame, as a roll and scale about the canonical nose tip and a shift.
motion::HeadMotion head_motion_between(const face::Similarity& reference, const face::Similarity& frame) {
  cv::Matx23d m = compose(to_matrix(reference), invert(to_matrix(frame)));
  motion::HeadMotion head;
  head.scale = static_cast<float>(std::hypot(m(0, 0), m(1, 0)));
  head.roll_deg = static_cast<float>(std::atan2(m(1, 0), m(0, 0)) * 180 / CV_PI);
  const double px = 0.5 * 256, py = 0.57 * 256;
  head.shift_x = static_cast<float>(m(0, 0) * px + m(0, 1) * py + m(0, 2) - px);
  head.shift_y = static_cast<float>(m(1, 0) * px + m(1, 1) * py + m(1, 2) - py);
  return head;
}

struct Scores {
  double psnr = 0, ssim = 0;
  int count = 0;
  void add(const ImageScore& s) { psnr += s.psnr_db, ssim += s.ssim, ++count; }
  nlohmann::json json() const {
    return {{"psnr_db", round_to(psnr / std::max(1, count), 0.01)}, {"ssim", round_to(ssim / std::max(1, count), 1e-4)}};
  }
};

}  // namespace

nlohmann::json describe(const PhotorealModel& m) {
  return {{"engine", "photoreal"},
          {"size", m.options.size},
          {"reference", {{"source_id", m.reference_source}, {"frame", m.reference_frame}, {"time_s", round_to(m.reference_time_s, 1e-3)}}},
          {"crop", {{"origin", {round_to(m.origin.x, 0.01), round_to(m.origin.y, 0.01)}}, {"scale", round_to(m.scale, 1e-4)}}},
          {"iod_px", round_to(m.iod_px, 0.01)},
          {"mouth_crops", m.mouth.crops.size()},
          {"eye_crops", m.eyes.crops.size()},
          {"sources", m.source_count},
          {"usable_frames", m.usable_frames}};
}

nlohmann::json evaluate_lip_sync(Renderer& renderer, const std::vector<motion::FacePose>& poses) {
  face::FaceDetector detector;
  renderer.reset();
  int found = 0;
  double mouth_error = 0, all_error = 0;
  std::vector<double> commanded, detected;
  for (const motion::FacePose& pose : poses) {
    const cv::Mat& frame = renderer.render(pose);
    Landmarks target = renderer.frame_landmarks(pose);
    std::vector<face::FaceLandmarks> faces = detector.detect(frame);
    if (faces.empty()) continue;
    ++found;
    const auto& p = faces.front().points;
    double iod = face::inter_ocular_distance(target), mouth = 0, all = 0;
    for (int i = 0; i < face::kLandmarkCount; ++i) {
      double d = cv::norm(p[i] - target[i]);
      all += d;
      if (i >= 48) mouth += d;
    }
    mouth_error += 100 * mouth / 20 / iod, all_error += 100 * all / face::kLandmarkCount / iod;
    Landmarks q;
    std::copy(p.begin(), p.end(), q.begin());
    commanded.push_back(inner_opening(target) / iod), detected.push_back(inner_opening(q) / iod);
  }
  renderer.reset();
  int n = std::max(1, found);
  return {{"frames", poses.size()},
          {"face_found_share", round_to(poses.empty() ? 0.0 : static_cast<double>(found) / static_cast<double>(poses.size()), 1e-4)},
          {"mouth_error_iod_pct", round_to(mouth_error / n, 0.01)},
          {"landmark_error_iod_pct", round_to(all_error / n, 0.01)},
          {"opening_correlation", round_to(correlation(commanded, detected), 1e-4)}};
}

nlohmann::json evaluate_reenactment(const std::filesystem::path& avatar, int frame_count) {
  workspace::require_avatar(avatar);
  // Held out: the last 20% of every tracked source.
  struct HeldOut {
    int64_t source_id;
    std::filesystem::path video;
    face::FaceTrack track;
    std::vector<size_t> frames;
  };
  std::vector<HeldOut> held;
  PhotorealOptions options;
  {
    Catalog catalog(avatar);
    for (const Source& source : catalog.sources()) {
      std::filesystem::path landmarks = workspace::landmarks_path(avatar, source.id);
      if (!std::filesystem::exists(landmarks)) continue;
      HeldOut h{source.id, {}, face::read_landmarks(landmarks), {}};
      for (const MediaFile& file : catalog.media(source.id)) {
        if (file.role == "video") h.video = avatar / file.path;
      }
      if (h.video.empty() || h.track.frames.empty()) continue;
      double duration = h.track.frames.back().time_s + 1 / std::max(1.0, h.track.fps);
      double start = 0.8 * duration;
      options.exclude.push_back({source.id, {start, duration + 1}});
      constexpr uint32_t kUnusable = face::kSmall | face::kNotFrontal | face::kBlurry;
      for (size_t i = 0; i < h.track.frames.size(); ++i) {
        const face::TrackedFrame& f = h.track.frames[i];
        if (f.time_s >= start && (f.flags & face::kFaceFound) && !(f.flags & kUnusable)) h.frames.push_back(i);
      }
      held.push_back(std::move(h));
    }
  }
  size_t available = 0;
  for (const HeldOut& h : held) available += h.frames.size();
  if (available == 0) {
    throw InputError(fmt::format("avatar {} has no usable held-out face frames: run `dself prepare` (its face step) first",
                                 avatar.string()));
  }
  std::shared_ptr<PhotorealModel> model = build_photoreal_model(avatar, options);
  finish_model(*model);
  std::unique_ptr<Renderer> renderer = make_photoreal_renderer(model);
  const cv::Matx23d crop(model->scale, 0, -model->origin.x * model->scale, 0, model->scale, -model->origin.y * model->scale);

  // The frames to render, spread evenly over everything held out.
  double step = std::max(1.0, static_cast<double>(available) / std::max(1, frame_count));
  Scores face_scores, lower_scores, ref_face, ref_lower;
  size_t seen = 0;
  double next = 0;
  for (HeldOut& h : held) {
    std::vector<size_t> picks;
    for (size_t k = 0; k < h.frames.size(); ++k, ++seen) {
      if (static_cast<double>(seen) >= next) picks.push_back(h.frames[k]), next += step;
    }
    if (picks.empty()) continue;
    media::VideoReader reader(h.video);
    media::VideoFrame frame;
    size_t at = 0;
    while (at < picks.size() && reader.read(frame)) {
      if (frame.index != static_cast<int64_t>(picks[at])) continue;
      const face::TrackedFrame& f = h.track.frames[picks[at++]];
      motion::FacePose pose;
      for (int i = 0; i < face::kLandmarkCount; ++i) pose.points[i] = apply(to_matrix(f.to_canonical), f.points[i]);
      pose.head = head_motion_between(model->reference_to_canonical, f.to_canonical);
      cv::Mat real = crop_to_output(*model, frame.bgr);
      Landmarks real_points;
      for (int i = 0; i < face::kLandmarkCount; ++i) real_points[i] = apply(crop, f.points[i]);
      cv::Mat face_mask = hull_mask(real.size(), real_points, {{0, 27}});
      cv::Mat lower_mask = hull_mask(real.size(), real_points, {{2, 15}, {31, 36}});
      // Each frame alone (reset): a held-out frame is not the continuation of the one before.
      renderer->reset();
      const cv::Mat& rendered = renderer->render(pose);
      face_scores.add(compare(rendered, real, face_mask)), lower_scores.add(compare(rendered, real, lower_mask));
      // The baseline: the reference as it is (mouth at rest), moved the same way.
      cv::Mat moved;
      const cv::Matx23d to_out = canonical_to_output(*model);
      const cv::Matx23d head = compose(to_out, compose(to_matrix(model->reference_to_canonical),
                                                       compose(invert(to_matrix(f.to_canonical)), invert(to_out))));
      cv::warpAffine(model->reference, moved, head, real.size(), cv::INTER_LINEAR, cv::BORDER_REPLICATE);
      ref_face.add(compare(moved, real, face_mask)), ref_lower.add(compare(moved, real, lower_mask));
    }
  }
  return {{"format", "dself-eval-render"},
          {"version", 1},
          {"engine", "photoreal"},
          {"held_out", "last 20% of each source"},
          {"frames", face_scores.count},
          {"face", face_scores.json()},
          {"lower_face", lower_scores.json()},
          {"reference_only", {{"face", ref_face.json()}, {"lower_face", ref_lower.json()}}},
          {"model", describe(*model)}};
}

}  // namespace dself::render
