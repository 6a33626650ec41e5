// The face track of a video (prepare's face step): the person's 68 landmarks on every frame,
// head pose, quality flags and a canonical alignment; plus what the renderer needs later — a few
// reference frames and mouth crops that cover the person's mouth shapes. Formats: docs/FORMATS.md.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <opencv2/core.hpp>

#include "face/face.h"

namespace dself::face {

// Per-frame quality flags (bits).
enum FrameFlag : uint32_t {
  kFaceFound = 1u << 0,   // the person's face is on this frame
  kSmall = 1u << 1,       // inter-ocular distance below TrackOptions::min_iod_px
  kNotFrontal = 1u << 2,  // |yaw| or |pitch| beyond the limits
  kBlurry = 1u << 3,      // variance of the Laplacian in the face box below min_sharpness
  kDetected = 1u << 4,    // the box came from the detector on this frame (not tracked)
};

struct HeadPose {
  float yaw_deg = 0;    // + turned to the image's right
  float pitch_deg = 0;  // + looking down
  float roll_deg = 0;   // + tilted clockwise in the image
};

// x' = a x - b y + tx, y' = b x + a y + ty: image pixels to the canonical face frame.
struct Similarity {
  float a = 1, b = 0, tx = 0, ty = 0;
};

struct TrackedFrame {
  double time_s = 0;
  uint32_t flags = 0;
  std::array<cv::Point2f, kLandmarkCount> points{};  // image pixels; zero when not found
  HeadPose pose;
  Similarity to_canonical;
  float iod_px = 0;      // inter-ocular distance
  float sharpness = 0;   // variance of the Laplacian over the face box
};

struct ReferenceFrame {
  int64_t frame = 0;
  double time_s = 0;
  cv::Mat image;  // the whole frame, BGR
  std::array<cv::Point2f, kLandmarkCount> points{};
};

// A mouth-region crop in the canonical frame, with the mouth's landmarks (48-67) in crop pixels.
struct MouthCrop {
  int64_t frame = 0;
  cv::Mat image;  // BGR, TrackOptions::mouth_crop_size
  std::array<cv::Point2f, 20> points{};
  float opening = 0;  // inner-lip opening (62-66) / IOD
  float width = 0;    // mouth corner distance (48-54) / IOD
};

struct TrackOptions {
  int redetect_every = 25;        // frames between detector runs while tracking
  double detect_scale = 0.5;      // the detector runs on the frame scaled by this
  double max_jump_iod = 0.35;     // a fit whose centre moves more than this (in IODs) re-detects
  double min_iod_px = 40;         // smaller faces are flagged kSmall
  double max_yaw_deg = 25;        // beyond these the frame is flagged kNotFrontal
  double max_pitch_deg = 20;
  double min_sharpness = 40;      // below this the frame is flagged kBlurry
  int smoothing_radius = 4;       // frames each side for the lag-free (centred) smoothing; mouth: 1
  int reference_count = 4;        // reference frames to keep, spread over the video
  int max_mouth_crops = 240;      // mouth crops to keep
  cv::Size mouth_crop_size{128, 96};
  int canonical_size = 256;       // the canonical face frame is this many pixels square
};

struct FaceTrack {
  int width = 0;
  int height = 0;
  double fps = 0;
  std::vector<TrackedFrame> frames;
  std::vector<ReferenceFrame> references;
  std::vector<MouthCrop> mouths;
  double found_share() const;  // frames with kFaceFound / all frames
};

using FrameProgress = std::function<void(int64_t frames_done, int64_t frame_count)>;

// Tracks the dominant face (the first, largest face, followed from frame to frame) through a
// video, streaming its frames. A video without a face gives a track with nothing found.
FaceTrack track_faces(const std::filesystem::path& video, const FaceDetector& detector,
                      const TrackOptions& options = {}, const FrameProgress& progress = {});

// Writes landmarks.bin, references/ (PNG + references.json), mouths.png + mouths.json and
// summary.json into dir, each atomically, summary.json last.
void write_face_track(const std::filesystem::path& dir, const FaceTrack& track, const TrackOptions& options);

// Reads landmarks.bin (frames only). Throws InputError naming the file when it is not one.
FaceTrack read_landmarks(const std::filesystem::path& path);

// landmarks.bin's bytes for a track's frames, and back (InputError naming `name` for bytes that
// are not a whole landmarks file of this version).
std::string landmarks_bytes(const FaceTrack& track);
FaceTrack parse_landmarks(std::string_view bytes, const std::string& name);

}  // namespace dself::face
