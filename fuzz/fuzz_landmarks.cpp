// Fuzzes the landmarks.bin reader: any bytes either parse or throw InputError. What parses is
// written back, which must give the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/error.h"
#include "face/face_track.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  dself::face::FaceTrack track;
  try {
    track = dself::face::parse_landmarks(bytes, "fuzz/landmarks.bin");
  } catch (const dself::InputError&) {
    return 0;
  }
  if (dself::face::landmarks_bytes(track) != bytes) std::abort();
  return 0;
}
