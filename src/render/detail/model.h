// The photoreal model's insides, shared by the files of dself_render (not part of its API).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "face/face_track.h"
#include "render/render.h"

namespace dself::render {

using motion::Landmarks;

// Bump when the model's files change meaning for the same inputs: cached models are rebuilt.
constexpr const char* kModelVersion = "photoreal-1";

// Vertex indices of one triangle.
using Triangle = std::array<int, 3>;

// A real crop of the person: a region of one of their frames, moved into the reference's output
// frame at rest (the frame's own similarity to the canonical face, then the reference's back), so
// its landmarks are comparable with the reference's and the targets'.
struct Crop {
  int64_t source_id = 0;
  int64_t frame = 0;
  double time_s = 0;
  Landmarks points{};  // all 68, output pixels at rest
  float opening = 0;   // mouth: inner-lip opening / IOD; eyes: mean eye opening / IOD
  float width = 0;     // mouth: corner distance / IOD; eyes: unused
  cv::Mat image;       // BGR as stored, colour-matched to the reference, the part's rect size;
                       // BGRA once loaded, alpha the feathered blending mask (from the points)
};

// One region that is replaced with real crops: the mouth with the jaw, or the eyes.
struct Part {
  cv::Rect rect;             // where its crops were cut, output pixels at rest
  std::vector<Crop> crops;
  std::vector<int> indices;  // landmarks the warp follows
  std::vector<Triangle> triangles;  // over `indices` (positions in that list)
};

struct PhotorealModel {
  PhotorealOptions options;
  std::string input_hash;

  // The reference frame and the output crop around its head: output = (source - origin) * scale.
  int64_t reference_source = 0;
  int64_t reference_frame = 0;
  double reference_time_s = 0;
  face::Similarity reference_to_canonical;
  cv::Point2d origin;
  double scale = 1;
  cv::Mat reference;          // BGR, size x size
  Landmarks reference_points{};  // output pixels
  float iod_px = 0;           // the reference's inter-ocular distance in output pixels
  float reference_eye_opening = 0;  // eye opening / IOD on the reference

  Part mouth;
  Part eyes;

  // The reference's lower face is warped to follow the target jaw: these landmarks move, anchors
  // (output pixels, fixed) hold the rest of the frame still.
  std::vector<int> jaw_indices;
  std::vector<cv::Point2f> jaw_anchors;
  std::vector<Triangle> jaw_triangles;  // over jaw_indices then jaw_anchors

  int source_count = 0;
  int64_t usable_frames = 0;
};

// canonical face frame -> output pixels at rest (the reference's similarity inverted, then the crop).
cv::Matx23d canonical_to_output(const PhotorealModel& model);

// Builds the model from the avatar's prepared sources (no cache involved).
std::shared_ptr<PhotorealModel> build_photoreal_model(const std::filesystem::path& avatar,
                                                       const PhotorealOptions& options);

// Derived state (triangulations, alpha masks) computed once after building or loading.
void finish_model(PhotorealModel& model);

// Mouth and eye measures, in units of the points' inter-ocular distance.
float mouth_opening(const Landmarks& points);
float mouth_width(const Landmarks& points);
float eye_opening(const Landmarks& points);

// A similarity as a 2x3 matrix, its inverse, and composition (a after b).
cv::Matx23d to_matrix(const face::Similarity& s);
cv::Matx23d invert(const cv::Matx23d& m);
cv::Matx23d compose(const cv::Matx23d& a, const cv::Matx23d& b);
cv::Point2f apply(const cv::Matx23d& m, cv::Point2f p);

// The real frame cut to the model's output crop (as the reference was).
cv::Mat crop_to_output(const PhotorealModel& model, const cv::Mat& frame);

}  // namespace dself::render

namespace dself::render {

// The mouth crop a photoreal renderer drew last (-1 before the first frame); for tests.
int current_mouth_crop(const Renderer& renderer);

}  // namespace dself::render
