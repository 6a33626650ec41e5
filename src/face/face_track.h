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

// Where the shots change: a cut between two frames, or a dissolve over several.
struct ShotOptions {
  double cut_distance = 0.30;      // colour-layout distance between two frames that is a cut (0..1)
  int dissolve_span = 10;          // frames over which a dissolve is looked for
  double dissolve_distance = 0.35;  // distance across the span that is a dissolve...
  double dissolve_step = 0.03;     // ...when most steps inside it change at least this much
};

// One shot: [start_frame, end_frame); the first fade_frames are a dissolve from the shot before,
// where no track is kept.
struct Shot {
  int64_t start_frame = 0;
  int64_t end_frame = 0;
  int64_t fade_frames = 0;
};

struct TrackOptions {
  int redetect_every = 25;        // frames between detector runs while tracking
  double detect_scale = 0.5;      // the detector runs on the frame scaled by this
  double max_jump_iod = 0.35;     // a fit whose centre moves more than this (in IODs) re-detects
  double max_drift = 0.12;        // ...and one whose appearance (face/identity.h) drifts this far from
                                  // the last detection's
  double min_iod_px = 40;         // smaller faces are flagged kSmall
  double max_yaw_deg = 25;        // beyond these the frame is flagged kNotFrontal
  double max_pitch_deg = 20;
  double min_sharpness = 40;      // below this the frame is flagged kBlurry
  int smoothing_radius = 4;       // frames each side for the lag-free (centred) smoothing; mouth: 1
  int reference_count = 4;        // reference frames to keep, spread over the video
  int max_mouth_crops = 240;      // mouth crops to keep
  cv::Size mouth_crop_size{128, 96};
  int canonical_size = 256;       // the canonical face frame is this many pixels square
  ShotOptions shots;
  int descriptor_every = 5;       // a track's appearance is sampled every this many frames
  int thumbnail_size = 64;        // pixels square of a track's thumbnail (its canonical face)
};

// One face followed through consecutive frames of one shot (it never crosses a cut).
struct Track {
  int shot = 0;                      // index into FaceTrack::shots
  int64_t first_frame = 0;
  std::vector<TrackedFrame> frames;  // frames first_frame, first_frame + 1, ...; all with kFaceFound
  std::vector<float> descriptor;     // mean appearance (face/identity.h), normalised; empty if never sampled
  cv::Mat thumbnail;                 // its sharpest sampled face, canonical frame, BGR
  int64_t end_frame() const { return first_frame + static_cast<int64_t>(frames.size()); }
};

struct FaceTrack {
  int width = 0;
  int height = 0;
  double fps = 0;
  int64_t frame_count = 0;
  std::vector<Shot> shots;    // find_tracks: the video's shots, in order, covering every frame
  std::vector<Track> tracks;  // find_tracks: every face followed, shot by shot
  std::vector<TrackedFrame> frames;  // follow_tracks: the chosen face on every frame
  std::vector<ReferenceFrame> references;
  std::vector<MouthCrop> mouths;
  double found_share() const;  // frames with kFaceFound / all frames
};

using FrameProgress = std::function<void(int64_t frames_done, int64_t frame_count)>;

// Finds the shots of a video and follows every face through each shot, streaming its frames:
// shots and tracks (frames, references and mouths stay empty). Tracks are smoothed and
// described (flags, pose, appearance) within themselves; none crosses a shot change.
FaceTrack find_tracks(const std::filesystem::path& video, const FaceDetector& detector,
                      const TrackOptions& options = {}, const FrameProgress& progress = {});

// Reads the video again and fills frames (one per video frame: the chosen tracks' face, the
// biggest where two overlap; nothing found elsewhere), references and mouth crops from the
// tracks listed (indices into track.tracks) only.
void follow_tracks(const std::filesystem::path& video, FaceTrack& track, const std::vector<int>& chosen,
                   const TrackOptions& options = {}, const FrameProgress& progress = {});

// find_tracks, then follow_tracks on every track: for a video of one person.
FaceTrack track_faces(const std::filesystem::path& video, const FaceDetector& detector,
                      const TrackOptions& options = {}, const FrameProgress& progress = {});

// Writes tracks.json (shots, tracks with their frame ranges and appearance), tracks.bin (the
// tracks' frames) and tracks.png (thumbnails, in track order) into dir, each atomically.
void write_tracks(const std::filesystem::path& dir, const FaceTrack& track, const TrackOptions& options);

// Reads what write_tracks wrote (thumbnails included). Throws InputError naming the file.
FaceTrack read_tracks(const std::filesystem::path& dir);

// Writes landmarks.bin, references/ (PNG + references.json), mouths.png + mouths.json and
// summary.json into dir, each atomically, summary.json last.
void write_face_track(const std::filesystem::path& dir, const FaceTrack& track, const TrackOptions& options);

// Reads landmarks.bin (frames only). Throws InputError naming the file when it is not one.
FaceTrack read_landmarks(const std::filesystem::path& path);

// landmarks.bin's bytes for a track's frames, and back (InputError naming `name` for bytes that
// are not a whole landmarks file of this version).
std::string landmarks_bytes(const FaceTrack& track);
// One frame's fixed-size record, as landmarks.bin and tracks.bin store it (little-endian).
constexpr uint32_t kFrameRecordBytes = 8 + 4 + kLandmarkCount * 8 + 3 * 4 + 4 * 4 + 4 + 4;
void put_frame_record(std::string& bin, const TrackedFrame& frame);
TrackedFrame get_frame_record(std::string_view bin, size_t& at);  // `at` moves past it; the caller checks the size
FaceTrack parse_landmarks(std::string_view bytes, const std::string& name);

}  // namespace dself::face
