// The train stage (DESIGN.md §1): each model the avatar's data is ready for is trained, resumed or
// found up to date. Like prepare's steps, a model records in the catalog the hash of the data it
// learned from ("train_<model>" stage), so a re-run skips it and `status` can say it is stale.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/progress.h"
#include "voice/voice.h"
#include "whisper/finetune.h"

namespace dself::train {

// The models dself trains, in the order `train all` runs them (persona only with --base).
enum class Model { voice, stt, persona };
const char* model_name(Model model);  // "voice", "stt", "persona"

// `train persona`: a LoRA adapter of a Hugging Face chat checkpoint, fine-tuned on the person's
// transcripts (docs/PERSONA.md, "Fine-tuning"), written to models/persona/ in the PEFT layout.
struct PersonaOptions {
  std::filesystem::path base;            // --base: the chat checkpoint directory; empty: persona not trained
  int lora_rank = 8;                     // r
  double lora_alpha = 16;                // the update is scaled by alpha / r
  double lora_dropout = 0.05;            // on the adapter's input while training
  std::vector<std::string> lora_targets = {"q_proj", "v_proj"};
  double learning_rate = 1e-3;           // AdamW, after a linear warm-up over the first 5% of steps
  int max_tokens = 256;                  // longest training conversation, tokens
};

struct TrainOptions {
  std::filesystem::path avatar = "avatar";
  std::vector<Model> models;    // empty: every model whose data is ready
  bool force = false;           // train again even when up to date
  int steps = 0;                // per model; 0: the model's own default for the data
  double time_budget_s = 0;     // per model; 0: no limit (a stopped model resumes next run)
  int threads = 2;
  uint64_t seed = 1;
  // voice: the least train-split speech it trains on; less is "not ready" (or an error when the
  // voice was named). Lowering it trains a voice of poor quality on what there is.
  double voice_min_speech_s = voice::kMinVoiceSpeechS;
  bool stt_acoustic = true;     // stt: adapt the acoustic model too (else the language model only)
  bool stt_map = true;          // stt: MAP re-estimation (else MLLR alone)
  // stt: fine-tune this Hugging Face Whisper checkpoint on the person (into models/whisper/)
  // instead of adapting PocketSphinx; empty: PocketSphinx.
  std::filesystem::path whisper;
  double whisper_learning_rate = whisper::FineTuneParams{}.learning_rate;  // AdamW, constant
  ProgressSink progress;
  StopRequested should_stop;
  PersonaOptions persona;
};

struct ModelOutcome {
  Model model = Model::voice;
  std::string state;      // "trained", "up_to_date", "stopped" (resumable), "not_ready", "failed"
  std::string message;    // what happened, or why not / what failed
  std::vector<std::string> warnings;
};

// Trains what `options.models` names (or all that are ready). A model that fails is reported and
// the others go on. Records the run as a "train" job. Throws InputError when the avatar has not
// been prepared, or when a named model's data is not ready.
std::vector<ModelOutcome> train(const TrainOptions& options);

// Whether the model in the workspace was trained on the data there now: "none", "current",
// "stale" (trained on other data) or "broken" (it cannot be loaded), with the reason in `why`.
std::string model_state(const std::filesystem::path& avatar, Model model, std::string* why = nullptr);

// `dself eval voice` (DESIGN.md §4): the trained voice (when there is one that loads) and the
// fallback voice judged on the person's held-out recordings, with the vocoder's copy-synthesis
// floor; the voice that speaks gives the flat headline (voice, wer, mcd_db, person_pitch, ...)
// that `status` and the Studio read. Writes models/voice/metrics.json.
nlohmann::json evaluate_voice(const std::filesystem::path& avatar, const voice::VoiceEvaluationOptions& options = {});

}  // namespace dself::train
