// Speech recognition that knows the person (`dself train stt`, docs/STT.md): PocketSphinx's generic
// US English model adapted to the person — their own n-gram language model interpolated with the
// generic one, their vocabulary added to the dictionary, and the acoustic model adapted to their
// voice with sphinxtrain (MLLR, then MAP). Everything is learned from the speech dataset's train
// split only; its held-out utterances judge it.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/progress.h"
#include "transcript/transcript.h"

namespace dself::stt {

// ---------------------------------------------------------------------------------------------
// n-gram language model (interpolated modified Kneser-Ney)

struct NgramEntry {
  double probability = 0;  // p(w | h), interpolated (not log)
  double backoff = 1;      // weight for words unseen after this n-gram as a context (not log)
};

struct NgramModel {
  int order = 3;
  std::vector<std::array<double, 3>> discounts;  // per order: D1, D2, D3+
  std::vector<std::map<std::vector<std::string>, NgramEntry>> grams;  // [n-1]: n-gram -> entry

  // The discount of an n-gram of `order` with adjusted count `count` (0 for count 0).
  double discount(int order, long count) const;
  // p(word | history) by ARPA back-off over the stored n-grams; 0 for a word outside the vocabulary.
  double probability(const std::vector<std::string>& history, const std::string& word) const;
};

// Estimates an interpolated modified Kneser-Ney model of `order` from sentences of words (each
// sentence gets <s> and </s>). Throws InputError when there are no words.
NgramModel estimate_kneser_ney(const std::vector<std::vector<std::string>>& sentences, int order = 3);

// The model in ARPA text form (log10 probabilities and back-off weights), as sphinxbase reads it.
std::string to_arpa(const NgramModel& model);

// ---------------------------------------------------------------------------------------------
// Mixture weights of a semi-continuous / phonetically-tied acoustic model

struct MixtureWeights {
  int senone_count = 0;
  int feature_count = 0;  // streams
  int density_count = 0;  // Gaussians per codebook
  std::vector<float> weights;  // [senone][feature][density], each (senone, feature) summing to 1

  float at(int senone, int feature, int density) const {
    return weights[(static_cast<size_t>(senone) * feature_count + feature) * density_count + density];
  }
};

// Reads PocketSphinx's quantised `sendump` (8-bit -log weights, transposed) back into weights:
// w = 1.0001^-(q << shift), renormalised per senone and stream. Throws InputError naming the file
// for another layout.
MixtureWeights read_sendump(const std::filesystem::path& path);

// Writes / reads a SphinxTrain (S3) binary `mixture_weights` file, as bw and map_adapt read it.
void write_mixture_weights(const std::filesystem::path& path, const MixtureWeights& weights);
MixtureWeights read_mixture_weights(const std::filesystem::path& path);

// ---------------------------------------------------------------------------------------------
// The person's model: models/stt/

struct AdaptOptions {
  std::filesystem::path avatar = "avatar";
  std::filesystem::path generic_model_dir = "/usr/share/pocketsphinx/model/en-us";  // pocketsphinx-en-us
  std::filesystem::path sphinxtrain_dir = "/usr/lib/sphinxtrain";  // bw, mllr_solve, map_adapt
  bool acoustic = true;             // adapt the acoustic model too (else the language model only)
  bool map = true;                  // MAP re-estimation (kept: it helps most, docs/STT.md); else MLLR alone
  double min_acoustic_speech_s = 60;  // less train-split speech than this: language model only
  double dev_share = 0.2;           // share of the train split held back to tune the LM weight
  std::vector<double> lm_weights = {0.5, 0.7, 0.9};  // person-LM weights tried on the dev split
  double max_dev_s = 90;            // development audio decoded per weight, at most (seconds)
  size_t min_dev_utterances = 3;    // fewer development utterances: default_lm_weight, untuned
  double default_lm_weight = 0.7;   // the person LM's weight when it cannot be tuned
  ProgressSink progress;
  StopRequested should_stop;
};

struct AdaptResult {
  double train_speech_s = 0;  // speech in the train split
  int train_utterances = 0;
  int added_words = 0;        // words of the person not in the generic dictionary
  double lm_weight = 0;       // tuned person-LM weight
  double dev_wer_generic = 0; // on the dev split (carved out of train)
  double dev_wer_person_lm = 0;
  bool mllr = false;          // an MLLR transform was made
  bool map = false;
  std::vector<std::string> notes;  // e.g. "too little speech for acoustic adaptation: ..."
};

// Builds models/stt/ from the avatar's speech dataset: person.arpa, person.dict, and (with enough
// speech and sphinxtrain) mllr_matrix and/or a MAP-adapted hmm/, with config.json and the tools'
// logs under models/stt/logs/. Throws InputError when the dataset has no train utterances, and
// EnvironmentError naming the package when sphinxtrain or sphinxbase-utils is missing.
AdaptResult adapt(const AdaptOptions& options);

// The hash of the data `train stt` learns from (the train split's clips and texts).
std::string stt_data_hash(const std::filesystem::path& avatar);

// The person's recogniser options when models/stt/config.json is there and complete; nullopt
// otherwise. Throws InputError naming the file when it is there but broken.
std::optional<transcript::PocketSphinxOptions> person_recognizer_options(
    const std::filesystem::path& avatar, const std::filesystem::path& generic_model_dir =
                                             "/usr/share/pocketsphinx/model/en-us");

// For voices that are not the person's (the live server's visitors): the person's language model
// and dictionary, with the adapted acoustic model only when `eval stt` found it costs other speakers
// (LibriVox) at most 2 points of WER ("other_voices_acoustic" in models/stt/metrics.json); nullopt
// when there is no person's model.
std::optional<transcript::PocketSphinxOptions> visitor_recognizer_options(const std::filesystem::path& avatar);

// `dself eval stt`: WER on the held-out utterances for generic, + person LM, + acoustic
// adaptation, both; on Debian's LibriVox recordings for generic and the acoustic adaptation; the
// decoder's real-time factor. Writes models/stt/metrics.json when there is a person's model.
nlohmann::json evaluate_stt(const std::filesystem::path& avatar, bool librivox = true);

}  // namespace dself::stt
