// dself say: a video of the person saying a text.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "say/say.h"

namespace dself {
namespace {

struct SayCommandOptions {
  std::string text;
  std::filesystem::path text_file;
  std::filesystem::path out;
  std::filesystem::path wav;
  bool json = false;
  say::SayOptions say;
};

// renders/say-YYYYmmdd-HHMMSS.mp4 in the avatar, when -o is not given.
std::filesystem::path default_output(const std::filesystem::path& avatar) {
  std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  std::filesystem::create_directories(workspace::renders_dir(avatar));
  return workspace::renders_dir(avatar) / fmt::format("say-{}.mp4", stamp);
}

std::string read_text(const SayCommandOptions& options) {
  if (!options.text_file.empty()) {
    if (options.text_file == "-") return {std::istreambuf_iterator<char>(std::cin), {}};
    std::error_code ec;
    if (std::filesystem::is_directory(options.text_file, ec)) {
      throw InputError(fmt::format("--file {}: that is a directory; give a text file (or '-' for standard input)",
                                   options.text_file.string()));
    }
    return read_file(options.text_file);
  }
  return options.text;
}

}  // namespace

void add_say_command(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<SayCommandOptions>();
  auto* command = app.add_subcommand("say", "Make a video of the avatar saying TEXT (fallback voice: espeak-ng)");
  command->add_option("text", options->text, "What to say (or --file)");
  command->add_option("--file", options->text_file, "Read the text from this file ('-': standard input)");
  command->add_option("-o,--out", options->out, "The MP4 to write (default: <avatar>/renders/say-TIME.mp4)");
  command->add_option("--wav", options->wav, "Also write the speech as a 16 kHz WAV file");
  command->add_option("--size", options->say.size, "Frame width and height in pixels, around the head")
      ->capture_default_str();
  command->add_option("--voice", options->say.voice,
                      "espeak-ng voice, e.g. en-us+m3 (default: the one closest to the person's pitch)");
  command->add_option("--seed", options->say.seed, "Which of the person's head motions and blinks to use")
      ->capture_default_str();
  command->add_flag(
      "--no-synthetic-mark", [options](int64_t) { options->say.synthetic_mark = false; },
      "Leave out the small \"SYNTHETIC\" mark drawn in the picture's corner (the metadata still says so; "
      "the web app always keeps the mark)");
  command->add_flag("--json", options->json, "Print what was written as JSON");
  command->footer(
      "The video is marked synthetic in its picture (a small corner mark) and its metadata. The voice is the espeak-ng "
      "fallback voice until\n"
      "a voice is trained. Text is said sentence by sentence, so memory stays flat for long texts.");
  command->callback([options, &globals] {
    if (!options->text.empty() && !options->text_file.empty()) {
      throw InputError("give the text or --file, not both");
    }
    if (options->text.empty() && options->text_file.empty()) {
      throw InputError("nothing to say: give TEXT (e.g. dself say \"Hello there.\") or --file PATH");
    }
    options->say.avatar = globals.avatar;
    std::string text = read_text(*options);
    std::filesystem::path out = options->out.empty() ? default_output(globals.avatar) : options->out;
    options->say.should_stop = stop_on_interrupt();
    say::SayResult result = say::say(text, out, options->wav, options->say);
    if (options->json) {
      nlohmann::ordered_json json = {{"video", result.video.string()},
                                     {"wav", options->wav.string()},
                                     {"duration_s", result.duration_s},
                                     {"sentences", result.sentence_count},
                                     {"frames", result.frame_count},
                                     {"voice", result.voice_name},
                                     {"synthetic", true}};
      std::printf("%s\n", json.dump(2).c_str());
    } else {
      std::printf("wrote %s (%.1f s, %d sentence%s, %d frames; voice: %s)\n", result.video.c_str(), result.duration_s,
                  result.sentence_count, result.sentence_count == 1 ? "" : "s", result.frame_count,
                  result.voice_name.c_str());
    }
  });
}

}  // namespace dself
