// The speech dataset (DESIGN.md §1, prepare): a source's speech cut into utterances of a few
// seconds, each a 16 kHz WAV clip with its text, the words' IPA and every phone's start and end
// found by forced alignment. The voice and STT stages train on it. Method and measured accuracy:
// docs/ALIGNMENT.md; file format: utterances.json, described at write_dataset.
#pragma once

#include <cstddef>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "transcript/transcript.h"

namespace dself::speech {

constexpr int kSampleRate = 16000;  // Hz of every clip and of the audio given here

// ---------------------------------------------------------------------------------------------
// Cutting a source into utterances

struct UtteranceOptions {
  double min_duration_s = 2;         // shortest utterance kept (speech span, padding excluded)
  double max_duration_s = 15;        // longest utterance; longer runs are cut at their longest pause
  double min_pause_s = 0.25;         // shortest pause an utterance may be cut at
  double split_pause_s = 1.5;        // pauses at least this long always end an utterance
  double padding_s = 0.15;           // silence kept before the first and after the last word
  double clipping_level = 0.99;      // |sample| at or above this counts as clipped (full scale 1)
  double max_clipped_share = 0.001;  // more clipped samples than this share drops the utterance
  double min_speech_share = 0.35;    // fewer voice-active 10 ms frames than this share drops it
  double min_words_per_s = 0.5;      // fewer words per second of speech span drops it
  double max_tone_share = 0.5;       // more 1 s windows with a tone held through them drops it
  double max_rate_ratio = 1.8;       // words per second above this times the source's median drops it
  double held_out_share = 0.1;       // share of utterances in the held-out split
};

enum class Split { train, held_out };
const char* split_name(Split split);  // "train" or "held_out"

// One utterance: a stretch of the source and the words said in it.
struct Utterance {
  double source_start_s = 0;  // the clip, in the source's time (padding included)
  double source_end_s = 0;
  std::vector<transcript::Word> words;  // as written in the source; times from the clip's start
  Split split = Split::train;
  std::string text() const;  // the words joined by spaces
};

struct UtteranceSet {
  std::vector<Utterance> utterances;   // in source order
  std::map<std::string, int> dropped;  // reason -> utterances dropped for it
  int dropped_word_count = 0;          // words of the transcript in dropped utterances
};

// Groups the transcript's words into utterances of min..max duration, cut at the longest pauses
// (measured in the word times and in the audio), and drops those unfit for training. Reasons:
// "too_short", "too_long" (no pause to cut at), "clipping", "too_little_speech", "music",
// "speech_rate_outlier"; docs/ALIGNMENT.md says what each measures. Held-out split by a
// hash of the utterance's text: deterministic, and the same sentence said twice lands on the
// same side. Throws InputError for a transcript without words or words beyond the audio's end.
UtteranceSet cut_utterances(const transcript::Transcript& transcript, std::span<const float> audio_16k,
                            const UtteranceOptions& options = {});

// ---------------------------------------------------------------------------------------------
// Phonemes

// How one written word is said.
struct Pronunciation {
  std::string word;                               // as written, e.g. "Hello," or "1995"
  std::string ipa;                                // espeak-ng's IPA, e.g. "həlˈoʊ"
  std::vector<std::vector<std::string>> arpabet;  // ARPAbet pronunciations (lower case), likeliest first
  bool in_dictionary = false;                     // from the CMU dictionary, not espeak-ng's rules
};

struct PhonemizerOptions {
  std::filesystem::path dictionary = "/usr/share/pocketsphinx/model/en-us/cmudict-en-us.dict";  // CMU dictionary
  std::string voice = "en-us";  // espeak-ng voice for IPA and unknown words
  size_t max_variants = 4;      // pronunciations kept per word
};

// IPA from libespeak-ng; ARPAbet from the CMU dictionary where it has the word, else espeak-ng's
// phonemes mapped to ARPAbet (docs/ALIGNMENT.md lists the mapping). Thread-safe: espeak-ng is
// one per process and calls into it are serialised.
class Phonemizer {
 public:
  // Throws EnvironmentError when the dictionary or espeak-ng's data is missing.
  explicit Phonemizer(const PhonemizerOptions& options = {});
  ~Phonemizer();
  Phonemizer(const Phonemizer&) = delete;
  Phonemizer& operator=(const Phonemizer&) = delete;

  // Numbers and abbreviations are said as words first ("1995" -> nineteen ninety five). A word
  // with nothing to say (punctuation) gets no pronunciations.
  Pronunciation pronounce(std::string_view word) const;
  std::vector<Pronunciation> pronounce(const std::vector<transcript::Word>& words) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// espeak-ng is one engine per process, shared by the Phonemizer and the fallback voice
// (voice/voice.h). Runs `work` holding the process-wide lock, with the engine started (synchronous
// output, phoneme events named in IPA) and set to `voice`; `work` must not call with_espeak.
// Throws EnvironmentError when espeak-ng's data or the voice is missing.
void with_espeak(const std::string& voice, const std::function<void()>& work);

// espeak-ng's IPA as ARPAbet phones in lower case, e.g. "həlˈoʊ" -> hh ah l ow (stress, length
// and separators ignored; docs/ALIGNMENT.md lists the mapping).
std::vector<std::string> ipa_to_arpabet(std::string_view ipa);

// ---------------------------------------------------------------------------------------------
// Forced alignment

// A phone over [start_s, end_s): ARPAbet in lower case, "sil" for silence.
struct TimedPhone {
  std::string phone;
  double start_s = 0;
  double end_s = 0;
};

struct AlignedWord {
  std::string text;  // as written
  double start_s = 0;
  double end_s = 0;
  std::string ipa;
};

struct Alignment {
  std::vector<AlignedWord> words;
  std::vector<TimedPhone> phones;  // in order, silences included, covering the clip's aligned frames
};

struct AlignerOptions {
  std::filesystem::path model_dir = "/usr/share/pocketsphinx/model/en-us";  // Debian's pocketsphinx-en-us
  double silence_probability = 0.1;  // prior of an optional pause between two words
};

// Phone-level forced alignment with PocketSphinx: a grammar that accepts only the utterance's
// phones in order (any listed pronunciation per word, optional silence between words). One
// loaded acoustic model; the grammar is per call. Not thread-safe: one Aligner per thread.
class Aligner {
 public:
  // Throws EnvironmentError when the model cannot be loaded.
  explicit Aligner(const AlignerOptions& options = {});
  ~Aligner();
  Aligner(const Aligner&) = delete;
  Aligner& operator=(const Aligner&) = delete;

  // Aligns 16 kHz mono audio to its words. Throws InputError when there is nothing to align,
  // when the clip is too short for its phones, or when no path through the phones fits.
  Alignment align(std::span<const float> clip_16k, const std::vector<Pronunciation>& words);

 private:
  struct Model;
  AlignerOptions options_;
  std::unique_ptr<Model> model_;
};

// ---------------------------------------------------------------------------------------------
// The dataset of one source: <dir>/NNNN.wav and <dir>/utterances.json

// Whether the audio supports an utterance's caption text (prepare, when a source has captions and
// a Whisper model is available): the model's teacher-forced log-probability per token of the
// caption beside that of the model's own transcript of the same clip (docs/STT.md).
struct CaptionCheck {
  std::string model;           // the Whisper checkpoint directory
  double caption_logprob = 0;  // average log-probability per token of the caption's text
  double whisper_logprob = 0;  // average log-probability per token of Whisper's own transcript of the clip
  std::string whisper_text;    // that transcript
  double margin = 0;           // nats per token: flagged when caption_logprob < whisper_logprob - margin
  bool flagged = false;        // the audio does not support the caption
};

struct DatasetUtterance {
  std::string id;   // "0007"
  std::string wav;  // file name beside utterances.json, "0007.wav"
  double source_start_s = 0;
  double source_end_s = 0;
  std::string text;             // as written
  std::string normalized_text;  // as said (transcript::normalize_text)
  Split split = Split::train;
  Alignment alignment;  // times from the clip's start
  std::optional<CaptionCheck> caption_check;  // caption-derived utterances checked against the audio
};

struct SpeechDataset {
  std::vector<DatasetUtterance> utterances;
  std::map<std::string, int> dropped;  // reason -> utterances, including "alignment_failed"
};

using UtteranceProgress = std::function<void(size_t utterances_done, size_t utterance_count)>;

// Cuts, phonemizes and aligns one source's speech and writes it to `dir`: first the clips (16 kHz
// mono 16-bit WAV), then utterances.json, each atomically; an utterances.json from before is
// removed first, so the directory holds a dataset only once the new one is complete, and clips it
// no longer lists are removed after. A transcript without words (a video without speech) makes
// an empty dataset; other bad input throws as cut_utterances does. utterances.json:
//   {"format": "dself-speech", "version": 1,
//    "utterances": [{"id", "wav", "source_start_s", "source_end_s", "text", "normalized_text",
//                    "split": "train"|"held_out",
//                    "words": [{"text", "start_s", "end_s", "ipa"}],
//                    "phones": [{"phone", "start_s", "end_s"}],   (times from the clip's start)
//                    "caption_check": {"model", "caption_logprob", "whisper_logprob", "whisper_text",
//                                      "margin", "flagged"}}],  (optional: see CaptionCheck)
//    "dropped": {"reason": count}}
SpeechDataset write_dataset(const std::filesystem::path& dir, const transcript::Transcript& transcript,
                            std::span<const float> audio_16k, const Phonemizer& phonemizer, Aligner& aligner,
                            const UtteranceOptions& options = {}, const UtteranceProgress& progress = {});

// Reads <dir>/utterances.json. Throws InputError naming the file when it is missing or malformed.
SpeechDataset read_dataset(const std::filesystem::path& dir);

nlohmann::json to_json(const SpeechDataset& dataset);
// Throws InputError saying what is wrong for JSON of another shape.
SpeechDataset dataset_from_json(const nlohmann::json& json);

// ---------------------------------------------------------------------------------------------
// Evaluation against known phone times

struct BoundaryError {
  double mean_ms = 0;  // mean absolute boundary difference
  double median_ms = 0;
  double within_20ms = 0;       // share of boundaries off by at most 20 ms
  int boundary_count = 0;       // boundaries compared
  int truth_phone_count = 0;    // speech phones in the truth
  int matched_phone_count = 0;  // truth speech phones paired with an aligned one
};

// Compares aligned phones with true ones (both in the same clock). The speech phones of the two
// sequences are paired by edit distance on their labels (flite's "ax" counts as "ah"; "pau",
// "sil" are silence); each truth boundary of a paired phone is compared once: its start, and its
// end where silence or nothing follows. Silences themselves are not paired, so how a pause is
// split inside does not count; where speech meets silence does.
BoundaryError phone_boundary_error(std::span<const TimedPhone> truth, std::span<const TimedPhone> aligned);

}  // namespace dself::speech
