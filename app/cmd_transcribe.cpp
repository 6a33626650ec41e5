// dself transcribe: speech recognition of one audio or video file, with the engines prepare uses.
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "app/commands.h"
#include "core/error.h"
#include "core/workspace.h"
#include "media/media.h"
#include "stt/stt.h"
#include "transcript/transcript.h"

namespace dself {
namespace {

namespace fs = std::filesystem;

enum class Engine { pocketsphinx, captions };

struct TranscribeOptions {
  fs::path input;                                     // audio or video file (or, for captions, a caption file)
  Engine engine = Engine::pocketsphinx;               // --stt
  fs::path model = transcript::PocketSphinxOptions{}.model_dir;  // --model: the engine's model directory
  bool json = false;
};

struct Transcribed {
  transcript::Transcript transcript;
  std::string adaptation;  // "person": the avatar's adapted model; "generic"; "" for captions
};

// PocketSphinx, with the avatar's adapted model when asked to use the avatar and it has one.
Transcribed transcribe_pocketsphinx(const TranscribeOptions& options, const fs::path* avatar) {
  std::optional<transcript::PocketSphinxOptions> sphinx;
  if (avatar) sphinx = stt::person_recognizer_options(*avatar, options.model);
  const bool person = sphinx.has_value();
  if (avatar && !person) {
    std::fprintf(stderr, "note: %s has no adapted speech model (`dself train stt`): the generic one is used\n",
                 avatar->string().c_str());
  }
  if (!sphinx) {
    sphinx = transcript::PocketSphinxOptions{};
    sphinx->model_dir = options.model;
  }
  const std::vector<float> audio = media::decode_audio(options.input, 16000);
  transcript::PocketSphinxRecognizer recognizer(*sphinx);
  return {recognizer.transcribe(audio), person ? "person" : "generic"};
}

// A caption file, or the caption file beside a video (same name up to the first dot: YouTube's
// "video.en.vtt" beside "video.mp4").
Transcribed transcribe_captions(const TranscribeOptions& options) {
  const std::string ext = options.input.extension().string();
  if (ext == ".vtt" || ext == ".srt") return {transcript::read_captions(options.input), ""};
  if (!fs::exists(options.input)) throw InputError(fmt::format("{} does not exist", options.input.string()));
  const std::string stem = options.input.stem().string();
  const fs::path dir = options.input.parent_path().empty() ? fs::path(".") : options.input.parent_path();
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const std::string e = entry.path().extension().string();
    if ((e == ".vtt" || e == ".srt") && name.rfind(stem + ".", 0) == 0) {
      return {transcript::read_captions(entry.path()), ""};
    }
  }
  throw InputError(fmt::format("{} has no caption file beside it ({}.vtt, {}.en.vtt or .srt): use --stt "
                               "pocketsphinx",
                               options.input.string(), stem, stem));
}

}  // namespace

void add_transcribe_command(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<TranscribeOptions>();
  auto* command = app.add_subcommand("transcribe", "Transcribe an audio or video file (text, or words with times)");
  command->add_option("file", options->input, "Audio or video file (for --stt captions: a .vtt/.srt file, or a "
                                              "video with one beside it)")
      ->required();
  // Each engine is one branch of the switch in the callback (another engine: a name here, a case there).
  auto engine_name = std::make_shared<std::string>("pocketsphinx");
  command->add_option("--stt", *engine_name, "Engine: pocketsphinx or captions")
      ->check(CLI::IsMember({"pocketsphinx", "captions"}, CLI::ignore_case))
      ->capture_default_str();
  command->add_option("--model", options->model,
                      "PocketSphinx model directory (en-us/, en-us.lm.bin, cmudict-en-us.dict)")
      ->capture_default_str();
  command->add_flag("--json", options->json,
                    "Print the transcript as JSON: words with times and confidence, the engine and the model");
  command->footer(
      "With --avatar (or DSELF_AVATAR), PocketSphinx uses that avatar's adapted model when `dself train stt`\n"
      "made one, and says so (\"adaptation\": \"person\" in --json). A file without speech gives an empty\n"
      "transcript and a note. Exit status: 0 done (also when nothing was said); 1 the file is missing or\n"
      "unreadable; 2 the engine's model or a dependency is missing.");
  CLI::Option* avatar_option = app.get_option("--avatar");
  command->callback([options, engine_name, avatar_option, &globals] {
    options->engine = *engine_name == "captions" ? Engine::captions : Engine::pocketsphinx;
    const bool avatar_given = avatar_option->count() > 0 ||
                              std::getenv("DSELF_AVATAR") != nullptr;
    Transcribed result;
    switch (options->engine) {
      case Engine::pocketsphinx:
        result = transcribe_pocketsphinx(*options, avatar_given ? &globals.avatar : nullptr);
        break;
      case Engine::captions:
        result = transcribe_captions(*options);
        break;
    }
    std::string note;
    if (result.transcript.words.empty()) {
      note = fmt::format("no speech was recognised in {}", options->input.string());
      std::fprintf(stderr, "note: %s\n", note.c_str());
    }
    if (options->json) {
      nlohmann::json json = transcript::to_json(result.transcript);
      json["file"] = options->input.string();
      json["adaptation"] = result.adaptation;
      json["note"] = note;
      std::printf("%s\n", json.dump(2).c_str());
    } else {
      for (const auto& segment : result.transcript.segments) std::printf("%s\n", segment.text.c_str());
    }
    std::fflush(stdout);
  });
}

}  // namespace dself
