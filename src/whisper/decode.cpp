#include "whisper/detail/decode.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "core/error.h"
#include "core/fs.h"
#include "hf/checkpoint.h"

namespace dself::whisper {

namespace fs = std::filesystem;

namespace {

std::vector<int32_t> int_list(const nlohmann::json& json, const char* key) {
  std::vector<int32_t> out;
  if (json.is_object() && json.contains(key) && json[key].is_array())
    for (const auto& v : json[key])
      if (v.is_number_integer()) out.push_back(v.get<int32_t>());
  return out;
}

SpecialTokens find_special(const hf::Tokenizer& tok, const WhisperConfig& c) {
  SpecialTokens s;
  s.eot = tok.id("<|endoftext|>");
  s.sot = tok.id("<|startoftranscript|>");
  s.translate = tok.id("<|translate|>");
  s.transcribe = tok.id("<|transcribe|>");
  s.sot_lm = tok.id("<|startoflm|>");
  s.sot_prev = tok.id("<|startofprev|>");
  s.no_timestamps = tok.id("<|notimestamps|>");
  if (auto id = tok.token_to_id("<|nospeech|>"))
    s.no_speech = *id;
  else if (auto id2 = tok.token_to_id("<|nocaptions|>"))
    s.no_speech = *id2;
  s.timestamp_begin = s.no_timestamps + 1;
  if (auto ts = tok.token_to_id("<|0.00|>"); ts && *ts != s.timestamp_begin)
    throw InputError(
        fmt::format("{}: <|0.00|> is token {}, not {} (right after <|notimestamps|>): not a Whisper tokenizer",
                    tok.source().string(), *ts, s.timestamp_begin));
  for (int32_t id = s.sot + 1; id < s.translate; ++id) {
    const auto t = tok.id_to_token(id);
    if (t.size() > 4 && t.rfind("<|", 0) == 0) s.languages.emplace_back(t.substr(2, t.size() - 4), id);
  }
  const int32_t last_timestamp = s.timestamp_begin + c.max_source_positions;  // <|30.00|> for 30 s windows
  if (s.eot >= c.vocab_size || s.no_timestamps >= c.vocab_size || last_timestamp >= c.vocab_size + 1 ||
      tok.vocab_size() > c.vocab_size)
    throw InputError(
        fmt::format("{}: the tokenizer ({} tokens, timestamps from {}) does not fit the model's {} tokens "
                    "in config.json (a tokenizer from another checkpoint?)",
                    tok.source().string(), tok.vocab_size(), s.timestamp_begin, c.vocab_size));
  return s;
}

void mask(torch::Tensor& logits, int64_t from, int64_t to) {
  to = std::min<int64_t>(to, logits.size(0));
  if (from < to) logits.slice(0, from, to).fill_(-INFINITY);
}

// ref: whisper/decoding.py SuppressBlank, SuppressTokens, ApplyTimestampRules.
void apply_filters(const Model::Impl& m, torch::Tensor& logits, const std::vector<int32_t>& sampled,
                   const TranscribeParams& p) {
  const auto& s = m.special;
  auto* l = logits.data_ptr<float>();
  if (sampled.empty())
    for (int32_t t : m.begin_suppress) l[t] = -INFINITY;
  for (int32_t t : m.suppress) l[t] = -INFINITY;
  const int64_t ts = s.timestamp_begin, last_ts = ts + m.net->config.max_source_positions;
  mask(logits, last_ts + 1, logits.size(0));  // past the window's end
  if (!p.timestamps) return mask(logits, ts, logits.size(0));
  l[s.no_timestamps] = -INFINITY;
  const bool last_was_timestamp = !sampled.empty() && sampled.back() >= ts;
  const bool penultimate_was_timestamp = sampled.size() < 2 || sampled[sampled.size() - 2] >= ts;
  if (last_was_timestamp) {
    if (penultimate_was_timestamp)
      mask(logits, ts, logits.size(0));
    else
      mask(logits, 0, s.eot);
  }
  int32_t last_timestamp = -1;
  for (int32_t t : sampled)
    if (t >= ts) last_timestamp = t;
  if (last_timestamp >= 0) {
    // Timestamps do not decrease; a segment has a nonzero length.
    const int64_t upto = last_was_timestamp && !penultimate_was_timestamp ? last_timestamp : last_timestamp + 1;
    mask(logits, ts, upto);
  }
  if (sampled.empty()) {
    mask(logits, 0, ts);  // a window starts with a timestamp
    mask(logits, ts + int64_t(std::lround(p.max_initial_timestamp_s / kTimePrecision)) + 1, logits.size(0));
  }
  const auto logprobs = torch::log_softmax(logits, 0);
  const double timestamp_logprob = torch::logsumexp(logprobs.slice(0, ts), 0).item<double>();
  const double max_text_logprob = logprobs.slice(0, 0, ts).max().item<double>();
  if (timestamp_logprob > max_text_logprob) mask(logits, 0, ts);
}

int32_t best_token(const torch::Tensor& logits) { return int32_t(logits.argmax().item<int64_t>()); }

WindowResult greedy(Model::Impl& m, const torch::Tensor& audio, const std::vector<int32_t>& prompt, float temperature,
                    const TranscribeParams& p, torch::Generator& generator) {
  auto& decoder = m.net->decoder;
  auto cache = decoder->start(audio);
  const auto prompt_t = torch::tensor(std::vector<int64_t>(prompt.begin(), prompt.end())).unsqueeze(0);
  const auto logits = decoder->forward(prompt_t, cache)[0];
  WindowResult r;
  r.temperature = temperature;
  const auto sot_at = std::find(prompt.begin(), prompt.end(), m.special.sot) - prompt.begin();
  if (m.special.no_speech >= 0)
    r.no_speech_prob = torch::softmax(logits[sot_at], 0)[m.special.no_speech].item<double>();
  auto last = logits[-1].clone();
  const int64_t max_len = std::min<int64_t>(m.net->config.max_target_positions / 2,
                                            m.net->config.max_target_positions - int64_t(prompt.size()));
  for (int64_t i = 0; i < max_len; ++i) {
    apply_filters(m, last, r.tokens, p);
    const auto logprobs = torch::log_softmax(last, 0);
    int32_t next;
    if (temperature > 0) {
      const auto probs = torch::softmax(last / temperature, 0);
      next = int32_t(torch::multinomial(probs, 1, false, generator).item<int64_t>());
    } else {
      next = best_token(last);
    }
    r.sum_logprob += logprobs[next].item<double>();
    if (next == m.special.eot) break;
    r.tokens.push_back(next);
    if (i + 1 == max_len) break;
    last = decoder->forward(torch::tensor({int64_t(next)}).view({1, 1}), cache)[0][0].clone();
  }
  r.avg_logprob = r.sum_logprob / double(r.tokens.size() + 1);
  return r;
}

// ref: whisper/decoding.py BeamSearchDecoder (patience 1) and MaximumLikelihoodRanker (no length
// penalty: the sum of log-probabilities over the length).
WindowResult beam_search(Model::Impl& m, const torch::Tensor& audio, const std::vector<int32_t>& prompt,
                         const TranscribeParams& p) {
  const int beam = p.beam_size;
  auto& decoder = m.net->decoder;
  auto cache = decoder->start(audio.expand({beam, audio.size(1), audio.size(2)}).contiguous());
  std::vector<int64_t> prompt64(prompt.begin(), prompt.end());
  const auto prompt_t = torch::tensor(prompt64).unsqueeze(0).expand({beam, int64_t(prompt.size())}).contiguous();
  const auto logits = decoder->forward(prompt_t, cache);  // [beam, P, V]
  WindowResult r;
  const auto sot_at = std::find(prompt.begin(), prompt.end(), m.special.sot) - prompt.begin();
  if (m.special.no_speech >= 0)
    r.no_speech_prob = torch::softmax(logits[0][sot_at], 0)[m.special.no_speech].item<double>();
  struct Hyp {
    std::vector<int32_t> tokens;
    double logprob = 0;
  };
  std::vector<Hyp> live(1);  // the beam starts as one hypothesis (all rows hold the same)
  std::vector<Hyp> finished;
  torch::Tensor last = logits.select(1, -1).clone();  // [beam, V]
  const int64_t max_len = std::min<int64_t>(m.net->config.max_target_positions / 2,
                                            m.net->config.max_target_positions - int64_t(prompt.size()));
  for (int64_t step = 0; step < max_len && !live.empty(); ++step) {
    struct Candidate {
      double logprob;
      size_t from;
      int32_t token;
    };
    std::vector<Candidate> candidates;
    for (size_t h = 0; h < live.size(); ++h) {
      auto row = last[int64_t(h)].clone();
      apply_filters(m, row, live[h].tokens, p);
      const auto logprobs = torch::log_softmax(row, 0);
      const auto top = logprobs.topk(beam + 1);
      const auto values = std::get<0>(top), indices = std::get<1>(top);
      for (int k = 0; k < beam + 1; ++k) {
        const double lp = values[k].item<double>();
        if (!std::isfinite(lp)) continue;
        candidates.push_back({live[h].logprob + lp, h, int32_t(indices[k].item<int64_t>())});
      }
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [](const Candidate& a, const Candidate& b) { return a.logprob > b.logprob; });
    std::vector<Hyp> next;
    std::vector<int64_t> rows;
    for (const auto& c : candidates) {
      Hyp h{live[c.from].tokens, c.logprob};
      if (c.token == m.special.eot) {
        if (int(finished.size()) < beam) finished.push_back(std::move(h));
        continue;
      }
      h.tokens.push_back(c.token);
      next.push_back(std::move(h));
      rows.push_back(int64_t(c.from));
      if (int(next.size()) == beam) break;
    }
    if (int(finished.size()) >= beam || next.empty()) {
      live.clear();
      break;
    }
    live = std::move(next);
    // Rows of the cache follow their hypotheses; the beam keeps `beam` rows (repeat the last).
    while (int(rows.size()) < beam) rows.push_back(rows.back());
    cache.select(torch::tensor(rows));
    std::vector<int64_t> step_tokens;
    for (size_t h = 0; h < size_t(beam); ++h) step_tokens.push_back(live[std::min(h, live.size() - 1)].tokens.back());
    last = decoder->forward(torch::tensor(step_tokens).view({beam, 1}), cache).select(1, 0);
  }
  for (auto& h : live) finished.push_back(std::move(h));  // unfinished at the length limit
  const auto best = std::max_element(finished.begin(), finished.end(), [](const Hyp& a, const Hyp& b) {
    return a.logprob / double(a.tokens.size() + 1) < b.logprob / double(b.tokens.size() + 1);
  });
  r.tokens = best->tokens;
  r.sum_logprob = best->logprob;
  r.avg_logprob = r.sum_logprob / double(r.tokens.size() + 1);
  return r;
}

}  // namespace

std::vector<int32_t> sot_sequence(const Model::Impl& m, const std::string& language, bool timestamps) {
  std::vector<int32_t> out{m.special.sot};
  if (m.multilingual) {
    const std::string code = language.empty() ? "en" : language;
    auto it = std::find_if(m.special.languages.begin(), m.special.languages.end(),
                           [&](const auto& l) { return l.first == code; });
    if (it == m.special.languages.end())
      throw InputError(
          fmt::format("--language {}: the model {} has no such language token <|{}|>", code, m.dir.string(), code));
    out.push_back(it->second);
    out.push_back(m.special.transcribe);
  }
  if (!timestamps) out.push_back(m.special.no_timestamps);
  return out;
}

std::string text_of(const Model::Impl& m, const std::vector<int32_t>& tokens) {
  std::vector<int32_t> text;
  for (int32_t t : tokens)
    if (t < m.special.eot) text.push_back(t);
  return m.tokenizer.decode(text);
}

double compression_ratio(const std::string& text) {
  if (text.empty()) return 0;
  uLongf size = compressBound(uLong(text.size()));
  std::string out(size, '\0');
  compress2(reinterpret_cast<Bytef*>(out.data()), &size, reinterpret_cast<const Bytef*>(text.data()),
            uLong(text.size()), Z_DEFAULT_COMPRESSION);
  return double(text.size()) / double(size);
}

WindowResult decode_window(Model::Impl& m, const torch::Tensor& audio, const std::vector<int32_t>& prompt,
                           float temperature, const TranscribeParams& params, torch::Generator& generator) {
  torch::NoGradGuard no_grad;
  WindowResult r = temperature == 0 && params.beam_size > 1 ? beam_search(m, audio, prompt, params)
                                                            : greedy(m, audio, prompt, temperature, params, generator);
  r.temperature = temperature;
  r.compression_ratio = compression_ratio(text_of(m, r.tokens));
  return r;
}

WindowResult decode_with_fallback(Model::Impl& m, const torch::Tensor& audio, const std::vector<int32_t>& prompt,
                                  const TranscribeParams& p, torch::Generator& generator) {
  WindowResult r;
  const std::vector<float> ladder = p.temperatures.empty() ? std::vector<float>{0.0f} : p.temperatures;
  for (float t : ladder) {
    r = decode_window(m, audio, prompt, t, p, generator);
    bool fallback = r.compression_ratio > p.compression_ratio_threshold || r.avg_logprob < p.logprob_threshold;
    if (r.no_speech_prob > p.no_speech_threshold && r.avg_logprob < p.logprob_threshold) fallback = false;  // silence
    if (!fallback) break;
  }
  return r;
}

Model Model::load(const fs::path& dir) {
  auto impl = std::make_shared<Impl>();
  impl->dir = dir;
  impl->net = load_whisper(dir, &impl->dtypes);
  impl->tokenizer = hf::Tokenizer::load(dir);
  const auto& c = impl->net->config;
  impl->special = find_special(impl->tokenizer, c);
  const auto& s = impl->special;
  nlohmann::json generation;
  if (fs::exists(dir / "generation_config.json")) {
    try {
      generation = nlohmann::json::parse(read_file(dir / "generation_config.json"));
    } catch (const nlohmann::json::exception& e) {
      throw InputError(fmt::format("{}: not valid JSON: {}", (dir / "generation_config.json").string(), e.what()));
    }
  }
  // ref: whisper/__init__ (is_multilingual = n_vocab >= 51865); Hugging Face's generation config
  // says so directly.
  impl->multilingual = generation.is_object() && generation.contains("is_multilingual")
                           ? generation["is_multilingual"].get<bool>()
                           : c.vocab_size >= 51865;
  auto suppress = int_list(generation, "suppress_tokens");
  if (suppress.empty()) suppress = int_list(c.json, "suppress_tokens");
  for (int32_t t : {s.transcribe, s.translate, s.sot, s.sot_prev, s.sot_lm, s.no_speech})
    if (t >= 0) suppress.push_back(t);
  for (int32_t t : suppress)
    if (t >= 0 && t < c.vocab_size) impl->suppress.push_back(t);
  for (int32_t t : impl->tokenizer.encode(" ")) impl->begin_suppress.push_back(t);
  impl->begin_suppress.push_back(s.eot);
  Model model;
  model.impl = std::move(impl);
  return model;
}

const fs::path& Model::dir() const { return impl->dir; }
bool Model::multilingual() const { return impl->multilingual; }
double Model::window_s() const { return impl->net->config.n_frames() * 160 / 16000.0; }  // hop 160 at 16 kHz

std::string Model::describe() const {
  const auto& c = impl->net->config;
  return fmt::format("whisper d_model {}, {}+{} layers, {} mels, {} tokens ({})", c.d_model, c.encoder_layers,
                     c.decoder_layers, c.n_mels, c.vocab_size, impl->multilingual ? "multilingual" : "English-only");
}

}  // namespace dself::whisper
