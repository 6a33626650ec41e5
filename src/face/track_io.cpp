// The face track on disk: landmarks.bin (fixed-size little-endian records), the reference frames,
// the mouth atlas and a summary. Layout: docs/FORMATS.md, "The face track".
#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "face/detail/track_geometry.h"
#include "face/detail/track_select.h"
#include "face/track.h"

namespace dself::face::track {

namespace {

static_assert(std::endian::native == std::endian::little, "landmarks.bin is written in the machine's byte order");

constexpr char kMagic[8] = {'D', 'S', 'L', 'M', 'A', 'R', 'K', 'S'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kHeaderBytes = 64;
// time (f64), flags (u32), 136 coordinates, yaw/pitch/roll, a/b/tx/ty, IOD, blur score (f32)
constexpr uint32_t kRecordBytes = 8 + 4 + kLandmarkCount * 2 * 4 + 3 * 4 + 4 * 4 + 4 + 4;
static_assert(kRecordBytes == 592);
constexpr int kAtlasColumns = 16;

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

template <typename T>
T take(const std::string& in, size_t& at) {
  T value;
  std::memcpy(&value, in.data() + at, sizeof value);
  at += sizeof value;
  return value;
}

std::string encode_landmarks(const FaceTrack& track, const TrackOptions& options) {
  std::string out;
  out.reserve(kHeaderBytes + track.frames.size() * kRecordBytes);
  out.append(kMagic, sizeof kMagic);
  put<uint32_t>(out, kVersion);
  put<uint32_t>(out, kHeaderBytes);
  put<uint32_t>(out, kRecordBytes);
  put<uint32_t>(out, kLandmarkCount);
  put<uint64_t>(out, track.frames.size());
  put<double>(out, track.fps);
  put<uint32_t>(out, static_cast<uint32_t>(track.width));
  put<uint32_t>(out, static_cast<uint32_t>(track.height));
  put<uint32_t>(out, static_cast<uint32_t>(options.canonical_size));
  out.resize(kHeaderBytes, '\0');
  for (const FrameTrack& f : track.frames) {
    put<double>(out, f.time_s);
    put<uint32_t>(out, f.flags);
    for (const cv::Point2f& p : f.points) put<float>(out, p.x), put<float>(out, p.y);
    put<float>(out, f.pose.yaw_deg), put<float>(out, f.pose.pitch_deg), put<float>(out, f.pose.roll_deg);
    put<float>(out, f.to_canonical.a), put<float>(out, f.to_canonical.b);
    put<float>(out, f.to_canonical.tx), put<float>(out, f.to_canonical.ty);
    put<float>(out, f.iod_px), put<float>(out, f.blur_score);
  }
  return out;
}

double rounded(double value, double unit) { return std::round(value / unit) * unit; }

nlohmann::json points_json(const Landmarks& points) {
  nlohmann::json xy = nlohmann::json::array();
  for (const cv::Point2f& p : points) xy.push_back(rounded(p.x, 0.01)), xy.push_back(rounded(p.y, 0.01));
  return xy;
}

void write_png(const std::filesystem::path& path, const cv::Mat& image) {
  std::vector<uchar> png;
  if (!cv::imencode(".png", image, png)) {
    throw EnvironmentError(fmt::format("cannot encode {} as PNG: OpenCV's imgcodecs lacks PNG support", path.string()));
  }
  write_file_atomic(path, std::string_view(reinterpret_cast<const char*>(png.data()), png.size()));
}

void write_references(const std::filesystem::path& dir, const FaceTrack& track) {
  std::filesystem::create_directories(dir / "references");
  nlohmann::json list = nlohmann::json::array();
  for (size_t i = 0; i < track.references.size(); ++i) {
    const ReferenceFrame& r = track.references[i];
    std::string file = fmt::format("references/{:02}.png", i);
    write_png(dir / file, r.image);
    list.push_back({{"file", file},
                    {"frame", r.frame},
                    {"time_s", rounded(r.time_s, 1e-4)},
                    {"mouth_opening", rounded(r.mouth_opening, 1e-4)},
                    {"eye_openness", rounded(r.eye_openness, 1e-4)},
                    {"blur_score", rounded(r.blur_score, 0.01)},
                    {"landmarks", points_json(r.points)}});
  }
  // A run that keeps fewer references than the last leaves none of the old ones behind.
  for (size_t i = track.references.size();; ++i) {
    std::filesystem::path stale = dir / fmt::format("references/{:02}.png", i);
    std::error_code ec;
    if (!std::filesystem::remove(stale, ec)) break;
  }
  nlohmann::json doc = {{"format", "dself-face-references"}, {"version", 1}, {"references", list}};
  write_file_atomic(dir / "references.json", doc.dump(1) + "\n");
}

void write_mouths(const std::filesystem::path& dir, const FaceTrack& track, const TrackOptions& options) {
  const cv::Size size = options.mouth_crop_size;
  nlohmann::json crops = nlohmann::json::array();
  std::error_code ec;
  if (track.mouths.empty()) {
    std::filesystem::remove(dir / "mouths.png", ec);
  } else {
    int rows = (static_cast<int>(track.mouths.size()) + kAtlasColumns - 1) / kAtlasColumns;
    cv::Mat atlas(rows * size.height, kAtlasColumns * size.width, CV_8UC3, cv::Scalar(0, 0, 0));
    for (size_t i = 0; i < track.mouths.size(); ++i) {
      const MouthCrop& m = track.mouths[i];
      int column = static_cast<int>(i) % kAtlasColumns, row = static_cast<int>(i) / kAtlasColumns;
      m.image.copyTo(atlas(cv::Rect(column * size.width, row * size.height, size.width, size.height)));
      crops.push_back({{"index", i},
                       {"frame", m.frame},
                       {"time_s", rounded(m.time_s, 1e-4)},
                       {"opening", rounded(m.opening, 1e-4)},
                       {"width", rounded(m.width, 1e-4)},
                       {"to_crop", {m.to_crop.a, m.to_crop.b, m.to_crop.tx, m.to_crop.ty}},
                       {"landmarks", points_json(m.points)}});
    }
    write_png(dir / "mouths.png", atlas);
  }
  cv::Rect2f rect = detail::mouth_rect(options.canonical_size, size);
  nlohmann::json doc = {{"format", "dself-face-mouths"},
                        {"version", 1},
                        {"atlas", track.mouths.empty() ? "" : "mouths.png"},
                        {"columns", kAtlasColumns},
                        {"crop_width", size.width},
                        {"crop_height", size.height},
                        {"canonical_size", options.canonical_size},
                        {"crop_in_canonical", {rect.x, rect.y, rect.width, rect.height}},
                        {"crops", crops}};
  write_file_atomic(dir / "mouths.json", doc.dump(1) + "\n");
}

void write_summary(const std::filesystem::path& dir, const FaceTrack& track, const TrackOptions& options) {
  int64_t found = 0, small = 0, not_frontal = 0, blurry = 0, detected = 0, other = 0;
  for (const FrameTrack& f : track.frames) {
    found += (f.flags & kFaceFound) != 0;
    small += (f.flags & kSmall) != 0;
    not_frontal += (f.flags & kNotFrontal) != 0;
    blurry += (f.flags & kBlurry) != 0;
    detected += (f.flags & kDetected) != 0;
    other += (f.flags & kOtherFace) != 0;
  }
  nlohmann::json summary = {
      {"format", "dself-face-track"},
      {"version", 1},
      {"width", track.width},
      {"height", track.height},
      {"fps", track.fps},
      {"frames", track.frames.size()},
      {"found_share", track.found_share()},
      {"mean_iod_px", rounded(track.mean_iod_px(), 0.01)},
      {"flags",
       {{"found", found},
        {"small", small},
        {"not_frontal", not_frontal},
        {"blurry", blurry},
        {"detected", detected},
        {"other_face", other}}},
      {"references", track.references.size()},
      {"mouth_crops", track.mouths.size()},
      {"thresholds",
       {{"min_iod_px", options.min_iod_px},
        {"max_yaw_deg", options.max_yaw_deg},
        {"max_pitch_deg", options.max_pitch_deg},
        {"min_blur_score", options.min_blur_score},
        {"reference_max_opening", options.reference_max_opening},
        {"reference_min_eyes", options.reference_min_eyes}}},
      {"work",
       {{"detector_runs", track.stats.detector_runs},
        {"fits", track.stats.fits},
        {"reacquired", track.stats.reacquired},
        {"seconds", rounded(track.stats.seconds, 0.001)}}}};
  if (found == 0) summary["message"] = "no face found: no frame has the person's face (see flags)";
  write_file_atomic(dir / "summary.json", summary.dump(1) + "\n");
}

}  // namespace

void write_face_track(const std::filesystem::path& dir, const FaceTrack& track, const TrackOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw EnvironmentError(fmt::format("cannot create {}: {}", dir.string(), ec.message()));
  write_file_atomic(dir / "landmarks.bin", encode_landmarks(track, options));
  write_references(dir, track);
  write_mouths(dir, track, options);
  write_summary(dir, track, options);  // last: its presence says the rest is complete
}

FaceTrack read_landmarks(const std::filesystem::path& path) {
  std::string bytes = read_file(path);
  auto bad = [&](const std::string& why) {
    return InputError(fmt::format("{} is not a dself landmarks file: {}; run `dself prepare` again to remake it",
                                  path.string(), why));
  };
  if (bytes.size() < kHeaderBytes || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    throw bad("no DSLMARKS header");
  }
  size_t at = sizeof kMagic;
  auto version = take<uint32_t>(bytes, at);
  auto header_bytes = take<uint32_t>(bytes, at);
  auto record_bytes = take<uint32_t>(bytes, at);
  auto landmark_count = take<uint32_t>(bytes, at);
  auto frame_count = take<uint64_t>(bytes, at);
  if (version != kVersion) throw bad(fmt::format("version {}, this build reads version {}", version, kVersion));
  if (header_bytes != kHeaderBytes || record_bytes != kRecordBytes || landmark_count != kLandmarkCount) {
    throw bad(fmt::format("header of {} bytes, records of {} bytes, {} landmarks", header_bytes, record_bytes,
                          landmark_count));
  }
  if (frame_count > (bytes.size() - kHeaderBytes) / kRecordBytes ||
      bytes.size() != kHeaderBytes + frame_count * kRecordBytes) {
    throw bad(fmt::format("{} bytes for {} frames (truncated?)", bytes.size(), frame_count));
  }
  FaceTrack track;
  track.fps = take<double>(bytes, at);
  track.width = static_cast<int>(take<uint32_t>(bytes, at));
  track.height = static_cast<int>(take<uint32_t>(bytes, at));
  at = kHeaderBytes;
  track.frames.resize(frame_count);
  for (FrameTrack& f : track.frames) {
    f.time_s = take<double>(bytes, at);
    f.flags = take<uint32_t>(bytes, at);
    for (cv::Point2f& p : f.points) p.x = take<float>(bytes, at), p.y = take<float>(bytes, at);
    f.pose.yaw_deg = take<float>(bytes, at);
    f.pose.pitch_deg = take<float>(bytes, at);
    f.pose.roll_deg = take<float>(bytes, at);
    f.to_canonical.a = take<float>(bytes, at);
    f.to_canonical.b = take<float>(bytes, at);
    f.to_canonical.tx = take<float>(bytes, at);
    f.to_canonical.ty = take<float>(bytes, at);
    f.iod_px = take<float>(bytes, at);
    f.blur_score = take<float>(bytes, at);
  }
  return track;
}

}  // namespace dself::face::track
