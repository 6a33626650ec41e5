// Speech recognition with Debian's PocketSphinx and its US English model.
#include <pocketsphinx.h>
#include <ngram_model.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.h"
#include "transcript/transcript.h"

namespace dself::transcript {
namespace {

constexpr int sphinx_rate = 16000;          // the en-us model's sample rate
constexpr double sphinx_frame_s = 0.01;     // PocketSphinx reports times in 10 ms frames

// "<s>", "</s>", "<sil>", "[NOISE]", "++UM++": not words the person said.
bool is_filler(const std::string& word) {
  return word.empty() || word[0] == '<' || word[0] == '[' || word[0] == '+';
}

// "read(2)" is the second pronunciation of "read".
std::string strip_variant(const std::string& word) {
  size_t paren = word.find('(');
  return paren == std::string::npos ? word : word.substr(0, paren);
}

}  // namespace

struct PocketSphinxRecognizer::Model {
  cmd_ln_t* config = nullptr;
  ps_decoder_t* decoder = nullptr;
  ~Model() {
    if (decoder) ps_free(decoder);
    if (config) cmd_ln_free_r(config);
  }
};

PocketSphinxRecognizer::PocketSphinxRecognizer(const PocketSphinxOptions& options)
    : options_(options), model_(std::make_unique<Model>()) {
  const auto& dir = options.model_dir;
  std::filesystem::path hmm = options.acoustic_model.empty() ? dir / "en-us" : options.acoustic_model;
  std::filesystem::path lm = dir / "en-us.lm.bin";
  std::filesystem::path dict = options.dictionary.empty() ? dir / "cmudict-en-us.dict" : options.dictionary;
  std::vector<std::filesystem::path> needed = {hmm, lm, dict};
  if (!options.mllr.empty()) needed.push_back(options.mllr);
  if (!options.person_lm.empty()) needed.push_back(options.person_lm);
  for (const auto& p : needed) {
    if (!std::filesystem::exists(p)) {
      throw EnvironmentError(fmt::format("the PocketSphinx model is missing {}: install pocketsphinx-en-us "
                                         "(make setup), give another model directory, or run `dself train stt "
                                         "--force` for a person's model",
                                         p.string()));
    }
  }
  model_->config = cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", hmm.c_str(), "-lm", lm.c_str(), "-dict",
                               dict.c_str(), "-logfn", "/dev/null", "-samprate", "16000", nullptr);
  if (model_->config && !options.mllr.empty()) cmd_ln_set_str_r(model_->config, "-mllr", options.mllr.c_str());
  if (model_->config) model_->decoder = ps_init(model_->config);
  if (!model_->decoder) {
    throw EnvironmentError(fmt::format("PocketSphinx could not load its model from {}", dir.string()));
  }
  if (!options.person_lm.empty()) use_person_lm();
}

// The generic and the person's model interpolated at run time, word by word (sphinxbase's
// ngram_model_set_interp): P(w|h) = λ P_person(w|h) + (1-λ) P_generic(w|h).
void PocketSphinxRecognizer::use_person_lm() {
  ps_decoder_t* ps = model_->decoder;
  logmath_t* lmath = ps_get_logmath(ps);
  ngram_model_t* generic = ps_get_lm(ps, "_default");  // pocketsphinx 5prealpha's first search
  ngram_model_t* person = ngram_model_read(model_->config, options_.person_lm.c_str(), NGRAM_AUTO, lmath);
  if (!generic || !person) {
    if (person) ngram_model_free(person);
    throw EnvironmentError(fmt::format("PocketSphinx could not read the person's language model {}: run `dself "
                                       "train stt --force`",
                                       options_.person_lm.string()));
  }
  ngram_model_retain(generic);
  ngram_model_t* models[2] = {generic, person};
  const char* names[2] = {"generic", "person"};
  const double lambda = std::clamp(options_.person_lm_weight, 0.0, 1.0);
  const float32 weights[2] = {static_cast<float32>(1 - lambda), static_cast<float32>(lambda)};
  ngram_model_t* set = ngram_model_set_init(model_->config, models, const_cast<char**>(names), weights, 2);
  if (!set || ps_set_lm(ps, "person", set) < 0 || ps_set_search(ps, "person") < 0) {
    throw EnvironmentError(fmt::format("PocketSphinx could not interpolate the person's language model {}",
                                       options_.person_lm.string()));
  }
  // The set is left to the decoder: pocketsphinx 5prealpha's searches free their model or not
  // depending on how they were made, and one model per recogniser is not worth a double free.
}

PocketSphinxRecognizer::~PocketSphinxRecognizer() = default;

std::string PocketSphinxRecognizer::model_name() const {
  return options_.name.empty() ? options_.model_dir.string() : options_.name;
}

Transcript PocketSphinxRecognizer::transcribe(std::span<const float> audio, const ChunkProgress& progress) {
  Transcript transcript;
  transcript.engine = "pocketsphinx";
  transcript.model = model_name();
  ps_decoder_t* ps = model_->decoder;
  logmath_t* logmath = ps_get_logmath(ps);
  std::vector<SpeechChunk> chunks = find_speech_chunks(audio, sphinx_rate, options_.max_chunk_s);
  std::vector<int16_t> pcm;
  for (size_t c = 0; c < chunks.size(); ++c) {
    const SpeechChunk& chunk = chunks[c];
    size_t begin = static_cast<size_t>(chunk.start_s * sphinx_rate);
    size_t end = std::min(audio.size(), static_cast<size_t>(chunk.end_s * sphinx_rate));
    pcm.resize(end - begin);
    for (size_t i = begin; i < end; ++i) {
      pcm[i - begin] = static_cast<int16_t>(std::clamp(audio[i], -1.0f, 1.0f) * 32767.0f);
    }
    ps_start_utt(ps);
    ps_process_raw(ps, pcm.data(), pcm.size(), FALSE, TRUE);
    ps_end_utt(ps);
    std::string text;
    double segment_end = chunk.start_s;
    for (ps_seg_t* seg = ps_seg_iter(ps); seg; seg = ps_seg_next(seg)) {
      std::string word = ps_seg_word(seg);
      if (is_filler(word)) continue;
      int start_frame = 0, end_frame = 0;
      ps_seg_frames(seg, &start_frame, &end_frame);
      int32 acoustic = 0, language = 0, backoff = 0;
      double confidence = logmath_exp(logmath, ps_seg_prob(seg, &acoustic, &language, &backoff));
      Word w;
      w.text = strip_variant(word);
      w.start_s = chunk.start_s + start_frame * sphinx_frame_s;
      w.end_s = chunk.start_s + (end_frame + 1) * sphinx_frame_s;
      w.confidence = std::clamp(confidence, 0.0, 1.0);
      text += (text.empty() ? "" : " ") + w.text;
      segment_end = w.end_s;
      transcript.words.push_back(std::move(w));
    }
    if (!text.empty()) transcript.segments.push_back(Segment{text, chunk.start_s, segment_end});
    if (progress) progress(c + 1, chunks.size());
  }
  return transcript;
}

}  // namespace dself::transcript
