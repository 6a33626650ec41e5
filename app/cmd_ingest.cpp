// dself ingest SOURCE...: bring videos (URLs, playlists, files, directories) into the avatar.
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "app/commands.h"
#include "core/error.h"
#include "ingest/ingest.h"

namespace dself {
namespace {

std::string format_duration(double seconds) {
  auto s = static_cast<int64_t>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

void print_result(const ingest::SourceResult& result) {
  std::string note = result.message.empty() ? "" : "; " + result.message;
  switch (result.outcome) {
    case ingest::Outcome::added:
      std::printf("added    %s (%s) as %s%s\n", result.title.c_str(), format_duration(result.duration_s).c_str(),
                  result.video_path.c_str(), note.c_str());
      break;
    case ingest::Outcome::already_present:
      std::printf("present  %s%s\n", result.title.empty() ? result.input.c_str() : result.title.c_str(), note.c_str());
      break;
    case ingest::Outcome::failed:
      std::printf("failed   %s: %s\n", result.input.c_str(), result.message.c_str());
      break;
  }
  std::fflush(stdout);
}

}  // namespace

void add_ingest_command(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<ingest::IngestOptions>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto* command = app.add_subcommand(
      "ingest", "Add the person's videos to the avatar: video or playlist URLs, video files, directories");
  command
      ->add_option("SOURCE", *inputs,
                   "An http(s) URL of a video or a playlist (downloaded with yt-dlp), a video file, or a "
                   "directory (its video files are imported; subdirectories are not searched)")
      ->required();
  command->add_flag("--link", options->link,
                    "Import files as hard links (symbolic links across file systems) instead of copies");
  command->add_option("--yt-dlp", options->yt_dlp, "The yt-dlp program to download with: a name in PATH or a path")
      ->envname("DSELF_YTDLP")
      ->capture_default_str();
  command->add_option("--max-height", options->max_height, "Download the best format up to this height (pixels)")
      ->check(CLI::Range(144, 4320))
      ->capture_default_str();
  command->footer(
      "Downloads keep yt-dlp's info JSON and English captions (manual or automatic), resume after an\n"
      "interruption, and skip what the avatar already has. A file brings its captions along when they sit\n"
      "beside it as NAME.vtt, NAME.srt or NAME.en*.vtt/.srt. Videos need a picture and sound.\n"
      "Exit status: 0 when every source was added or already present, 1 when any was bad (the others are\n"
      "still added), 2 when yt-dlp or the workspace is not usable.");
  command->callback([options, inputs, &globals] {
    options->avatar = globals.avatar;
    options->should_stop = stop_on_interrupt();
    bool quiet = globals.verbosity == Verbosity::quiet;
    ingest::IngestReport report = ingest::ingest(*inputs, *options, [quiet](const ingest::SourceResult& result) {
      if (!quiet) print_result(result);
    });
    int failed = report.count(ingest::Outcome::failed);
    std::printf("ingest: %d new, %d already present, %d failed\n", report.count(ingest::Outcome::added),
                report.count(ingest::Outcome::already_present), failed);
    std::fflush(stdout);
    if (failed == 0) return;
    std::string message = fmt::format("{} source{} could not be ingested:", failed, failed == 1 ? "" : "s");
    for (const auto& result : report.results) {
      if (result.outcome == ingest::Outcome::failed) message += fmt::format("\n  {}: {}", result.input, result.message);
    }
    throw InputError(message);
  });
}

}  // namespace dself
