// dself transcribe: speech recognition of one audio or video file, with the engines prepare uses
// (PocketSphinx, adapted to the person when the avatar has a model; captions) or Whisper on a
// checkpoint the user gives.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
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
#include "whisper/whisper.h"

namespace dself {
namespace {

namespace fs = std::filesystem;

enum class Engine { pocketsphinx, captions, whisper };

struct TranscribeOptions {
  fs::path input;                        // audio or video file (or, for captions, a caption file)
  Engine engine = Engine::pocketsphinx;  // --stt
  fs::path model;                        // --model: the engine's model directory ("": PocketSphinx's default)
  bool json = false;
  // Whisper only.
  std::string score;
  bool no_timestamps = false;
  whisper::TranscribeParams whisper;
};

struct Transcribed {
  transcript::Transcript transcript;
  std::string adaptation;  // "person": the avatar's adapted model; "generic"; "" for captions and Whisper
};

// PocketSphinx, with the avatar's adapted model when asked to use the avatar and it has one.
Transcribed transcribe_pocketsphinx(const TranscribeOptions& options, const fs::path* avatar) {
  const fs::path model = options.model.empty() ? transcript::PocketSphinxOptions{}.model_dir : options.model;
  std::optional<transcript::PocketSphinxOptions> sphinx;
  if (avatar) sphinx = stt::person_recognizer_options(*avatar, model);
  const bool person = sphinx.has_value();
  if (avatar && !person) {
    std::fprintf(stderr, "note: %s has no adapted speech model (`dself train stt`): the generic one is used\n",
                 avatar->string().c_str());
  }
  if (!sphinx) {
    sphinx = transcript::PocketSphinxOptions{};
    sphinx->model_dir = model;
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

std::string clock(double s) { return fmt::format("{:02d}:{:05.2f}", int(s) / 60, s - 60 * (int(s) / 60)); }

// Whisper on the user's checkpoint: segments with times (or, with --score, the teacher-forced
// log-probability of a text), printed here since its JSON carries tokens and confidences.
void transcribe_whisper(const TranscribeOptions& o, const GlobalOptions& globals) {
  // --model, else the avatar's fine-tuned model, else its setting (`dself config whisper_model`).
  const whisper::ModelChoice choice = whisper::resolve_model(globals.avatar, o.model, "--model");
  if (!fs::exists(o.input)) throw InputError(fmt::format("{}: no such file", o.input.string()));
  const auto model = whisper::Model::load(choice.dir);
  auto params = o.whisper;
  params.timestamps = !o.no_timestamps;
  params.should_stop = stop_on_interrupt();
  if (!o.score.empty()) {
    const auto s = whisper::score(model, o.input, o.score, params);
    if (o.json) {
      std::cout << whisper::score_json(model, o.score, s).dump(2) << "\n";
    } else {
      std::cout << fmt::format("log-probability {:.4f} over {} tokens ({:.4f} per token), prompt {}\n", s.total_logprob,
                               s.tokens.size(), s.total_logprob / double(s.tokens.size()), s.prompt_text);
    }
    return;
  }
  std::unique_ptr<Progress> progress;
  if (globals.verbosity != Verbosity::quiet)
    progress =
        std::make_unique<Progress>("whisper: transcribe", int64_t(std::ceil(media::probe(o.input).duration_s)), "s");
  params.progress = [&](const ProgressEvent& e) {
    if (progress) progress->set_done(e.done);
  };
  const auto t = whisper::transcribe(model, o.input, params);
  progress.reset();
  if (t.segments.empty()) std::fprintf(stderr, "note: no speech was recognised in %s\n", o.input.string().c_str());
  if (o.json) {
    std::cout << whisper::transcript_json(model, t).dump(2) << "\n";
    return;
  }
  for (const auto& s : t.segments)
    std::cout << fmt::format("[{} --> {}] {}\n", clock(s.start_s), clock(s.end_s), s.text);
}

}  // namespace

void add_transcribe_command(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<TranscribeOptions>();
  auto* command = app.add_subcommand("transcribe", "Transcribe an audio or video file (text, or words with times)");
  command->add_option("file", options->input, "Audio or video file (for --stt captions: a .vtt/.srt file, or a "
                                              "video with one beside it)")
      ->required();
  const std::map<std::string, Engine> engines = {
      {"pocketsphinx", Engine::pocketsphinx}, {"captions", Engine::captions}, {"whisper", Engine::whisper}};
  command->add_option("--stt", options->engine, "Engine: pocketsphinx, captions or whisper (--model, else the avatar's fine-tuned model, else its "
                      "`dself config whisper_model`)")
      ->transform(CLI::CheckedTransformer(engines, CLI::ignore_case))
      ->default_str("pocketsphinx");
  command->add_option("--model", options->model,
                      fmt::format("The engine's model directory: PocketSphinx's (default {}), or a Hugging Face "
                                  "Whisper checkpoint (config.json, model.safetensors, tokenizer files)",
                                  transcript::PocketSphinxOptions{}.model_dir.string()));
  command->add_flag("--json", options->json,
                    "Print the transcript as JSON: words (Whisper: segments and tokens) with times and confidence, "
                    "the engine and the model");
  command->add_option("--score", options->score,
                      "Whisper: print the model's teacher-forced log-probability of this TEXT given the audio's "
                      "first 30 s instead");
  command->add_option("--language", options->whisper.language,
                      "Whisper: language code for a multilingual model (default: detected)");
  command->add_option("--beam-size", options->whisper.beam_size, "Whisper: 1 greedy decoding; 5 beam search as Whisper's")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  command->add_option("--threads", options->whisper.n_threads, "Whisper: CPU threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  command->add_flag("--no-timestamps", options->no_timestamps,
                    "Whisper: decode without timestamp tokens (one segment per window)");
  command->footer(
      "With --avatar (or DSELF_AVATAR), PocketSphinx uses that avatar's adapted model when `dself train stt`\n"
      "made one, and says so (\"adaptation\": \"person\" in --json). A file without speech gives an empty\n"
      "transcript and a note. Exit status: 0 done (also when nothing was said); 1 the file is missing or\n"
      "unreadable, or the Whisper checkpoint is; 2 the engine's model or a dependency is missing.");
  CLI::Option* avatar_option = app.get_option("--avatar");
  command->callback([options, avatar_option, &globals] {
    if (options->engine != Engine::whisper &&
        (!options->score.empty() || options->no_timestamps || !options->whisper.language.empty())) {
      throw InputError("--score, --no-timestamps and --language are Whisper's: add --stt whisper (--model DIR)");
    }
    const bool avatar_given = avatar_option->count() > 0 || std::getenv("DSELF_AVATAR") != nullptr;
    Transcribed result;
    switch (options->engine) {
      case Engine::pocketsphinx:
        result = transcribe_pocketsphinx(*options, avatar_given ? &globals.avatar : nullptr);
        break;
      case Engine::captions:
        result = transcribe_captions(*options);
        break;
      case Engine::whisper:
        transcribe_whisper(*options, globals);
        return;
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
