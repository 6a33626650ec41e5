// Whisper speech-to-text: a user's Hugging Face Whisper checkpoint (tiny … large, .en or
// multilingual), loaded once and used by many requests; transcription by 30 s windows with seek
// (memory flat in the audio's length), and teacher-forced scoring of a given text.
// ref: Radford et al. 2022; openai/whisper (decoding.py, transcribe.py) for the decoding rules.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "core/progress.h"
#include "transcript/transcript.h"

namespace dself::whisper {

struct TranscribeParams {
  int n_threads = 1;       // CPU threads for libtorch
  std::string language;    // "en", "de", ...; "" = detect (multilingual) or English (.en)
  bool timestamps = true;  // predict timestamp tokens (segments); false: one segment per window
  int beam_size = 1;       // 1: greedy; 5: beam search as Whisper's CLI
  std::vector<float> temperatures{0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f};  // fallback ladder
  double compression_ratio_threshold = 2.4;                             // above: too repetitive, retry hotter
  double logprob_threshold = -1.0;                                      // average log-probability below: retry hotter
  double no_speech_threshold = 0.6;      // no-speech probability above (and logprob low): silence
  double max_initial_timestamp_s = 1.0;  // the first timestamp of a window at most this
  uint64_t seed = 0;                     // for sampling at temperatures above 0
  ProgressSink progress;                 // seconds of audio done, after each window
  StopRequested should_stop;
};

struct Segment {
  double start_s = 0;
  double end_s = 0;
  std::string text;
  std::vector<int32_t> tokens;   // text and timestamp tokens of the segment
  double avg_logprob = 0;        // of the window's decoding
  double no_speech_prob = 0;     // of the window
  double temperature = 0;        // the window was decoded at
  double compression_ratio = 0;  // of the window's text
};

struct Transcript {
  std::vector<Segment> segments;
  std::string text;      // the segments' text joined
  std::string language;  // the language decoded in
  double duration_s = 0;
  int n_windows = 0;  // windows decoded (silent ones included)
};

// The teacher-forced log-probability of a text given the audio (its first 30 s window).
struct Score {
  std::vector<int32_t> prompt;         // the tokens before the text (start of transcript, ...)
  std::string prompt_text;             // those tokens spelled
  std::vector<int32_t> tokens;         // the text's tokens, then end of text
  std::vector<double> token_logprobs;  // one per token
  double total_logprob = 0;
};

// A loaded checkpoint and its tokenizer; const use is shared by requests (one at a time per
// thread: libtorch's CPU kernels are thread-safe).
class Model {
 public:
  // Reads config.json, the weights and the tokenizer files of a Hugging Face Whisper directory.
  // Throws InputError naming the file: a missing directory or file, another architecture, a
  // shape mismatch, a truncated safetensors file, a tokenizer that does not fit the model.
  static Model load(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const;
  bool multilingual() const;
  double window_s() const;       // the audio one window holds: 30 s for the published models
  std::string describe() const;  // "whisper d_model 384, 4+4 layers, 80 mels, 51864 tokens (English-only)"

  struct Impl;
  std::shared_ptr<Impl> impl;
};

// Transcribes an audio or video file (any format FFmpeg reads), streamed by windows.
Transcript transcribe(const Model& model, const std::filesystem::path& audio, const TranscribeParams& params = {});
// Transcribes 16 kHz mono samples.
Transcript transcribe_samples(const Model& model, std::span<const float> samples, const TranscribeParams& params = {});

// Scores `text` given the first window of the audio file (for captions: is the text what was said?).
Score score(const Model& model, const std::filesystem::path& audio, const std::string& text,
            const TranscribeParams& params = {});
Score score_samples(const Model& model, std::span<const float> samples, const std::string& text,
                    const TranscribeParams& params = {});

// As dself's transcript (engine "whisper", model = the checkpoint directory): the segments, and
// their words with times spread over each segment in proportion to their length in characters
// (Whisper gives segment times; prepare's aligner finds the phones' own times afterwards).
transcript::Transcript to_transcript(const Model& model, const Transcript& transcript);

// The JSON documents `dself transcribe --stt whisper --json` prints (README, "dself transcribe"):
// {"engine": "whisper", "model": DIR, "language": "en", "duration_s": 12.3, "windows": 1,
//  "text": "...", "segments": [{"start_s", "end_s", "text", "tokens", "avg_logprob",
//  "no_speech_prob", "temperature", "compression_ratio"}]}
nlohmann::json transcript_json(const Model& model, const Transcript& transcript);
// {"engine": "whisper", "model": DIR, "text": TEXT, "prompt": [ids], "prompt_text": "...",
//  "tokens": [ids], "token_logprobs": [...], "total_logprob": -12.3}
nlohmann::json score_json(const Model& model, const std::string& text, const Score& score);

// --- which checkpoint an avatar uses (one rule for transcribe, prepare, serve and status) ---

// Where a chosen checkpoint came from.
enum class ModelSource {
  flag,     // --model / --whisper-model on the command line
  trained,  // the person's fine-tuned model, <avatar>/models/whisper (`dself train stt --whisper`)
  config,   // the avatar's setting (`dself config whisper_model DIR`)
};
const char* model_source_name(ModelSource source);  // "flag", "trained", "config"

struct ModelChoice {
  std::filesystem::path dir;
  ModelSource source = ModelSource::flag;
};

// The checkpoint to use: an explicit flag (non-empty `flag_dir`) > the person's fine-tuned model
// <avatar>/models/whisper (when its config.json exists) > the avatar config's whisper_model; none:
// std::nullopt. Reads only the avatar's config (InputError naming it when it is malformed).
std::optional<ModelChoice> find_model(const std::filesystem::path& avatar, const std::filesystem::path& flag_dir = {});
// As find_model; none: throws InputError saying how to set one (`flag_name` names the flag).
ModelChoice resolve_model(const std::filesystem::path& avatar, const std::filesystem::path& flag_dir = {},
                          const std::string& flag_name = "--model");

// Checks, without reading the weights, that `dir` holds a Whisper checkpoint: config.json of
// model_type whisper with its sizes, a weights file (model.safetensors or its index) and tokenizer
// files that load. Throws InputError naming the file and what is wrong.
void check_checkpoint(const std::filesystem::path& dir);

// What a result made with the checkpoint depends on, for prepare's input hashes: the directory,
// a hash of config.json and the tokenizer files, and each weights file's size and modification
// time (not a hash of gigabytes of weights). Throws InputError when config.json is missing.
std::string model_identity(const std::filesystem::path& dir);

}  // namespace dself::whisper
