// dself prepare: audio, transcripts, the speech dataset and the face track for every source.
#include <cstdio>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "app/commands.h"
#include "core/error.h"
#include "prepare/prepare.h"

namespace dself {

void add_prepare_command(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<prepare::PrepareOptions>();
  auto* command = app.add_subcommand(
      "prepare", "Make each source's audio, transcript, speech dataset and face track (resumable)");
  const std::map<std::string, prepare::SttEngine> engines = {{"auto", prepare::SttEngine::automatic},
                                                            {"captions", prepare::SttEngine::captions},
                                                            {"pocketsphinx", prepare::SttEngine::pocketsphinx},
                                                            {"whisper", prepare::SttEngine::whisper}};
  command->add_option("--stt", options->stt,
                      "Where transcripts come from: auto (captions when a source has them, else PocketSphinx), "
                      "captions, pocketsphinx (the person's adapted model once `dself train stt` made one), or "
                      "whisper (a Whisper checkpoint: --model, else the person's fine-tuned one, else `dself config "
                      "whisper_model`)")
      ->transform(CLI::CheckedTransformer(engines, CLI::ignore_case))
      ->default_str("the avatar's `dself config stt`, else auto");
  command->add_option("--model", options->whisper_model,
                      "A Hugging Face Whisper checkpoint directory, for --stt whisper and for checking captions "
                      "against the audio (default: the person's fine-tuned models/whisper, else `dself config "
                      "whisper_model`; none: captions are not checked)");
  command->add_option("--pocketsphinx-model", options->pocketsphinx_model,
                      "PocketSphinx model directory (en-us/, en-us.lm.bin, cmudict-en-us.dict)")
      ->capture_default_str();
  command->add_flag("--retranscribe", options->retranscribe,
                    "Transcribe again, with the person's adapted model (`dself train stt`), the sources PocketSphinx "
                    "transcribed with another model, and rebuild their speech datasets (sources with captions "
                    "are kept)");
  command->add_option("--person", options->person,
                      "The identity the avatar is made of, by its number in `dself status` or the report (default: "
                      "the one who speaks most on screen, when one dominates)")
      ->check(CLI::Range(1, 1000000));
  command->footer(
      "Steps already done for unchanged inputs are skipped, so a re-run does only what is missing.\n"
      "A source that fails is reported and the others go on. Exit status: 0 when every source is\n"
      "prepared, 1 when any failed (fix it and run prepare again), 2 for a missing dependency.");
  command->callback([options, &globals] {
    options->avatar = globals.avatar;
    options->should_stop = stop_on_interrupt();
    prepare::PrepareReport report = prepare::prepare(*options, [](const prepare::SourceOutcome& outcome) {
      if (outcome.succeeded) {
        std::printf("prepared %s (done: %s; up to date: %s)\n", outcome.title.c_str(),
                    outcome.done.empty() ? "-" : fmt::format("{}", fmt::join(outcome.done, ", ")).c_str(),
                    outcome.skipped.empty() ? "-" : fmt::format("{}", fmt::join(outcome.skipped, ", ")).c_str());
      } else {
        std::printf("failed   %s: %s\n", outcome.title.c_str(), outcome.error.c_str());
      }
      std::fflush(stdout);
    });
    int failed = report.failed_count();
    std::printf("prepare: %zu prepared, %d failed\n", report.sources.size() - failed, failed);
    if (failed > 0) {
      std::string message = fmt::format("{} source{} could not be prepared:", failed, failed == 1 ? "" : "s");
      // The exit code is the gravest failure's: an environment problem (2) over a bad input (1).
      ErrorKind kind = ErrorKind::user_input;
      for (const auto& s : report.sources) {
        if (s.succeeded) continue;
        message += fmt::format("\n  {}: {}", s.title, s.error);
        if (exit_code(s.error_kind) > exit_code(kind)) kind = s.error_kind;
      }
      throw Error(kind, message);
    }
  });
}

}  // namespace dself
