// Fine-tuning a Whisper checkpoint on the person's utterances (their transcripts as labels).
// The decoder is trained and the encoder frozen: each clip is encoded once per run, so a step
// costs a decoder pass, and a few minutes of one person's speech cannot unlearn the encoder's
// acoustics (docs/STT.md says why and gives the figures). The result is a Hugging Face directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/progress.h"
#include "whisper/whisper.h"

namespace dself::whisper {

// One clip with what was said (at most 30 s: longer clips are cut to the first window).
struct LabelledAudio {
  std::filesystem::path wav;  // 16 kHz mono (any file FFmpeg reads)
  std::string text;
};

struct FineTuneParams {
  int n_threads = 1;            // CPU threads; same seed + data + threads -> the same weights, bit for bit
  int steps = 0;                // optimiser steps, one clip each; 0: epochs x train clips
  int epochs = 3;               // passes over the train clips when steps is 0
  double learning_rate = 1e-5;  // AdamW on the decoder, constant (Whisper's own fine-tuning scale)
  double weight_decay = 0.0;
  uint64_t seed = 0;     // clip order: a shuffle per epoch seeded by (seed, epoch)
  std::string language;  // for multilingual models ("" = English)
  // Where the run checkpoints (decoder weights, AdamW state, step, curve); "" = nowhere (not
  // resumable). A checkpoint there from a run with the same run_hash is resumed; another is ignored.
  std::filesystem::path checkpoint_dir;
  std::string run_hash;            // identifies the run's inputs (base, data, options)
  double checkpoint_every_s = 60;  // a kill loses at most this much training
  int checkpoint_every_steps = 0;  // also every this many steps; 0: by time only
  double time_budget_s = 0;        // stop (checkpointed) after this long in the loop; 0: no limit
  nlohmann::json metrics_extra;    // more fields for metrics.json (the caller's: base path, ...)
  ProgressSink progress;           // task "whisper fine-tune", unit "steps"
  StopRequested should_stop;       // asked between steps: stopping checkpoints first
};

struct FineTuneResult {
  bool complete = false;  // all steps done and the model written; false: stopped (resumable)
  int steps_done = 0;
  int step_count = 0;
  int resumed_at = 0;              // the checkpoint's step this run started from (0: a fresh run)
  std::vector<double> step_loss;   // mean token cross-entropy of each step (one clip per step)
  double held_out_wer_before = 0;  // greedy, no timestamps, scoring_words of both sides
  double held_out_wer_after = 0;
  double held_out_loss_before = 0;  // teacher-forced mean token cross-entropy of the labels
  double held_out_loss_after = 0;
  // The tuned model judged worse than its base: a higher held-out WER, or the same WER and a
  // higher (or not a number) held-out loss. It is written all the same (docs/STT.md says why).
  bool worse_than_base = false;
  int n_train = 0;
  int n_held_out = 0;
  double training_s = 0;  // in the loop, over every run that made this model
};

// Fine-tunes `base` (a Hugging Face Whisper directory) on `train`, judges it on `held_out` before
// and after, and writes the tuned model to `out_dir` as a Hugging Face directory (config.json,
// model.safetensors in float32, the base's tokenizer and generation files, metrics.json): built
// beside it and swapped in whole (replace_directory), so a kill leaves the old model or the new.
// Throws InputError for a bad checkpoint or clip (naming the file), Stopped when asked before the
// first step; a stop (or the time budget) later returns complete = false after a checkpoint.
FineTuneResult fine_tune(const std::filesystem::path& base, const std::vector<LabelledAudio>& train,
                         const std::vector<LabelledAudio>& held_out, const std::filesystem::path& out_dir,
                         const FineTuneParams& params = {});

// The person's prepared utterances (speech/<source>/utterances.json of an avatar): train and
// held-out clips with their transcripts. Throws InputError when there are none (run prepare).
void person_utterances(const std::filesystem::path& avatar, std::vector<LabelledAudio>& train,
                       std::vector<LabelledAudio>& held_out);

}  // namespace dself::whisper
