// Fine-tuning a Whisper checkpoint on the person's utterances (their transcripts as labels).
// The decoder is trained and the encoder frozen: each clip is encoded once per run, so a step
// costs a decoder pass, and a few minutes of one person's speech cannot unlearn the encoder's
// acoustics (docs/STT.md says why). The result is a Hugging Face directory.
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
  int n_threads = 1;            // CPU threads
  int epochs = 3;               // passes over the train clips
  double learning_rate = 1e-5;  // AdamW on the decoder (Whisper's own fine-tuning scale)
  double weight_decay = 0.0;
  uint64_t seed = 0;      // clip order
  std::string language;   // for multilingual models ("" = English)
  ProgressSink progress;  // steps done / steps in all
  StopRequested should_stop;
};

struct FineTuneResult {
  std::vector<double> step_loss;   // mean token cross-entropy of each step (one clip per step)
  double held_out_wer_before = 0;  // greedy, no timestamps, scoring_words of both sides
  double held_out_wer_after = 0;
  int n_train = 0;
  int n_held_out = 0;
};

// Fine-tunes `base` (a Hugging Face Whisper directory) on `train`, judges it on `held_out` before
// and after, and writes the tuned model to `out_dir` as a Hugging Face directory (config.json,
// model.safetensors in float32, the base's tokenizer and generation files), atomically file by
// file. Throws InputError for a bad checkpoint or clip (naming the file), Stopped when asked.
FineTuneResult fine_tune(const std::filesystem::path& base, const std::vector<LabelledAudio>& train,
                         const std::vector<LabelledAudio>& held_out, const std::filesystem::path& out_dir,
                         const FineTuneParams& params = {});

// The person's prepared utterances (speech/<source>/utterances.json of an avatar): train and
// held-out clips with their transcripts.
void person_utterances(const std::filesystem::path& avatar, std::vector<LabelledAudio>& train,
                       std::vector<LabelledAudio>& held_out);

}  // namespace dself::whisper
