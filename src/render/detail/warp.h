// Piecewise-affine warps on a triangulation, feathered masks and alpha blending: the image
// operations the photoreal renderer is made of, written to run at video rate on one core.
#pragma once

#include <span>
#include <vector>

#include <opencv2/core.hpp>

#include "render/detail/model.h"

namespace dself::render {

// Delaunay triangles over the points (indices into `points`).
std::vector<Triangle> delaunay(std::span<const cv::Point2f> points);

// A remap table for `roi` (destination pixels): each destination pixel inside a triangle of `dst`
// maps to the same barycentric place in the matching triangle of `src`; pixels in no triangle map
// far outside any image, so cv::remap leaves them as they were (BORDER_TRANSPARENT) or zero
// (BORDER_CONSTANT). `src_offset` is subtracted from the source positions (a crop's corner).
void piecewise_affine_map(std::span<const cv::Point2f> src, std::span<const cv::Point2f> dst,
                          std::span<const Triangle> triangles, cv::Rect roi, cv::Point2f src_offset,
                          cv::Mat& map);

// An 8-bit mask of `size`: 255 well inside the polygon, falling to 0 at its edge over feather_px.
cv::Mat feathered_mask(cv::Size size, std::span<const cv::Point2f> polygon, double feather_px);

// dst = dst + (src - dst) * alpha * strength / 255^2 per pixel: dst 8-bit BGR, src 8-bit BGRA
// (alpha last), same size.
void blend(cv::Mat& dst, const cv::Mat& src, int strength = 255);

}  // namespace dself::render
