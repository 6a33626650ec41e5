// The sample person (DESIGN.md §5): a real portrait and a real flite voice made into videos of
// someone speaking the project's monologue, with captions and ground truth, for tests that
// cannot reach the internet. Formats: docs/FORMATS.md, "The sample person".
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace dself::sample {

struct SampleOptions {
  std::filesystem::path out;  // directory for the videos, captions, truth and playlist
  std::filesystem::path face =
      "/usr/share/matplotlib/mpl-data/sample_data/grace_hopper.jpg";  // a portrait with one face
  std::string voice = "rms";                                          // flite voice: awb, kal, rms or slt
  double minutes = 2;  // minutes of video in all, split between the videos
  int videos = 2;      // number of videos
  uint64_t seed = 1;   // same seed and options, same person: byte-identical truth and captions
  int size = 512;      // width = height of the videos in pixels; even
  // The hard sample (issue 15): an interview with a guest, cut-aways, two-shots, b-roll and
  // music under an intro. Off by default: the default sample stays one face, one voice, one shot.
  bool hard = false;
  std::filesystem::path guest_face =
      "/usr/lib/python3/dist-packages/skimage/data/astronaut.png";  // the guest's portrait (python3-skimage)
  std::string guest_voice;  // flite voice of the guest; empty: slt, or awb when the host is slt
};

// What was made, and where the time went (timings are not written anywhere: outputs stay
// deterministic).
struct SampleVideo {
  std::filesystem::path video;     // the MP4
  std::filesystem::path captions;  // the WebVTT
  std::filesystem::path truth;     // the ground-truth JSON
  std::string title;
  double duration_s = 0;
  int64_t frame_count = 0;
};

struct SampleResult {
  std::vector<SampleVideo> videos;
  std::filesystem::path playlist;
  double speech_s = 0;  // seconds spent planning and synthesising speech
  double render_s = 0;  // seconds spent drawing frames (motion, warp, mouth)
  double encode_s = 0;  // seconds spent in the encoder (frames and audio)
  double total_s = 0;   // seconds for everything
};

// The voices `--voice` accepts.
std::vector<std::string> voice_names();

// Makes the sample person into options.out. Throws InputError for bad options, an unreadable
// portrait or one without exactly one face; EnvironmentError for missing models or an
// unwritable directory. Nothing half-written is left under a final name.
SampleResult make_sample(const SampleOptions& options);

}  // namespace dself::sample
