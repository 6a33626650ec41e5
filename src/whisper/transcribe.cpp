#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "media/media.h"
#include "whisper/detail/decode.h"
#include "whisper/detail/frontend.h"

namespace dself::whisper {

namespace {

constexpr int kInputStride = 2;          // mel frames per audio position (the stride-2 convolution)

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\n\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\n\r") - b + 1);
}

// Decodes windows of a stream as its samples arrive, keeping only the samples from the current
// seek on (memory flat in the audio's length). ref: whisper/transcribe.py transcribe(), the seek
// loop (no prompt from the previous window; each window's log-mel computed on its own samples,
// as Hugging Face's feature extractor does).
class Transcriber {
 public:
  Transcriber(const Model& model, const TranscribeParams& params)
      : m_(*model.impl), p_(params), window_frames_(m_.net->config.n_frames()) {
    generator_ = at::detail::createCPUGenerator(params.seed);
    torch::set_num_threads(std::max(1, params.n_threads));
  }

  void push(std::span<const float> samples) {
    buffer_.insert(buffer_.end(), samples.begin(), samples.end());
    total_samples_ += int64_t(samples.size());
    // Full windows only while the stream goes on.
    while (total_samples_ - seek_ * kHop >= int64_t(window_frames_) * kHop) step(window_frames_);
  }

  Transcript finish() {
    const int64_t content_frames = total_samples_ / kHop;
    while (seek_ < content_frames) step(int(std::min<int64_t>(window_frames_, content_frames - seek_)));
    out_.duration_s = double(total_samples_) / kSampleRate;
    for (const auto& s : out_.segments) {
      if (!out_.text.empty() && !s.text.empty()) out_.text += ' ';
      out_.text += s.text;
    }
    return std::move(out_);
  }

 private:
  void step(int segment_size) {
    stop_if_requested(p_.should_stop, "whisper: transcribe");
    torch::NoGradGuard no_grad;
    const int64_t first = seek_ * kHop - buffer_start_;
    const auto samples = std::span<const float>(buffer_).subspan(size_t(first), size_t(segment_size) * kHop);
    const auto mel = log_mel(samples, m_.net->config.n_mels, window_frames_).unsqueeze(0);
    const auto audio = m_.net->encoder->forward(mel);
    if (out_.language.empty()) out_.language = choose_language(audio);
    const auto prompt = sot_sequence(m_, out_.language, p_.timestamps);
    const auto r = decode_with_fallback(m_, audio, prompt, p_, generator_);
    ++out_.n_windows;
    const int64_t previous_seek = seek_;
    if (r.no_speech_prob > p_.no_speech_threshold && !(r.avg_logprob > p_.logprob_threshold)) {
      seek_ += segment_size;  // silence
    } else {
      seek_ += add_segments(r, segment_size);
    }
    if (seek_ <= previous_seek) seek_ = previous_seek + segment_size;  // never stall
    // Drop what lies before the new seek.
    const int64_t drop = std::min<int64_t>(seek_ * kHop - buffer_start_, int64_t(buffer_.size()));
    buffer_.erase(buffer_.begin(), buffer_.begin() + drop);
    buffer_start_ += drop;
    if (p_.progress) {
      ProgressEvent e;
      e.task = "whisper: transcribe";
      e.unit = "s";
      e.done = seek_ * kHop / kSampleRate;  // seconds of audio done
      p_.progress(e);
    }
  }

  std::string choose_language(const torch::Tensor& audio) {
    if (!m_.multilingual) return "en";
    if (!p_.language.empty()) return p_.language;
    // ref: whisper/decoding.py detect_language: the most likely language token after <|startoftranscript|>.
    auto cache = m_.net->decoder->start(audio);
    const auto logits = m_.net->decoder->forward(torch::tensor({int64_t(m_.special.sot)}).view({1, 1}), cache)[0][0];
    std::string best = "en";
    float best_logit = -INFINITY;
    for (const auto& [code, id] : m_.special.languages)
      if (logits[id].item<float>() > best_logit) best_logit = logits[id].item<float>(), best = code;
    return best;
  }

  // Appends the segments of one window; returns how many frames to seek forward.
  // ref: whisper/transcribe.py, from "timestamp_tokens" to "seek += segment_size".
  int64_t add_segments(const WindowResult& r, int segment_size) {
    const double time_offset = double(seek_) * kHop / kSampleRate;
    const auto& tokens = r.tokens;
    const int32_t ts = m_.special.timestamp_begin;
    auto is_ts = [&](size_t i) { return tokens[i] >= ts; };
    auto add = [&](double start, double end, std::vector<int32_t> seg_tokens) {
      Segment s;
      s.start_s = start;
      s.end_s = end;
      s.text = trim(text_of(m_, seg_tokens));
      s.tokens = std::move(seg_tokens);
      s.avg_logprob = r.avg_logprob;
      s.no_speech_prob = r.no_speech_prob;
      s.temperature = r.temperature;
      s.compression_ratio = r.compression_ratio;
      if (s.end_s > s.start_s && !s.text.empty()) out_.segments.push_back(std::move(s));
    };
    const bool single_timestamp_ending =
        tokens.size() >= 2 ? !is_ts(tokens.size() - 2) && is_ts(tokens.size() - 1) : tokens.size() == 1 && is_ts(0);
    std::vector<size_t> slices;
    for (size_t i = 0; i + 1 < tokens.size(); ++i)
      if (is_ts(i) && is_ts(i + 1)) slices.push_back(i + 1);
    if (!slices.empty()) {
      if (single_timestamp_ending) slices.push_back(tokens.size());
      size_t last_slice = 0;
      for (size_t current : slices) {
        std::vector<int32_t> seg(tokens.begin() + long(last_slice), tokens.begin() + long(current));
        add(time_offset + (seg.front() - ts) * kTimePrecision, time_offset + (seg.back() - ts) * kTimePrecision, seg);
        last_slice = current;
      }
      if (single_timestamp_ending) return segment_size;
      return int64_t(tokens[last_slice - 1] - ts) * kInputStride;
    }
    double duration = double(segment_size) * kHop / kSampleRate;
    int32_t last_timestamp = -1;
    for (int32_t t : tokens)
      if (t >= ts) last_timestamp = t;
    if (last_timestamp > ts) duration = (last_timestamp - ts) * kTimePrecision;
    add(time_offset, time_offset + duration, tokens);
    return segment_size;
  }

  Model::Impl& m_;
  TranscribeParams p_;
  int window_frames_;
  torch::Generator generator_;
  std::vector<float> buffer_;  // samples from buffer_start_ on
  int64_t buffer_start_ = 0;
  int64_t total_samples_ = 0;
  int64_t seek_ = 0;  // mel frames
  Transcript out_;
};

std::vector<float> first_window(const Model& model, const std::filesystem::path& audio) {
  const size_t n = size_t(model.impl->net->config.n_frames()) * kHop;
  std::vector<float> samples;
  media::decode_audio(audio, kSampleRate, [&](std::span<const float> chunk) {
    if (samples.size() < n)
      samples.insert(samples.end(), chunk.begin(), chunk.begin() + long(std::min(chunk.size(), n - samples.size())));
  });
  return samples;
}

}  // namespace

Transcript transcribe(const Model& model, const std::filesystem::path& audio, const TranscribeParams& params) {
  Transcriber t(model, params);
  media::decode_audio(audio, kSampleRate, [&](std::span<const float> chunk) { t.push(chunk); });
  return t.finish();
}

Transcript transcribe_samples(const Model& model, std::span<const float> samples, const TranscribeParams& params) {
  Transcriber t(model, params);
  t.push(samples);
  return t.finish();
}

Score score_samples(const Model& model, std::span<const float> samples, const std::string& text,
                    const TranscribeParams& params) {
  auto& m = *model.impl;
  torch::set_num_threads(std::max(1, params.n_threads));
  torch::NoGradGuard no_grad;
  const auto mel = log_mel(samples, m.net->config.n_mels, m.net->config.n_frames()).unsqueeze(0);
  const auto audio = m.net->encoder->forward(mel);
  Score s;
  s.prompt = sot_sequence(m, params.language, /*timestamps=*/false);
  s.prompt_text = m.tokenizer.decode(s.prompt);
  // Whisper's transcripts start with a space ("<|notimestamps|> Hello"): the text is scored so.
  s.tokens = m.tokenizer.encode(" " + trim(text));
  s.tokens.push_back(m.special.eot);
  std::vector<int64_t> input(s.prompt.begin(), s.prompt.end());
  input.insert(input.end(), s.tokens.begin(), s.tokens.end() - 1);
  if (int64_t(input.size()) > m.net->config.max_target_positions)
    throw InputError(fmt::format("--score: the text is {} tokens, more than the model's {} positions allow",
                                 s.tokens.size(), m.net->config.max_target_positions - int64_t(s.prompt.size())));
  auto cache = m.net->decoder->start(audio);
  const auto logprobs = torch::log_softmax(m.net->decoder->forward(torch::tensor(input).unsqueeze(0), cache)[0], -1);
  for (size_t i = 0; i < s.tokens.size(); ++i) {
    const double lp = logprobs[int64_t(s.prompt.size() + i - 1)][s.tokens[i]].item<double>();
    s.token_logprobs.push_back(lp);
    s.total_logprob += lp;
  }
  return s;
}

Score score(const Model& model, const std::filesystem::path& audio, const std::string& text,
            const TranscribeParams& params) {
  return score_samples(model, first_window(model, audio), text, params);
}

}  // namespace dself::whisper

namespace dself::whisper {

transcript::Transcript to_transcript(const Model& model, const Transcript& t) {
  transcript::Transcript out;
  out.engine = "whisper";
  out.model = model.dir().string();
  out.language = t.language;
  for (const auto& s : t.segments) {
    out.segments.push_back({s.text, s.start_s, s.end_s});
    std::vector<std::string> words;
    size_t chars = 0;
    for (size_t i = 0; i < s.text.size();) {
      const size_t b = s.text.find_first_not_of(' ', i);
      if (b == std::string::npos) break;
      const size_t e = std::min(s.text.find(' ', b), s.text.size());
      words.push_back(s.text.substr(b, e - b));
      chars += e - b;
      i = e;
    }
    double at = s.start_s;
    const double per_char = chars ? (s.end_s - s.start_s) / double(chars) : 0;
    for (const auto& w : words) {
      const double end = at + per_char * double(w.size());
      out.words.push_back({w, at, end, std::exp(std::min(0.0, s.avg_logprob))});
      at = end;
    }
  }
  return out;
}

nlohmann::json transcript_json(const Model& model, const Transcript& t) {
  nlohmann::json segments = nlohmann::json::array();
  for (const auto& s : t.segments)
    segments.push_back({{"start_s", s.start_s},
                        {"end_s", s.end_s},
                        {"text", s.text},
                        {"tokens", s.tokens},
                        {"avg_logprob", s.avg_logprob},
                        {"no_speech_prob", s.no_speech_prob},
                        {"temperature", s.temperature},
                        {"compression_ratio", s.compression_ratio}});
  return {{"engine", "whisper"},        {"model", model.dir().string()}, {"language", t.language},
          {"duration_s", t.duration_s}, {"windows", t.n_windows},        {"text", t.text},
          {"segments", segments}};
}

nlohmann::json score_json(const Model& model, const std::string& text, const Score& s) {
  return {{"engine", "whisper"},
          {"model", model.dir().string()},
          {"text", text},
          {"prompt", s.prompt},
          {"prompt_text", s.prompt_text},
          {"tokens", s.tokens},
          {"token_logprobs", s.token_logprobs},
          {"total_logprob", s.total_logprob}};
}

}  // namespace dself::whisper
