// dself sample: make the sample person (DESIGN.md §5).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "app/commands.h"
#include "core/log.h"
#include "sample/sample.h"

namespace dself {

void add_sample_command(CLI::App& app, const GlobalOptions&) {
  auto options = std::make_shared<sample::SampleOptions>();
  CLI::App* command = app.add_subcommand(
      "sample",
      "Make the sample person: videos of a real portrait speaking the project's monologue in a flite "
      "voice, with captions, ground truth and a playlist page");
  command->add_option("--out", options->out, "Directory to write the videos, captions, truth and playlist.html into")
      ->required();
  command->add_option("--face", options->face, "Portrait with exactly one face")->capture_default_str();
  command->add_option("--voice", options->voice, fmt::format("flite voice: {}", fmt::join(sample::voice_names(), ", ")))
      ->capture_default_str();
  command->add_option("--minutes", options->minutes, "Minutes of video in all")->capture_default_str();
  command->add_option("--videos", options->videos, "Number of videos to split them into")->capture_default_str();
  command->add_option("--seed", options->seed, "Seed: the same seed and options make the same person")
      ->capture_default_str();
  command->add_option("--size", options->size, "Width and height of the videos in pixels (even)")
      ->capture_default_str();
  command->add_flag("--hard", options->hard,
                    "The hard sample: an interview with a guest (cut-aways, two-shots), b-roll without faces and "
                    "music under an intro; the truth says who is on screen and who speaks");
  command->add_option("--guest-face", options->guest_face, "With --hard: the guest's portrait (one face)")
      ->capture_default_str();
  command->add_option("--guest-voice", options->guest_voice,
                      "With --hard: the guest's flite voice (default slt, or awb when --voice is slt)");
  command->callback([options] {
    sample::SampleResult result = sample::make_sample(*options);
    double seconds = 0;
    for (const auto& video : result.videos) seconds += video.duration_s;
    spdlog::info("made {} videos ({:.1f} s in all) in {:.1f} s; playlist: {}", result.videos.size(), seconds,
                 result.total_s, result.playlist.string());
  });
}

}  // namespace dself
