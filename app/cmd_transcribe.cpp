// dself transcribe: the text of an audio or video file, by Whisper (a user's checkpoint).
#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "app/commands.h"
#include "core/error.h"
#include "media/media.h"
#include "whisper/whisper.h"

namespace dself {
namespace {

struct TranscribeCommandOptions {
  std::filesystem::path audio;
  std::string stt = "whisper";
  std::filesystem::path model;
  std::string score;
  bool json = false;
  bool no_timestamps = false;
  whisper::TranscribeParams params;
};

std::string clock(double s) { return fmt::format("{:02d}:{:05.2f}", int(s) / 60, s - 60 * (int(s) / 60)); }

void run_transcribe(const TranscribeCommandOptions& o, const GlobalOptions& globals) {
  if (o.stt != "whisper")
    throw InputError(
        fmt::format("--stt {}: this build transcribes with whisper only (--stt whisper --model DIR)", o.stt));
  if (o.model.empty())
    throw InputError(
        "--model DIR is needed with --stt whisper: a Hugging Face Whisper checkpoint directory "
        "(config.json, model.safetensors, tokenizer files), e.g. a download of openai/whisper-tiny.en");
  if (!std::filesystem::exists(o.audio)) throw InputError(fmt::format("{}: no such file", o.audio.string()));
  const auto model = whisper::Model::load(o.model);
  auto params = o.params;
  params.timestamps = !o.no_timestamps;
  params.should_stop = stop_on_interrupt();
  if (!o.score.empty()) {
    const auto s = whisper::score(model, o.audio, o.score, params);
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
        std::make_unique<Progress>("whisper: transcribe", int64_t(std::ceil(media::probe(o.audio).duration_s)), "s");
  params.progress = [&](const ProgressEvent& e) {
    if (progress) progress->set_done(e.done);
  };
  const auto t = whisper::transcribe(model, o.audio, params);
  progress.reset();
  if (o.json) {
    std::cout << whisper::transcript_json(model, t).dump(2) << "\n";
    return;
  }
  for (const auto& s : t.segments)
    std::cout << fmt::format("[{} --> {}] {}\n", clock(s.start_s), clock(s.end_s), s.text);
}

}  // namespace

void add_transcribe_command(CLI::App& app, const GlobalOptions& globals) {
  auto o = std::make_shared<TranscribeCommandOptions>();
  auto* command =
      app.add_subcommand("transcribe", "Transcribe an audio or video file with Whisper (a checkpoint you give)");
  command->add_option("audio", o->audio, "The audio or video file (any format FFmpeg reads)")->required();
  command->add_option("--stt", o->stt, "The speech-to-text engine")->capture_default_str();
  command->add_option("--model", o->model,
                      "A Hugging Face Whisper checkpoint directory (config.json, model.safetensors, tokenizer)");
  command->add_flag("--json", o->json, "Print JSON (segments with times, tokens and confidences)");
  command->add_option(
      "--score", o->score,
      "Print the model's teacher-forced log-probability of this TEXT given the audio's first 30 s instead");
  command->add_option("--language", o->params.language, "Language code for a multilingual model (default: detected)");
  command->add_option("--beam-size", o->params.beam_size, "1: greedy decoding; 5: beam search as Whisper's")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  command->add_option("--threads", o->params.n_threads, "CPU threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 256));
  command->add_flag("--no-timestamps", o->no_timestamps, "Decode without timestamp tokens (one segment per window)");
  command->callback([o, &globals] { run_transcribe(*o, globals); });
}

}  // namespace dself
