// The avatar's voice (DESIGN.md §1, use): text -> 16 kHz speech with every phone's start and end,
// so that the face can move with it. `Voice` is the interface trained voices plug into; the first
// engine is espeak-ng, labelled the fallback voice, with the espeak voice whose pitch is closest
// to the person's.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/progress.h"
#include "speech/speech.h"

namespace dself::voice {

constexpr int kSampleRate = speech::kSampleRate;  // Hz of every sample a Voice returns

// One sentence said: mono float samples in [-1, 1] at kSampleRate, and its phones (ARPAbet in
// lower case as the aligner writes them, "sil" for pauses) covering the samples from 0.
struct Utterance {
  std::string text;  // the sentence as given
  std::vector<float> samples;
  std::vector<speech::TimedPhone> phones;
  double duration_s() const { return static_cast<double>(samples.size()) / kSampleRate; }
};

class Voice {
 public:
  virtual ~Voice() = default;
  // A short name for logs, metadata and the UI, e.g. "espeak-ng en-us+m3 (fallback voice)".
  virtual std::string name() const = 0;
  // True for a voice that is not the person's own (the espeak-ng fallback).
  virtual bool is_fallback() const = 0;
  // Says one sentence (as split_sentences gives them). Throws InputError when it has nothing to
  // say. Not thread-safe: one Voice per thread.
  virtual Utterance say(std::string_view sentence) = 0;
};

// Text -> sentences to say one at a time: split at . ! ? ; and line breaks (not inside numbers
// like 3.5 or after abbreviations like "Dr."), sentences over max_words cut at a comma or, failing
// that, at max_words; whitespace collapsed; pieces with nothing to say (only punctuation) dropped.
std::vector<std::string> split_sentences(std::string_view text, size_t max_words = 40);

// The person's pitch, measured on voiced 5 ms frames of their speech (vocoder::track_f0).
struct PitchProfile {
  double median_hz = 0;
  double p10_hz = 0;  // 10th and 90th percentiles: the range they speak in
  double p90_hz = 0;
  int voiced_frame_count = 0;
};

// Pitch (F0) of 16 kHz mono audio, per voiced frame; 0 frames when none is voiced.
PitchProfile measure_pitch(std::span<const float> audio_16k);

// The pitch of an avatar's prepared speech (every speech/<source>/*.wav listed in
// utterances.json, train split). Throws InputError naming the stage to run when there is none.
PitchProfile measure_avatar_pitch(const std::filesystem::path& avatar);

struct EspeakOptions {
  std::string voice;           // espeak-ng voice, e.g. "en-us+m3"; empty: the candidate closest in pitch
  double target_pitch_hz = 0;  // the person's median pitch: picks the voice (when `voice` is empty), then
                               // sets espeak-ng's pitch parameter so its median lands there;
                               // 0: "en-us" (or `voice`) at its own pitch
  int words_per_minute = 165;  // speaking rate, 80..450
};

// The espeak-ng voice variants considered, each with its median pitch measured by saying a
// fixed sentence through measure_pitch (cached per process).
struct EspeakCandidate {
  std::string voice;
  double median_hz = 0;
};
std::vector<EspeakCandidate> espeak_candidates();

// The candidate whose median pitch is closest (on a log scale) to target_hz; "en-us" when it is 0.
std::string closest_espeak_voice(double target_hz);

// The espeak-ng fallback voice. Phone times come from espeak-ng's phoneme events; its
// phonemes are mapped to ARPAbet. Throws EnvironmentError when espeak-ng's data is missing,
// InputError for an unknown voice name (listing the known ones).
std::unique_ptr<Voice> make_espeak_voice(const EspeakOptions& options = {});

// ---------------------------------------------------------------------------------------------
// The person's own voice, trained on their speech dataset (docs/VOICE.md): an acoustic model
// (libtorch, FastSpeech 2 style: phones with prosodic context -> durations, pitch, energy ->
// vocoder features per 5 ms frame) and the source-filter vocoder (vocoder/vocoder.h).
// <avatar>/models/voice/ holds config.json, model.safetensors, metrics.json, curve.json and
// checkpoint/ while training (docs/FORMATS.md, "Voice model").

// Minimum train-split speech for training (below it train_voice throws InputError saying how
// much there is), and the amount below which it warns that quality will be low.
constexpr double kMinVoiceSpeechS = 120;
constexpr double kLowVoiceSpeechS = 600;

struct VoiceTrainOptions {
  std::filesystem::path avatar = "avatar";
  int steps = 0;                // optimiser steps in all; 0: chosen from the amount of speech (docs/VOICE.md)
  double time_budget_s = 0;     // stop (checkpointed, resumable) after this long; 0: no limit
  double checkpoint_every_s = 60;  // a kill loses at most this much training
  int threads = 2;              // libtorch threads; same seed + data + threads -> same model
  uint64_t seed = 1;
  int model_dim = 0;            // channels of the acoustic model; 0: its default (tests train narrow ones)
  int reduction = 0;            // frames per decoder step; 0: the default (docs/VOICE.md compares them)
  double min_speech_s = kMinVoiceSpeechS;  // less train-split speech than this is an InputError
  ProgressSink progress;        // task "train voice (loss L, held-out H)", unit "steps"
  StopRequested should_stop;    // asked between steps; stopping checkpoints first
};

struct VoiceTrainResult {
  std::filesystem::path model_dir;
  bool complete = false;        // all steps done and the model written; false: stopped, resumable
  int steps_done = 0;
  int step_count = 0;
  double train_loss = 0;        // last figures on the curve
  double held_out_loss = 0;
  double speech_s = 0;          // train split speech the model learned from
  std::vector<std::string> warnings;  // e.g. "only 4.2 minutes of speech: quality will be low"
};

// A hash of what the voice learns from (every speech/<source>/utterances.json and the model's
// configuration): a voice trained on another hash is stale.
std::string voice_data_hash(const std::filesystem::path& avatar);

// Trains the person's voice on the train split (held-out split for the held-out loss only), or
// resumes from <avatar>/models/voice/checkpoint/ when it holds a run on the same data hash.
// Throws InputError for too little speech (see above) or an unprepared avatar; Stopped is not
// thrown: a stop returns complete = false.
VoiceTrainResult train_voice(const VoiceTrainOptions& options);

// The trained voice in `model_dir` (<avatar>/models/voice). Throws InputError naming the file
// when the model is missing or unreadable (callers then fall back to espeak-ng and say why).
std::unique_ptr<Voice> make_trained_voice(const std::filesystem::path& model_dir);

// Loads and checks the trained voice's files as make_trained_voice does, without the pronouncing
// dictionary (cheap enough for `status`). Throws InputError naming the file at fault.
void check_trained_voice(const std::filesystem::path& model_dir);

struct VoiceEvaluationOptions {
  std::string voice;            // espeak-ng voice to judge; empty: the one picked for the person
  size_t max_utterances = 200;  // held-out utterances said at most (spread evenly over them all)
  bool copy_synthesis = true;   // also judge the vocoder alone on the real recordings (the floor)
};

// The espeak-ng fallback voice for a person: `espeak_voice`, or the variant closest to their
// median pitch, set to speak at it.
std::unique_ptr<Voice> make_fallback_voice(const PitchProfile& person, const std::string& espeak_voice = "");

// A voice to judge and its role in the report: "fallback" (espeak-ng) or "trained" (the person's own).
struct JudgedVoice {
  std::string role;
  Voice* voice = nullptr;  // not owned; used by one thread, the caller's
};

// The judge of voices (DESIGN.md §4, voice): every voice says the texts of the avatar's held-out
// utterances (speech/<source>/utterances.json, split "held_out"; never train ones, except when
// every voice judged is a fallback voice, which learnt nothing from them, and the avatar has
// none held out), and is compared with the person's real recording of each: MCD, F0 RMSE and
// voicing error on the DTW path (vocoder::distance), phone durations against the recording's
// aligned phones (paired by edit distance on their labels), PocketSphinx WER beside the WER on
// the real recordings, synthesis real-time factor. With options.copy_synthesis, the same figures
// for the recordings analysed and resynthesised by the vocoder: the floor for a trained voice.
// Throws InputError when there is nothing to judge on. Fields: docs/FORMATS.md, "Voice".
nlohmann::json evaluate_voices(const std::filesystem::path& avatar, const std::vector<JudgedVoice>& voices,
                               const VoiceEvaluationOptions& options = {});

}  // namespace dself::voice
