// Transcripts: words with times from a source's captions or from speech recognition.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace dself::transcript {

struct Word {
  std::string text;         // as written in the source (punctuation attached), e.g. "Hey,"
  double start_s = 0;
  double end_s = 0;
  double confidence = 1;    // 0..1; captions are 1
};

// A stretch of text as the source grouped it: a caption cue, or a recognised speech chunk.
struct Segment {
  std::string text;
  double start_s = 0;
  double end_s = 0;
};

struct Transcript {
  std::string engine;    // "captions" or "pocketsphinx"
  std::string model;     // caption file, or acoustic model path
  std::string language = "en";
  std::vector<Segment> segments;
  std::vector<Word> words;
};

// Parses WebVTT (including YouTube's automatic captions: rolling duplicated lines and inline
// <00:00:01.234><c> word</c> timings) or SRT, detected from the text. `name` is used in error
// messages. Throws InputError naming the line for malformed input, and for captions whose
// declared language is not English.
Transcript parse_captions(std::string_view text, const std::string& name);

// Reads and parses a caption file (see parse_captions).
Transcript read_captions(const std::filesystem::path& path);

// A stretch of audio with speech in it, cut at pauses.
struct SpeechChunk {
  double start_s = 0;
  double end_s = 0;
};

// Cuts mono audio into chunks of speech no longer than max_chunk_s, cutting in pauses
// (energy-based voice activity detection); silence between chunks is left out.
std::vector<SpeechChunk> find_speech_chunks(std::span<const float> audio, int sample_rate, double max_chunk_s);

struct PocketSphinxOptions {
  std::filesystem::path model_dir = "/usr/share/pocketsphinx/model/en-us";  // Debian's pocketsphinx-en-us
  double max_chunk_s = 30;  // longest stretch decoded at once, in seconds
  // The person's adaptation (src/stt, `dself train stt`); each empty path: the generic part.
  std::filesystem::path acoustic_model;  // HMM directory (MAP-adapted); empty: model_dir/en-us
  std::filesystem::path dictionary;      // pronunciations; empty: model_dir/cmudict-en-us.dict
  std::filesystem::path mllr;            // MLLR transform of the means (sphinxtrain's mllr_solve)
  std::filesystem::path person_lm;       // ARPA n-gram model, interpolated with the generic LM
  double person_lm_weight = 0.5;         // the person LM's share of the interpolation, 0..1
  std::string name;                      // what model_name() reports; empty: model_dir
};

using ChunkProgress = std::function<void(size_t chunks_done, size_t chunk_count)>;

// Recognises English speech in 16 kHz mono audio. One loaded model; not thread-safe.
class PocketSphinxRecognizer {
 public:
  explicit PocketSphinxRecognizer(const PocketSphinxOptions& options = {});
  ~PocketSphinxRecognizer();
  PocketSphinxRecognizer(const PocketSphinxRecognizer&) = delete;
  PocketSphinxRecognizer& operator=(const PocketSphinxRecognizer&) = delete;

  Transcript transcribe(std::span<const float> audio_16k, const ChunkProgress& progress = {});
  std::string model_name() const;

 private:
  void use_person_lm();
  struct Model;
  PocketSphinxOptions options_;
  std::unique_ptr<Model> model_;
};

// Text as it is said: numbers, years, money, percentages and common abbreviations written out
// in words ("In 1995 Dr. Lee paid $5." -> "In nineteen ninety five doctor Lee paid five dollars.");
// punctuation is kept, since it carries prosody.
std::string normalize_text(std::string_view text);

// Lower-case words without punctuation, after normalize_text: what word error rate compares.
std::vector<std::string> scoring_words(std::string_view text);

// Word error rate: (substitutions + deletions + insertions) / reference length.
double word_error_rate(const std::vector<std::string>& reference, const std::vector<std::string>& hypothesis);

nlohmann::json to_json(const Transcript& transcript);
// Throws InputError saying what is wrong for JSON of another shape.
Transcript transcript_from_json(const nlohmann::json& json);

}  // namespace dself::transcript
