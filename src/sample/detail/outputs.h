// The files beside each video: ground truth, captions; and the playlist and summary.
// Field by field in docs/FORMATS.md, "The sample person".
#pragma once

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/fs.h"
#include "sample/detail/interview.h"
#include "sample/detail/motion.h"
#include "sample/detail/script.h"
#include "sample/sample.h"

namespace dself::sample {

// Everything in a video's truth JSON but the landmarks, which are streamed frame by frame.
// guest_voice: the hard sample's guest voice (its fields are written when the video has shots).
nlohmann::ordered_json truth_header(const SpokenVideo& video, const std::vector<Blink>& blinks,
                                    const SampleOptions& options, const Portrait& portrait,
                                    const std::string& guest_voice = "");

// Writes the truth JSON under a temporary name, one frame of landmarks at a time (memory stays
// flat), and renames it into place on commit().
class TruthWriter {
 public:
  TruthWriter(const std::filesystem::path& path, const nlohmann::ordered_json& header);
  void add_frame(const Landmarks& landmarks);
  // The hard sample: the host's landmarks, or [] when the host is not on screen; the guest's
  // face (centre and inter-ocular distance) is kept and written after the landmarks as
  // "guest_faces" (a few numbers a frame).
  void add_frame(const OnScreen& on_screen);
  void commit();

 private:
  StagedPath staged_;
  std::ofstream out_;
  int64_t frame_count_ = 0;
  bool interview_ = false;
  std::string guest_faces_;
};

// WebVTT shaped like YouTube's automatic captions: rolling two-line cues, the new line's words
// timed inline (<00:00:01.234><c> word</c>), a 10 ms cue between lines.
std::string youtube_vtt(const SpokenVideo& video);

// The page that stands in for a playlist: one <video> per file, with its captions track.
std::string playlist_html(const std::string& title, const std::vector<SpokenVideo>& videos);

// sample.json: the options used and the videos made.
std::string summary_json(const SampleOptions& options, const std::vector<SpokenVideo>& videos,
                         const std::string& guest_voice = "");

std::string video_file(const SpokenVideo& video);     // "video_000.mp4"
std::string captions_file(const SpokenVideo& video);  // "video_000.en.vtt"
std::string truth_file(const SpokenVideo& video);     // "video_000.truth.json"

}  // namespace dself::sample
