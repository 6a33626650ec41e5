#include "render/detail/warp.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

namespace dself::render {

std::vector<Triangle> delaunay(std::span<const cv::Point2f> points) {
  cv::Rect2f bounds = cv::boundingRect(std::vector<cv::Point2f>(points.begin(), points.end()));
  cv::Subdiv2D subdiv(cv::Rect(static_cast<int>(std::floor(bounds.x)) - 2, static_cast<int>(std::floor(bounds.y)) - 2,
                               static_cast<int>(std::ceil(bounds.width)) + 5, static_cast<int>(std::ceil(bounds.height)) + 5));
  for (const cv::Point2f& p : points) subdiv.insert(p);
  std::vector<cv::Vec6f> list;
  subdiv.getTriangleList(list);
  // Subdiv2D gives positions, not indices: find each vertex among the points (they are distinct).
  auto index_of = [&](float x, float y) {
    int best = -1;
    double best_d = 1e-2;
    for (size_t i = 0; i < points.size(); ++i) {
      double d = std::abs(points[i].x - x) + std::abs(points[i].y - y);
      if (d < best_d) best = static_cast<int>(i), best_d = d;
    }
    return best;
  };
  std::vector<Triangle> triangles;
  for (const cv::Vec6f& t : list) {
    Triangle tri{index_of(t[0], t[1]), index_of(t[2], t[3]), index_of(t[4], t[5])};
    if (tri[0] >= 0 && tri[1] >= 0 && tri[2] >= 0) triangles.push_back(tri);
  }
  return triangles;
}

void piecewise_affine_map(std::span<const cv::Point2f> src, std::span<const cv::Point2f> dst,
                          std::span<const Triangle> triangles, cv::Rect roi, cv::Point2f src_offset,
                          cv::Mat& map) {
  constexpr float kOutside = -1e5f;
  map.create(roi.size(), CV_32FC2);
  map.setTo(cv::Scalar(kOutside, kOutside));
  for (const Triangle& t : triangles) {
    const cv::Point2f d0 = dst[t[0]], d1 = dst[t[1]], d2 = dst[t[2]];
    // Barycentric coordinates of a destination pixel; a degenerate (folded flat) triangle is skipped.
    double det = (d1.y - d2.y) * (d0.x - d2.x) + (d2.x - d1.x) * (d0.y - d2.y);
    if (std::abs(det) < 1e-6) continue;
    const cv::Point2f s0 = src[t[0]] - src_offset, s1 = src[t[1]] - src_offset, s2 = src[t[2]] - src_offset;
    int x0 = std::max(roi.x, static_cast<int>(std::floor(std::min({d0.x, d1.x, d2.x}))));
    int x1 = std::min(roi.x + roi.width - 1, static_cast<int>(std::ceil(std::max({d0.x, d1.x, d2.x}))));
    int y0 = std::max(roi.y, static_cast<int>(std::floor(std::min({d0.y, d1.y, d2.y}))));
    int y1 = std::min(roi.y + roi.height - 1, static_cast<int>(std::ceil(std::max({d0.y, d1.y, d2.y}))));
    const double eps = -1e-4;
    for (int y = y0; y <= y1; ++y) {
      auto* row = map.ptr<cv::Vec2f>(y - roi.y);
      for (int x = x0; x <= x1; ++x) {
        double l0 = ((d1.y - d2.y) * (x - d2.x) + (d2.x - d1.x) * (y - d2.y)) / det;
        double l1 = ((d2.y - d0.y) * (x - d2.x) + (d0.x - d2.x) * (y - d2.y)) / det;
        double l2 = 1 - l0 - l1;
        if (l0 < eps || l1 < eps || l2 < eps) continue;
        row[x - roi.x] = cv::Vec2f(static_cast<float>(l0 * s0.x + l1 * s1.x + l2 * s2.x),
                                   static_cast<float>(l0 * s0.y + l1 * s1.y + l2 * s2.y));
      }
    }
  }
}

cv::Mat feathered_mask(cv::Size size, std::span<const cv::Point2f> polygon, double feather_px) {
  cv::Mat hard = cv::Mat::zeros(size, CV_8U);
  std::vector<cv::Point> vertices;
  for (const cv::Point2f& p : polygon) vertices.emplace_back(cvRound(p.x), cvRound(p.y));
  cv::fillPoly(hard, std::vector<std::vector<cv::Point>>{vertices}, cv::Scalar(255), cv::LINE_AA);
  // Shrink by half the feather, then blur by it: the mask reaches 0 at the polygon's edge.
  int half = std::max(1, static_cast<int>(std::lround(feather_px / 2)));
  cv::erode(hard, hard, cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * half + 1, 2 * half + 1)));
  int kernel = 2 * static_cast<int>(std::lround(feather_px / 2)) + 1;
  cv::GaussianBlur(hard, hard, cv::Size(kernel, kernel), feather_px / 4);
  return hard;
}

void blend(cv::Mat& dst, const cv::Mat& src, int strength) {
  for (int y = 0; y < dst.rows; ++y) {
    auto* d = dst.ptr<uint8_t>(y);
    const auto* s = src.ptr<uint8_t>(y);
    for (int x = 0; x < dst.cols; ++x) {
      int w = strength == 255 ? s[4 * x + 3] : s[4 * x + 3] * strength / 255;
      if (w == 0) continue;
      for (int c = 0; c < 3; ++c) {
        int v = d[3 * x + c];
        int diff = (s[4 * x + c] - v) * w;
        d[3 * x + c] = static_cast<uint8_t>(v + (diff + (diff >= 0 ? 127 : -127)) / 255);
      }
    }
  }
}

}  // namespace dself::render
