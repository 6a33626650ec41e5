// The trained voice's data (docs/VOICE.md, "Data"): the text front end shared by training and
// synthesis (words -> phones with prosodic context), and the training examples built from the
// avatar's speech dataset with their vocoder features as targets.
#pragma once

#include <array>
#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/progress.h"
#include "speech/speech.h"
#include "voice/detail/acoustic_model.h"

namespace dself::voice {

// ---------------------------------------------------------------------------------------------
// Front end

// The phone vocabulary: "<pad>", "sil", then the 39 ARPAbet phones (lower case); id = index.
const std::vector<std::string>& phone_names();
// The id of a phone; -1 when it is not in the vocabulary.
int64_t phone_id(std::string_view phone);

// A piece of an utterance: a word with its phones, or a pause.
struct FrontItem {
  bool pause = false;
  std::string text;                 // the word as written ("Hello,"); empty for a pause
  std::string ipa;                  // espeak-ng's IPA of the word (stress marks)
  std::vector<std::string> phones;  // ARPAbet, lower case; {"sil"} for a pause
};

using PhoneContext = std::array<int64_t, kContextColumnCount>;

// Each phone of the items with its context (stress, position in word, word in phrase, punctuation,
// phrase in utterance); phrases end at punctuation.
std::vector<PhoneContext> phone_contexts(const std::vector<FrontItem>& items);

// Per-phone stress of a word's ARPAbet phones from its IPA: the k-th vowel gets the stress mark
// (ˈ primary, ˌ secondary) of the IPA syllable holding the k-th vowel. Values as kStress.
std::vector<int64_t> phone_stress(std::string_view ipa, const std::vector<std::string>& phones);

// Punctuation class after a written word: 1 none, 2 , ; : and dashes, 3 . 4 ? 5 !
int64_t punctuation_class(std::string_view word);

// A sentence for the voice to say: words (split at spaces) pronounced by the phonemizer (first
// variant), pauses at the start, the end and after punctuation. Characters no phone covers
// (emoji, other scripts) are dropped, each noted in `warnings`.
std::vector<FrontItem> front_end(const speech::Phonemizer& phonemizer, std::string_view sentence,
                                 std::vector<std::string>* warnings);

// ---------------------------------------------------------------------------------------------
// Training data

// Feature normalisation: Normalization (voice/detail/model_config.h).

// One utterance as the model learns it.
struct VoiceExample {
  std::string id;                     // "<source>/<utterance id>"
  std::vector<int64_t> phones;        // phone ids
  std::vector<PhoneContext> context;  // per phone
  std::vector<int64_t> durations;     // frames per phone, summing to frame_count
  std::vector<float> phone_pitch;     // normalised mean log-F0 per phone
  std::vector<float> phone_energy;    // normalised mean c0 per phone
  int64_t frame_count = 0;
  std::vector<float> frames;          // frame_count × kFrameDims, normalised (voicing 0/1)
};

struct VoiceData {
  std::vector<VoiceExample> train;
  std::vector<VoiceExample> held_out;  // never trained on
  Normalization normalization;
  double train_speech_s = 0;
  double held_out_speech_s = 0;
};

// The sources with a speech dataset: every <avatar>/speech/<id>/utterances.json, by id.
std::vector<std::filesystem::path> speech_source_dirs(const std::filesystem::path& avatar);

// Seconds of train-split and held-out speech listed in the datasets (clip lengths), without
// reading any audio.
std::pair<double, double> speech_seconds(const std::filesystem::path& avatar);

// Every utterance's example: phones from its alignment, targets from vocoder::analyze of its
// clip (cached in `cache_dir`, one safetensors file per source keyed by its utterances.json, so a
// rerun does not analyse again), `threads` clips at a time. Throws InputError naming the file for
// a malformed dataset; Stopped when `should_stop` says so between rounds of clips.
VoiceData load_voice_data(const std::filesystem::path& avatar, const std::filesystem::path& cache_dir, int threads = 1,
                          const ProgressSink& progress = {}, const StopRequested& should_stop = {});

// Batches by length (FastSpeech 2 §3.1 batches similar lengths together): examples sorted by
// frame count and cut into runs whose padded size stays within max_frames (at least one each).
std::vector<std::vector<size_t>> length_batches(const std::vector<VoiceExample>& examples, int64_t max_frames);

// The examples at `indices` padded into one batch, frames padded to a multiple of `reduction`.
AcousticBatch collate(const std::vector<VoiceExample>& examples, const std::vector<size_t>& indices,
                      int64_t reduction);

}  // namespace dself::voice
