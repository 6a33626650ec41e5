#include "sample/detail/render.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <opencv2/imgproc.hpp>

#include "core/log.h"
#include "core/random.h"

namespace dself::sample {

namespace {

constexpr int kAnchorCount = 20;       // fixed points on an ellipse around the face
constexpr double kAnchorWidth = 0.8;   // ellipse half-width / jaw width
constexpr double kAnchorHeight = 1.0;  // ellipse half-height / brow-to-chin height
constexpr double kLayoutOpen = 0.6;    // mouth opening the triangulation is laid out on

const cv::Scalar kCavity(35, 30, 72);  // BGR: the mouth's dark red-brown inside
const cv::Scalar kTongue(80, 78, 150);
const cv::Scalar kTeeth(185, 198, 208);

// ref: Catmull & Rom (1974); the uniform closed spline through the points.
std::vector<cv::Point2f> closed_spline(const std::vector<cv::Point2f>& points, int samples_per_segment) {
  std::vector<cv::Point2f> curve;
  auto n = static_cast<int>(points.size());
  for (int i = 0; i < n; ++i) {
    const cv::Point2f& p0 = points[(i + n - 1) % n];
    const cv::Point2f& p1 = points[i];
    const cv::Point2f& p2 = points[(i + 1) % n];
    const cv::Point2f& p3 = points[(i + 2) % n];
    for (int k = 0; k < samples_per_segment; ++k) {
      float t = static_cast<float>(k) / static_cast<float>(samples_per_segment);
      float t2 = t * t;
      float t3 = t2 * t;
      curve.push_back(0.5f * ((2 * p1) + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t2 +
                              (-p0 + 3 * p1 - 3 * p2 + p3) * t3));
    }
  }
  return curve;
}

// Points in fixed-point pixels (4 fractional bits) relative to an origin, for antialiased fills.
constexpr int kShift = 4;
std::vector<cv::Point> fixed_point(const std::vector<cv::Point2f>& points, cv::Point origin) {
  std::vector<cv::Point> out;
  for (const cv::Point2f& p : points) {
    out.emplace_back(static_cast<int>(std::lround((p.x - static_cast<float>(origin.x)) * (1 << kShift))),
                     static_cast<int>(std::lround((p.y - static_cast<float>(origin.y)) * (1 << kShift))));
  }
  return out;
}

}  // namespace

Renderer::Renderer(const Portrait& portrait) : portrait_(portrait) {
  const Landmarks& rest = portrait.rest;
  cv::Point2f centre = face::centroid(rest, 0, face::kLandmarkCount);
  double jaw_width = cv::norm(rest[0] - rest[16]);
  float brow_top = rest[17].y;
  for (int i = 17; i < 27; ++i) brow_top = std::min(brow_top, rest[i].y);
  double face_height = rest[8].y - brow_top;
  for (int k = 0; k < kAnchorCount; ++k) {
    double angle = 2 * std::numbers::pi * k / kAnchorCount;
    anchors_.emplace_back(centre.x + static_cast<float>(kAnchorWidth * jaw_width * std::cos(angle)),
                          centre.y + static_cast<float>(kAnchorHeight * face_height * std::sin(angle)));
  }

  // Triangulate with the mouth half open, so that the lips and the gap between them get
  // well-shaped triangles of their own (at rest the inner lips nearly coincide).
  Articulation layout_pose;
  layout_pose.open = kLayoutOpen;
  Landmarks layout = articulate(rest, portrait.inter_ocular_px, layout_pose);
  std::vector<cv::Point2f> points(layout.begin(), layout.end());
  points.insert(points.end(), anchors_.begin(), anchors_.end());
  cv::Rect2f bounds = cv::boundingRect(points);
  cv::Subdiv2D subdiv(cv::Rect(static_cast<int>(bounds.x) - 10, static_cast<int>(bounds.y) - 10,
                               static_cast<int>(bounds.width) + 20, static_cast<int>(bounds.height) + 20));
  for (const cv::Point2f& p : points) subdiv.insert(p);
  std::vector<cv::Vec6f> list;
  subdiv.getTriangleList(list);
  auto index_of = [&](float x, float y) {
    for (size_t i = 0; i < points.size(); ++i) {
      if (std::abs(points[i].x - x) < 1e-3f && std::abs(points[i].y - y) < 1e-3f) return static_cast<int>(i);
    }
    return -1;  // one of Subdiv2D's outer virtual vertices
  };
  for (const cv::Vec6f& t : list) {
    std::array<int, 3> tri = {index_of(t[0], t[1]), index_of(t[2], t[3]), index_of(t[4], t[5])};
    if (tri[0] < 0 || tri[1] < 0 || tri[2] < 0) continue;
    // Triangles of anchors only never move: the identity map already covers them.
    if (std::min({tri[0], tri[1], tri[2]}) >= face::kLandmarkCount) continue;
    triangles_.push_back(tri);
  }

  cv::Rect canvas_rect(0, 0, portrait.canvas.cols, portrait.canvas.rows);
  cv::Rect2f ring = cv::boundingRect(anchors_);
  region_ = cv::Rect(static_cast<int>(std::floor(ring.x)) - 2, static_cast<int>(std::floor(ring.y)) - 2,
                     static_cast<int>(std::ceil(ring.width)) + 5, static_cast<int>(std::ceil(ring.height)) + 5) &
            canvas_rect;
  identity_x_.create(region_.size(), CV_32F);
  identity_y_.create(region_.size(), CV_32F);
  for (int y = 0; y < region_.height; ++y) {
    for (int x = 0; x < region_.width; ++x) {
      identity_x_.at<float>(y, x) = static_cast<float>(x + region_.x);
      identity_y_.at<float>(y, x) = static_cast<float>(y + region_.y);
    }
  }
}

void Renderer::warp_face(const Landmarks& face) {
  identity_x_.copyTo(map_x_);
  identity_y_.copyTo(map_y_);
  auto target = [&](int i) { return i < face::kLandmarkCount ? face[i] : anchors_[i - face::kLandmarkCount]; };
  auto source = [&](int i) {
    return i < face::kLandmarkCount ? portrait_.rest[i] : anchors_[i - face::kLandmarkCount];
  };
  for (const auto& tri : triangles_) {
    cv::Point2d d0 = target(tri[0]), d1 = target(tri[1]), d2 = target(tri[2]);
    cv::Point2d s0 = source(tri[0]), s1 = source(tri[1]), s2 = source(tri[2]);
    if (cv::norm(d0 - s0) + cv::norm(d1 - s1) + cv::norm(d2 - s2) < 1e-3) continue;  // unmoved
    cv::Point2d e1 = d1 - d0, e2 = d2 - d0;
    double det = e1.x * e2.y - e1.y * e2.x;
    if (std::abs(det) < 1e-6) continue;  // flat: covers no pixel
    // (u, v): barycentric coordinates of a frame pixel in the target triangle; the source
    // point is then s0 + u (s1 - s0) + v (s2 - s0).
    double ux = e2.y / det, uy = -e2.x / det;
    double vx = -e1.y / det, vy = e1.x / det;
    cv::Point2d f1 = s1 - s0, f2 = s2 - s0;
    int x_min = std::max(region_.x, static_cast<int>(std::floor(std::min({d0.x, d1.x, d2.x}))));
    int x_max = std::min(region_.br().x - 1, static_cast<int>(std::ceil(std::max({d0.x, d1.x, d2.x}))));
    int y_min = std::max(region_.y, static_cast<int>(std::floor(std::min({d0.y, d1.y, d2.y}))));
    int y_max = std::min(region_.br().y - 1, static_cast<int>(std::ceil(std::max({d0.y, d1.y, d2.y}))));
    constexpr double kEdge = 1e-4;  // pixels on a shared edge belong to both triangles
    for (int y = y_min; y <= y_max; ++y) {
      auto* row_x = map_x_.ptr<float>(y - region_.y);
      auto* row_y = map_y_.ptr<float>(y - region_.y);
      for (int x = x_min; x <= x_max; ++x) {
        double px = x - d0.x, py = y - d0.y;
        double u = ux * px + uy * py;
        double v = vx * px + vy * py;
        if (u < -kEdge || v < -kEdge || u + v > 1 + kEdge) continue;
        row_x[x - region_.x] = static_cast<float>(s0.x + u * f1.x + v * f2.x);
        row_y[x - region_.x] = static_cast<float>(s0.y + u * f1.y + v * f2.y);
      }
    }
  }
  portrait_.canvas.copyTo(canvas_);
  cv::Mat face_region = canvas_(region_);
  cv::remap(portrait_.canvas, face_region, map_x_, map_y_, cv::INTER_LINEAR, cv::BORDER_REPLICATE);
}

void Renderer::draw_mouth(const Landmarks& face) {
  double iod = portrait_.inter_ocular_px;
  double gap = cv::norm(face[62] - face[66]);
  // The portrait's own lips are shown as they are at rest: the inside appears as they part
  // further, fading in over the first 3% of the inter-ocular distance.
  double parted = gap - cv::norm(portrait_.rest[62] - portrait_.rest[66]);
  if (parted < 0.5) return;
  double visibility = std::min(1.0, parted / (0.03 * iod));
  std::vector<cv::Point2f> inner(face.begin() + 60, face.begin() + 68);
  constexpr int kSamples = 8;
  std::vector<cv::Point2f> outline = closed_spline(inner, kSamples);
  cv::Rect box =
      (cv::boundingRect(outline) + cv::Size(4, 4) - cv::Point(2, 2)) & cv::Rect(0, 0, canvas_.cols, canvas_.rows);
  if (box.empty()) return;

  cv::Point2f ex = face[64] - face[60];
  ex *= 1.0f / std::max(1e-3f, std::hypot(ex.x, ex.y));
  cv::Point2f ey(-ex.y, ex.x);
  cv::Mat inside(box.size(), CV_8UC3, kCavity);
  // Tongue low in the mouth, seen once the jaw drops.
  if (gap > 0.08 * iod) {
    cv::Point2f centre = face[66] - ey * static_cast<float>(0.2 * gap) - cv::Point2f(box.tl());
    cv::Size axes(static_cast<int>(0.35 * cv::norm(face[64] - face[60]) * (1 << kShift)),
                  static_cast<int>(0.3 * gap * (1 << kShift)));
    double angle = std::atan2(ex.y, ex.x) * 180 / std::numbers::pi;
    cv::ellipse(inside,
                cv::Point(static_cast<int>(centre.x * (1 << kShift)), static_cast<int>(centre.y * (1 << kShift))), axes,
                angle, 0, 360, kTongue, cv::FILLED, cv::LINE_AA, kShift);
  }
  // Upper teeth: a band under the middle of the upper lip (the outline's first half runs along
  // the upper lip from corner 60 to corner 64).
  double teeth_height = std::min(0.06 * iod, 0.35 * gap);
  std::vector<cv::Point2f> upper_edge;
  float width = (face[64] - face[60]).dot(ex);
  for (size_t i = 0; i <= 4 * kSamples; ++i) {
    float along = (outline[i] - face[60]).dot(ex);
    if (along > 0.2f * width && along < 0.8f * width) upper_edge.push_back(outline[i]);
  }
  if (upper_edge.size() >= 2) {
    std::vector<cv::Point2f> teeth = upper_edge;
    for (auto it = upper_edge.rbegin(); it != upper_edge.rend(); ++it) {
      teeth.push_back(*it + ey * static_cast<float>(teeth_height));
    }
    std::vector<std::vector<cv::Point>> polygon = {fixed_point(teeth, box.tl())};
    cv::fillPoly(inside, polygon, kTeeth, cv::LINE_AA, kShift);
  }

  // Blend the inside into the frame through an antialiased mask of the inner-lip outline,
  // shaded darker towards the lips (a blurred mask) so that it reads as depth.
  cv::Mat mask(box.size(), CV_8U, cv::Scalar(0));
  std::vector<std::vector<cv::Point>> polygon = {fixed_point(outline, box.tl())};
  cv::fillPoly(mask, polygon, cv::Scalar(255), cv::LINE_AA, kShift);
  cv::Mat depth;
  double blur_px = std::max(1.0, 0.15 * gap);
  cv::GaussianBlur(mask, depth, cv::Size(), blur_px);
  cv::Mat target = canvas_(box);
  auto alpha_scale = static_cast<int>(std::lround(256 * visibility));
  for (int y = 0; y < box.height; ++y) {
    const uchar* cover = mask.ptr<uchar>(y);
    const uchar* deep = depth.ptr<uchar>(y);
    const uchar* from = inside.ptr<uchar>(y);
    uchar* to = target.ptr<uchar>(y);
    for (int x = 0; x < box.width; ++x) {
      int a = cover[x] * alpha_scale >> 8;
      if (a == 0) continue;
      int shade = 140 + (115 * deep[x]) / 255;  // 0.55 .. 1 in 1/255ths
      for (int c = 0; c < 3; ++c) {
        int colour = from[3 * x + c] * shade / 255;
        to[3 * x + c] = static_cast<uchar>((colour * a + to[3 * x + c] * (255 - a) + 127) / 255);
      }
    }
  }
}

const cv::Mat& Renderer::render(const Pose& pose) {
  warp_face(pose.face);
  draw_mouth(pose.face);
  cv::warpAffine(canvas_, frame_, pose.head, cv::Size(portrait_.size, portrait_.size), cv::INTER_LINEAR,
                 cv::BORDER_REPLICATE);
  return frame_;
}

Portrait steadiest_framing(const std::vector<Portrait>& framings, const face::FaceDetector& detector) {
  // Probe poses drawn as Motion moves (mouth anywhere, eyes shut in one of four, head turned,
  // scaled and shifted): the same for every portrait and run.
  struct Probe {
    Articulation articulation;
    double roll_deg, scale;
    cv::Point2f shift;  // pixels at a 512-pixel frame
  };
  constexpr int kProbeCount = 12;
  std::vector<Probe> probes;
  Random random(0, "framing probes");
  for (int k = 0; k < kProbeCount; ++k) {
    Probe probe;
    probe.articulation = Articulation{random.uniform(0, 1), random.uniform(-1, 1), 0, k % 4 == 3 ? 1.0 : 0.0};
    probe.roll_deg = random.uniform(-2, 2);
    probe.scale = 1 + random.uniform(-0.008, 0.008);
    probe.shift = cv::Point2f(static_cast<float>(random.uniform(-4, 4)), static_cast<float>(random.uniform(-3, 3)));
    probes.push_back(probe);
  }
  size_t best = 0;
  double best_error = 0;
  for (size_t k = 0; k < framings.size(); ++k) {
    const Portrait& portrait = framings[k];
    Renderer renderer(portrait);
    double error = 0;
    for (const Probe& probe : probes) {
      Pose pose;
      pose.face = articulate(portrait.rest, portrait.inter_ocular_px, probe.articulation);
      pose.head = head_transform(portrait, probe.roll_deg, probe.scale, probe.shift * (portrait.size / 512.0f));
      pose.landmarks = transform(pose.head, pose.face);
      std::vector<face::FaceLandmarks> found = detector.detect(renderer.render(pose));
      if (found.size() != 1) {
        error += 1;  // lost, or doubled: as bad as it gets
        continue;
      }
      double sum = 0;
      for (int i = 0; i < face::kLandmarkCount; ++i) sum += cv::norm(found.front().points[i] - pose.landmarks[i]);
      error += sum / face::kLandmarkCount / face::inter_ocular_distance(pose.landmarks);
    }
    error /= kProbeCount;
    spdlog::debug(
        "sample: face at {:.0f}% of the frame width: dlib {:.2f}% of the inter-ocular distance off "
        "the commanded landmarks in probe poses",
        100 * portrait.face_fraction, 100 * error);
    if (k == 0 || error < best_error) {
      best = k;
      best_error = error;
    }
  }
  return framings[best];
}

}  // namespace dself::sample
