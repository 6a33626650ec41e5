// landmarks.bin (docs/FORMATS.md): the face track's frames, written by prepare and read by the
// stages after it. Apart from the tracker so that the reader can be fuzzed alone
// (fuzz/fuzz_landmarks.cpp).
#include <cstring>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "core/error.h"
#include "face/face_track.h"

namespace dself::face {
namespace {

// ---------------------------------------------------------------------------------------------
// landmarks.bin: a 40-byte header, then one fixed-size record per frame, little-endian.

constexpr char kMagic[8] = {'D', 'S', 'E', 'L', 'F', 'L', 'M', '\0'};
constexpr uint32_t kVersion = 1;

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

template <typename T>
T get(std::string_view in, size_t& at) {
  T value;
  std::memcpy(&value, in.data() + at, sizeof value);
  at += sizeof value;
  return value;
}

}  // namespace

void put_frame_record(std::string& bin, const TrackedFrame& f) {
  put<double>(bin, f.time_s);
  put<uint32_t>(bin, f.flags);
  for (const auto& p : f.points) put<float>(bin, p.x), put<float>(bin, p.y);
  put<float>(bin, f.pose.yaw_deg), put<float>(bin, f.pose.pitch_deg), put<float>(bin, f.pose.roll_deg);
  put<float>(bin, f.to_canonical.a), put<float>(bin, f.to_canonical.b);
  put<float>(bin, f.to_canonical.tx), put<float>(bin, f.to_canonical.ty);
  put<float>(bin, f.iod_px), put<float>(bin, f.sharpness);
}

TrackedFrame get_frame_record(std::string_view bin, size_t& at) {
  TrackedFrame f;
  f.time_s = get<double>(bin, at);
  f.flags = get<uint32_t>(bin, at);
  for (auto& p : f.points) p.x = get<float>(bin, at), p.y = get<float>(bin, at);
  f.pose.yaw_deg = get<float>(bin, at), f.pose.pitch_deg = get<float>(bin, at), f.pose.roll_deg = get<float>(bin, at);
  f.to_canonical.a = get<float>(bin, at), f.to_canonical.b = get<float>(bin, at);
  f.to_canonical.tx = get<float>(bin, at), f.to_canonical.ty = get<float>(bin, at);
  f.iod_px = get<float>(bin, at), f.sharpness = get<float>(bin, at);
  return f;
}

std::string landmarks_bytes(const FaceTrack& track) {
  std::string bin(kMagic, sizeof kMagic);
  put<uint32_t>(bin, kVersion);
  put<uint32_t>(bin, static_cast<uint32_t>(track.frames.size()));
  put<double>(bin, track.fps);
  put<uint32_t>(bin, static_cast<uint32_t>(track.width));
  put<uint32_t>(bin, static_cast<uint32_t>(track.height));
  put<uint32_t>(bin, kLandmarkCount);
  put<uint32_t>(bin, kFrameRecordBytes);
  for (const auto& f : track.frames) put_frame_record(bin, f);
  return bin;
}

FaceTrack parse_landmarks(std::string_view bin, const std::string& name) {
  const size_t header_bytes = sizeof kMagic + 4 + 4 + 8 + 4 * 4;
  if (bin.size() < header_bytes || std::memcmp(bin.data(), kMagic, sizeof kMagic) != 0) {
    throw InputError(fmt::format("{} is not a dself landmarks file (bad header): run `dself prepare` again",
                                 name));
  }
  size_t at = sizeof kMagic;
  uint32_t version = get<uint32_t>(bin, at);
  uint32_t count = get<uint32_t>(bin, at);
  FaceTrack track;
  track.fps = get<double>(bin, at);
  track.width = static_cast<int>(get<uint32_t>(bin, at));
  track.height = static_cast<int>(get<uint32_t>(bin, at));
  uint32_t landmarks = get<uint32_t>(bin, at);
  uint32_t record = get<uint32_t>(bin, at);
  if (version != kVersion || landmarks != kLandmarkCount || record != kFrameRecordBytes ||
      bin.size() != header_bytes + static_cast<size_t>(count) * record) {
    throw InputError(fmt::format("{}: unsupported or truncated landmarks file (version {}, {} frames): run "
                                 "`dself prepare` again",
                                 name, version, count));
  }
  track.frames.resize(count);
  for (auto& f : track.frames) f = get_frame_record(bin, at);
  return track;
}

}  // namespace dself::face
