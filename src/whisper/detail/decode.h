// Decoding one window (greedy or beam search, the timestamp rules, temperature fallback) and the
// special tokens of a Whisper tokenizer. Internal to dself_whisper (and its tests).
#pragma once


#include <string>
#include <vector>

#include "hf/tokenizer.h"
#include "whisper/detail/model.h"
#include "whisper/whisper.h"

namespace dself::whisper {

// The special tokens, found by their spelling in the tokenizer (ref: whisper/tokenizer.py).
struct SpecialTokens {
  int32_t eot = -1, sot = -1, translate = -1, transcribe = -1, sot_lm = -1, sot_prev = -1;
  int32_t no_speech = -1;  // <|nospeech|> or <|nocaptions|>; -1 when the tokenizer has neither
  int32_t no_timestamps = -1;
  int32_t timestamp_begin = -1;                            // <|0.00|>: no_timestamps + 1 in every Whisper vocabulary
  std::vector<std::pair<std::string, int32_t>> languages;  // ("en", id), between sot and translate
};

struct Model::Impl {
  std::filesystem::path dir;
  Whisper net{nullptr};
  std::map<std::string, safetensors::DType> dtypes;  // as stored, for saving
  hf::Tokenizer tokenizer;
  SpecialTokens special;
  bool multilingual = false;
  std::vector<int32_t> suppress;        // never sampled
  std::vector<int32_t> begin_suppress;  // not as the first sampled token (" " and end of text)
};

// The tokens a window's decoding produced, and how sure the model was.
struct WindowResult {
  std::vector<int32_t> tokens;  // sampled tokens, without the prompt and the end of text
  double sum_logprob = 0;
  double avg_logprob = 0;  // sum / (tokens + 1), as Whisper's
  double no_speech_prob = 0;
  double temperature = 0;
  double compression_ratio = 0;
};

// The start-of-transcript sequence: [sot] for English-only models, [sot, language, transcribe]
// for multilingual ones; then <|notimestamps|> when `timestamps` is false.
std::vector<int32_t> sot_sequence(const Model::Impl& m, const std::string& language, bool timestamps);

// Decodes one window's audio features [1, S, d] after `prompt` at `temperature` (beam search when
// beam_size > 1 and temperature is 0).
WindowResult decode_window(Model::Impl& m, const torch::Tensor& audio, const std::vector<int32_t>& prompt,
                           float temperature, const TranscribeParams& params, torch::Generator& generator);

// decode_window over the temperature ladder until the result is neither repetitive nor unlikely
// (ref: whisper/transcribe.py decode_with_fallback).
WindowResult decode_with_fallback(Model::Impl& m, const torch::Tensor& audio, const std::vector<int32_t>& prompt,
                                  const TranscribeParams& params, torch::Generator& generator);

// The text of a token sequence (timestamps and other special tokens left out).
std::string text_of(const Model::Impl& m, const std::vector<int32_t>& tokens);
// len(utf-8) / len(zlib(utf-8)), as Whisper's compression_ratio.
double compression_ratio(const std::string& text);

}  // namespace dself::whisper
