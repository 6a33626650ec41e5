// The trained voice's configuration files, read apart from libtorch (so that the readers can be
// fuzzed alone, fuzz/fuzz_voice_config.cpp): config.json and normalization.json of
// models/voice/ (docs/VOICE.md). Every reader throws InputError naming the file, for any input.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace dself::voice {

// Per-frame outputs, in this order: mel-cepstrum c0..c24, log-F0 (interpolated through unvoiced
// frames), voicing logit, band aperiodicity.
constexpr int64_t kMcepDims = 25;
constexpr int64_t kLf0Index = 25;
constexpr int64_t kVoicingIndex = 26;
constexpr int64_t kBapIndex = 27;
constexpr int64_t kBapDims = 5;
constexpr int64_t kFrameDims = 32;

// config.json's "model" object, one field each:
//   {"phone_count": 41, "dim": 192, "encoder_layers": 4, "decoder_layers": 4, "kernel_size": 5,
//    "predictor_dim": 128, "reduction": 4, "dropout": 0.1}
struct AcousticModelOptions {
  int64_t phone_count = 41;    // phone vocabulary: padding, "sil", 39 ARPAbet
  int64_t dim = 192;           // channels of encoder and decoder
  int64_t encoder_layers = 4;  // residual conv blocks over phones
  int64_t decoder_layers = 4;  // residual conv blocks over decoder steps
  int64_t kernel_size = 5;     // of every encoder/decoder conv
  int64_t predictor_dim = 128; // channels of the duration, pitch and energy predictors
  int64_t reduction = 4;       // frames per decoder step (docs/VOICE.md: 4 = 20 ms steps)
  double dropout = 0.1;
};
nlohmann::json to_json(const AcousticModelOptions& options);
// Throws InputError naming `where` for missing or out-of-range fields.
AcousticModelOptions model_options_from_json(const nlohmann::json& json, const std::string& where);

// Feature normalisation (train split only): means and standard deviations per target column.
// normalization.json: {"mcep_mean": [25], "mcep_std": [25], "lf0_mean": x, "lf0_std": x,
//                      "bap_mean": [5], "bap_std": [5]}
struct Normalization {
  std::vector<float> mcep_mean, mcep_std;
  float lf0_mean = 0, lf0_std = 1;
  std::vector<float> bap_mean, bap_std;
};
nlohmann::json to_json(const Normalization& n);
Normalization normalization_from_json(const nlohmann::json& json, const std::string& where);

// config.json: {"format": "dself-voice", "phones": ["<pad>", "sil", ...], "speech_s": S,
//               "model": {AcousticModelOptions}, ...}
struct VoiceConfig {
  std::vector<std::string> phones;  // the phone vocabulary the model was trained on
  double speech_s = 0;              // seconds of speech it was trained on
  AcousticModelOptions model;
};
// Parses config.json's text; `where` names the file in errors.
VoiceConfig parse_voice_config(std::string_view text, const std::string& where);

}  // namespace dself::voice
