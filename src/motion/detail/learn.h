// Inside the viseme motion: finding prepare's outputs (learning and evaluation both read them).
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "face/face_track.h"

namespace dself::motion {

// A source with both a speech dataset and a face track.
struct PreparedSource {
  int64_t id = 0;
  std::filesystem::path speech_dir;  // speech/<id>/
  std::filesystem::path landmarks;   // faces/<id>/landmarks.bin
};

// Every prepared source of the avatar, by id. Throws InputError naming `dself prepare` when none.
std::vector<PreparedSource> prepared_sources(const std::filesystem::path& avatar);

// The index of the frame nearest time t, or -1 when t lies outside the track.
int frame_at(const face::FaceTrack& track, double t);

}  // namespace dself::motion
