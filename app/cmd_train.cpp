// dself train [voice]: trains the person's voice on the prepared speech (resumable). The
// integrator routes this through src/train later; until then it calls voice::train_voice directly.
#include <atomic>
#include <csignal>
#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "app/commands.h"
#include "voice/voice.h"

namespace dself {

namespace {

// Ctrl-C asks training to stop at the next step; it checkpoints and exits, resumable.
std::atomic<bool> interrupted{false};
void on_interrupt(int) { interrupted = true; }

}  // namespace

void add_train_command(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<voice::VoiceTrainOptions>();
  auto model = std::make_shared<std::string>("voice");
  auto* command = app.add_subcommand("train", "Train the avatar's models on its prepared data (resumable)");
  command->add_option("model", *model, "What to train: voice")->check(CLI::IsMember({"voice"}))->capture_default_str();
  command->add_option("--steps", options->steps, "Optimiser steps in all; 0: chosen from the amount of speech")
      ->capture_default_str();
  command->add_option("--time-budget", options->time_budget_s,
                      "Stop (checkpointed, resumable) after this many seconds; 0: no limit")
      ->capture_default_str();
  command->add_option("--threads", options->threads, "libtorch threads (same seed + threads: same model)")
      ->capture_default_str();
  command->add_option("--seed", options->seed, "Seed of initialisation and data order")->capture_default_str();
  command->add_option("--model-dim", options->model_dim, "Channels of the acoustic model; 0: its default")
      ->capture_default_str();
  command->add_option("--reduction", options->reduction, "Frames per decoder step; 0: the default")
      ->capture_default_str();
  command->footer("An interrupted run (Ctrl-C, --time-budget) checkpoints and resumes where it stopped next time.\n"
                  "The model goes to <avatar>/models/voice/ (docs/FORMATS.md).");
  command->callback([options, model, &globals] {
    options->avatar = globals.avatar;
    std::signal(SIGINT, on_interrupt);
    options->should_stop = [] { return interrupted.load(); };
    const voice::VoiceTrainResult result = voice::train_voice(*options);
    std::signal(SIGINT, SIG_DFL);
    for (const auto& w : result.warnings) std::printf("warning: %s\n", w.c_str());
    std::printf("train voice: %s, %d/%d steps, %.1f minutes of speech, loss %.4f, held-out loss %.4f\n",
                result.complete ? "trained" : "stopped (resumable)", result.steps_done, result.step_count,
                result.speech_s / 60, result.train_loss, result.held_out_loss);
    std::printf("model: %s\n", result.model_dir.string().c_str());
  });
}

}  // namespace dself
