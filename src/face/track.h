// The face track of one video (prepare's face step): the person's 68 landmarks on every frame
// (temporally smoothed without lag), head pose, quality flags and the alignment to a canonical
// face frame; and what the renderer needs later: a few reference frames and mouth crops that
// cover the person's mouth shapes. Files: docs/FORMATS.md, "The face track".
//
// The names live in face::track only while src/face/face_track.h (another take on the same
// step) shares the library; the two must not define the same symbols.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "face/face.h"

namespace dself::face::track {

using Landmarks = std::array<cv::Point2f, kLandmarkCount>;

// Bits of FrameTrack::flags (stored as is in landmarks.bin).
constexpr uint32_t kFaceFound = 1u << 0;   // the person's face is on this frame; points are valid
constexpr uint32_t kSmall = 1u << 1;       // inter-ocular distance below TrackOptions::min_iod_px
constexpr uint32_t kNotFrontal = 1u << 2;  // |yaw| or |pitch| beyond TrackOptions::max_*_deg
constexpr uint32_t kBlurry = 1u << 3;      // blur_score below TrackOptions::min_blur_score
constexpr uint32_t kDetected = 1u << 4;    // the HOG detector ran and saw the face on this frame
constexpr uint32_t kOtherFace = 1u << 5;   // a face was tracked here, but not the video's person

// Head rotation from the landmarks and a generic 3-D face (degrees; 0, 0, 0 faces the camera).
struct HeadPose {
  float yaw_deg = 0;    // + the face turns towards the image's right
  float pitch_deg = 0;  // + the face tilts down
  float roll_deg = 0;   // + the face tilts clockwise in the image
};

// Image pixels -> canonical face frame: x' = a x - b y + tx, y' = b x + a y + ty.
struct Similarity {
  float a = 1, b = 0, tx = 0, ty = 0;
  cv::Point2f apply(cv::Point2f p) const { return {a * p.x - b * p.y + tx, b * p.x + a * p.y + ty}; }
  float scale() const;
  Similarity inverse() const;
  cv::Matx23f matrix() const { return {a, -b, tx, b, a, ty}; }
};

// One video frame's record (one fixed-size record of landmarks.bin).
struct FrameTrack {
  double time_s = 0;        // presentation time
  uint32_t flags = 0;       // kFaceFound | kSmall | ...
  Landmarks points{};       // image pixels; zeros when the face is not found
  HeadPose pose;
  Similarity to_canonical;  // image -> canonical face frame (TrackOptions::canonical_size square)
  float iod_px = 0;         // inter-ocular distance in image pixels
  float blur_score = 0;     // variance of the Laplacian of the aligned face; higher is sharper
};

// A whole frame where the person looks at the camera, sharp, mouth closed, eyes open.
struct ReferenceFrame {
  int64_t frame = 0;
  double time_s = 0;
  cv::Mat image;  // BGR, the whole frame
  Landmarks points{};
  float mouth_opening = 0;  // inner-lip gap (62-66) / IOD
  float eye_openness = 0;   // eye aspect ratio, mean of both eyes
  float blur_score = 0;
};

// A mouth-region crop cut from the canonical face frame (a fixed rectangle of it, so that every
// crop has the same scale, roll and place), with all 68 landmarks in crop pixels.
struct MouthCrop {
  int64_t frame = 0;
  double time_s = 0;
  cv::Mat image;            // BGR, TrackOptions::mouth_crop_size
  Landmarks points{};       // crop pixels (points away from the mouth fall outside the crop)
  Similarity to_crop;       // image pixels -> crop pixels
  float opening = 0;        // inner-lip gap (62-66) / IOD
  float width = 0;          // mouth corners (48-54) / IOD
};

struct TrackOptions {
  // Finding and following the face
  double detect_scale = 0.5;      // a full frame is searched at this scale (0.5: 4x faster)
  int redetect_every = 15;        // frames between the detector's confirmations while tracking
  int lost_detect_every = 4;      // frames between searches while no face is tracked
  int fit_passes = 2;             // landmark fits per frame, each in the box the last one gives
  int calibrations = 6;           // full-resolution detections that place the box, per track
  int calibrate_every = 5;        // frames between them, from the track's start
  double max_jump_iod = 0.5;      // a fit moving more than this (in IODs) in one frame is lost
  double max_scale_change = 0.2;  // ... and one whose IOD changes by more than this share
  double max_shape_residual = 0.12;  // ... and one whose stable points leave the mean face (IODs)
  // Smoothing (centred in time, so without lag)
  int head_smooth_radius = 2;     // frames each side for the head's motion (a similarity)
  int smooth_radius = 2;          // ... for the face's shape at the eyes and nose
  int contour_smooth_radius = 6;  // ... at the jaw's sides and the brows
  int mouth_smooth_radius = 1;    // ... at the lips and chin, to keep lip sync
  // Quality flags
  double min_iod_px = 40;         // kSmall below this
  double max_yaw_deg = 25;        // kNotFrontal beyond this
  double max_pitch_deg = 20;      // kNotFrontal beyond this
  double min_blur_score = 30;     // kBlurry below this
  // What the renderer gets
  int canonical_size = 256;       // the canonical face frame is this many pixels square
  int reference_count = 4;        // reference frames, one from each part of the video
  double reference_max_opening = 0.04;  // mouth closed: inner-lip gap / IOD below this
  double reference_min_eyes = 0.2;      // eyes open: eye aspect ratio above this
  cv::Size mouth_crop_size{128, 96};    // canonical-frame pixels
  int mouth_crops_per_bin = 12;   // crops kept per (opening, width) bin
  int max_mouth_crops = 300;      // crops kept in all
};

// Counts of the work done, for speed reports.
struct TrackStats {
  int64_t detector_runs = 0;  // HOG detector calls (full frames and regions)
  int64_t fits = 0;           // shape predictor calls
  int64_t reacquired = 0;     // times the face was found again after being lost
  double seconds = 0;         // wall time of track_faces
};

struct FaceTrack {
  int width = 0;
  int height = 0;
  double fps = 0;
  std::vector<FrameTrack> frames;  // one per video frame, in order
  std::vector<ReferenceFrame> references;
  std::vector<MouthCrop> mouths;   // sorted by opening
  TrackStats stats;
  double found_share() const;  // frames with kFaceFound / frames; 0 for no frames
  double mean_iod_px() const;  // over the frames with kFaceFound; 0 if none
};

using TrackProgress = std::function<void(int64_t frames_done, int64_t frame_count)>;

// Tracks the video's person (the face followed over most frames; at the start, the largest and
// most central) through the video, streaming its frames (memory stays flat). Frames without the
// person are kept and flagged. A video without faces gives a track with nothing found. Throws
// InputError (from the media library) when the video cannot be read.
FaceTrack track_faces(const std::filesystem::path& video, const FaceDetector& detector,
                      const TrackOptions& options = {}, const TrackProgress& progress = {});

// The same with Debian's dlib models (loading them takes about a second: reuse a FaceDetector
// for many videos). Throws EnvironmentError when libdlib-data is missing.
FaceTrack track_faces(const std::filesystem::path& video, const TrackOptions& options = {},
                      const TrackProgress& progress = {});

// Centred landmark smoothing, in place (track_faces does it; exposed for measuring it).
void smooth_landmarks(std::vector<FrameTrack>& frames, const TrackOptions& options);

// Writes dir/landmarks.bin, dir/references/ (NN.png + references.json), dir/mouths.png +
// dir/mouths.json and dir/summary.json (last), each atomically.
void write_face_track(const std::filesystem::path& dir, const FaceTrack& track, const TrackOptions& options = {});

// Reads landmarks.bin: size, fps and frames (no references or mouths). Throws InputError
// naming the file when it is not a landmarks file of a version this build reads.
FaceTrack read_landmarks(const std::filesystem::path& path);

}  // namespace dself::face::track
