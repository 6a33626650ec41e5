// Cutting a source's speech into utterances at pauses, and the filters that drop unfit ones.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <numbers>
#include <string>

#include "core/error.h"
#include "core/hash.h"
#include "speech/detail/audio.h"
#include "speech/speech.h"

namespace dself::speech {
namespace {

constexpr size_t kHop = kSampleRate / 100;  // 10 ms analysis frames
constexpr double kFrameS = 0.01;
constexpr double kTimeToleranceS = 0.5;  // captions may run a little past the audio's end

// ---- Voice activity: frame energies against the whole source's levels ------------------------

struct Activity {
  std::vector<float> energy_db;  // per 10 ms frame
  double speech_db = 0;          // frames above this are speech
};

double percentile(std::vector<float> values, double q) {
  if (values.empty()) return -100;
  size_t k = std::min(values.size() - 1, static_cast<size_t>(q * static_cast<double>(values.size())));
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(k), values.end());
  return values[k];
}

// The threshold is set by the source as a whole (as in transcript::find_speech_chunks): its loud
// end is speech and its quiet end the room, so that one quiet utterance is judged against the
// person's usual level, not against itself.
Activity measure_activity(std::span<const float> audio) {
  Activity activity;
  const size_t frame_count = audio.size() / kHop;
  activity.energy_db.resize(frame_count);
  for (size_t f = 0; f < frame_count; ++f) {
    double sum = 0;
    for (size_t i = f * kHop; i < (f + 1) * kHop; ++i) sum += double(audio[i]) * audio[i];
    activity.energy_db[f] = static_cast<float>(10 * std::log10(sum / double(kHop) + 1e-10));
  }
  double floor_db = percentile(activity.energy_db, 0.10);
  double loud_db = percentile(activity.energy_db, 0.95);
  // 12 dB over the floor, within 35 dB of the loud end, and never below -60 dBFS (0.1% RMS).
  activity.speech_db = std::max({floor_db + 12.0, loud_db - 35.0, -60.0});
  return activity;
}

bool is_speech_frame(const Activity& activity, size_t frame) {
  return frame < activity.energy_db.size() && activity.energy_db[frame] > activity.speech_db;
}

size_t frame_at(double time_s) { return static_cast<size_t>(std::max(0.0, time_s) / kFrameS); }

// ---- Sustained tones: what music has and speech has not ---------------------------------------

constexpr size_t kFftSize = 512;  // 32 ms at 16 kHz, 31.25 Hz per bin
// 312 Hz: above most voices' pitch, whose lowest harmonics can hold a bin through a second of
// continuous voicing (measured on a LibriVox reader, docs/ALIGNMENT.md).
constexpr size_t kLowBin = 10;
constexpr size_t kHighBin = 128;           // 4 kHz
constexpr double kPeakProminenceDb = 10;   // over the background 3 bins either side
constexpr size_t kToneWindowFrames = 100;  // 1 s windows...
constexpr size_t kToneHopFrames = 50;      // ...half overlapping
// A background tone more than this below the clip's loud spectral peaks (its speech) is too
// faint to matter (a distant hum, a codec's residue).
constexpr double kToneBelowSpeechDb = 35;

// ref: the iterative radix-2 Cooley-Tukey FFT (bit reversal, then butterflies).
void fft(std::vector<std::complex<double>>& a) {
  const size_t n = a.size();
  for (size_t i = 1, j = 0; i < n; ++i) {
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  for (size_t len = 2; len <= n; len <<= 1) {
    double angle = -2 * std::numbers::pi / static_cast<double>(len);
    std::complex<double> step(std::cos(angle), std::sin(angle));
    for (size_t i = 0; i < n; i += len) {
      std::complex<double> w(1);
      for (size_t k = 0; k < len / 2; ++k) {
        std::complex<double> u = a[i + k], v = a[i + k + len / 2] * w;
        a[i + k] = u + v;
        a[i + k + len / 2] = u - v;
        w *= step;
      }
    }
  }
}

// Share of the clip's 1 s windows whose background holds a tone that goes on into the next or
// previous window. The background of a window is, per frequency, the quietest its 32 ms frames
// get (minimum statistics): speech comes and goes in every band within a second (voiceless
// consonants, closures, pitch moving the harmonics), so it leaves a smooth background; a held
// note, chord or hum stays, and shows as a narrow peak.
double sustained_tone_share(std::span<const float> clip) {
  if (clip.size() < kFftSize) return 0;
  const size_t frame_count = (clip.size() - kFftSize) / kHop + 1;
  if (frame_count < kToneWindowFrames) return 0;
  std::vector<double> window(kFftSize);
  for (size_t i = 0; i < kFftSize; ++i) {
    window[i] = 0.5 - 0.5 * std::cos(2 * std::numbers::pi * static_cast<double>(i) / (kFftSize - 1));
  }
  const size_t bins = kHighBin + 4;
  std::vector<std::vector<float>> power_db(frame_count, std::vector<float>(bins));
  std::vector<std::complex<double>> spectrum(kFftSize);
  for (size_t f = 0; f < frame_count; ++f) {
    for (size_t i = 0; i < kFftSize; ++i) spectrum[i] = clip[f * kHop + i] * window[i];
    fft(spectrum);
    for (size_t k = 0; k < bins; ++k) {
      power_db[f][k] = static_cast<float>(10 * std::log10(std::norm(spectrum[k]) + 1e-12));
    }
  }
  // The level of the clip's speech: its loud frames' strongest peaks.
  std::vector<float> frame_peaks(frame_count);
  for (size_t f = 0; f < frame_count; ++f) {
    frame_peaks[f] = *std::max_element(power_db[f].begin() + kLowBin, power_db[f].begin() + kHighBin + 1);
  }
  const double floor_db = percentile(frame_peaks, 0.95) - kToneBelowSpeechDb;
  // Per window, the frequencies where the background has a tone.
  std::vector<std::vector<bool>> tones;
  std::vector<float> background(bins);
  for (size_t first = 0; first + kToneWindowFrames <= frame_count; first += kToneHopFrames) {
    std::fill(background.begin(), background.end(), 1e9f);
    for (size_t f = first; f < first + kToneWindowFrames; ++f) {
      for (size_t k = 0; k < bins; ++k) background[k] = std::min(background[k], power_db[f][k]);
    }
    std::vector<bool>& tone = tones.emplace_back(bins, false);
    for (size_t k = kLowBin; k <= kHighBin; ++k) {
      bool local_max = background[k] >= background[k - 1] && background[k] >= background[k + 1];
      double around = 0.5 * (background[k - 3] + background[k + 3]);
      tone[k] = local_max && background[k] > floor_db && background[k] - around >= kPeakProminenceDb;
    }
  }
  // A window counts when one of its tones goes on into a neighbouring window (within a bin):
  // held for 1.5 s, which a chance dip pattern in speech's background is not.
  size_t tonal_count = 0;
  for (size_t w = 0; w < tones.size(); ++w) {
    bool held = false;
    for (size_t k = kLowBin; k <= kHighBin && !held; ++k) {
      if (!tones[w][k]) continue;
      for (size_t n : {w - 1, w + 1}) {
        if (n >= tones.size()) continue;  // w - 1 wraps around for w == 0
        held = held || tones[n][k - 1] || tones[n][k] || tones[n][k + 1];
      }
    }
    tonal_count += held ? 1 : 0;
  }
  const size_t window_count = tones.size();
  return static_cast<double>(tonal_count) / static_cast<double>(window_count);
}

// The pause between word i and word i + 1: [start_s, end_s] of the silence that separates them.
struct Pause {
  double start_s = 0;
  double end_s = 0;
  double length_s() const { return end_s - start_s; }
  double middle_s() const { return 0.5 * (start_s + end_s); }
};

// Word times from captions run each word into the next, so the pause is also looked for in the
// audio: the longest run of non-speech frames between the two words' middles.
Pause measure_pause(const transcript::Word& before, const transcript::Word& after, const Activity& activity) {
  Pause pause{before.end_s, after.start_s};
  if (pause.end_s < pause.start_s) pause.start_s = pause.end_s = 0.5 * (before.end_s + after.start_s);
  size_t first = frame_at(0.5 * (before.start_s + before.end_s));
  size_t last = std::min(activity.energy_db.size(), frame_at(0.5 * (after.start_s + after.end_s)) + 1);
  size_t best_begin = 0, best_length = 0;
  for (size_t f = first; f < last;) {
    if (is_speech_frame(activity, f)) {
      ++f;
      continue;
    }
    size_t end = f;
    while (end < last && !is_speech_frame(activity, end)) ++end;
    if (end - f > best_length) {
      best_begin = f;
      best_length = end - f;
    }
    f = end;
  }
  if (static_cast<double>(best_length) * kFrameS > pause.length_s()) {
    pause.start_s = static_cast<double>(best_begin) * kFrameS;
    pause.end_s = static_cast<double>(best_begin + best_length) * kFrameS;
  }
  return pause;
}

struct Candidate {
  size_t first = 0;  // words [first, last)
  size_t last = 0;
  std::string reason;  // why it is dropped; empty when kept
  double words_per_s = 0;
};

class Grouper {
 public:
  Grouper(const std::vector<transcript::Word>& words, const std::vector<Pause>& pauses, const UtteranceOptions& options)
      : words_(words), pauses_(pauses), options_(options) {}

  std::vector<Candidate> group() {
    // Pauses long enough to end a sentence always cut.
    size_t first = 0;
    for (size_t i = 0; i + 1 < words_.size(); ++i) {
      if (pauses_[i].length_s() >= options_.split_pause_s) {
        split(first, i + 1);
        first = i + 1;
      }
    }
    split(first, words_.size());
    return std::move(candidates_);
  }

 private:
  double span_s(size_t first, size_t last) const { return words_[last - 1].end_s - words_[first].start_s; }

  // Cuts words [first, last) at its longest pause until every piece is short enough; prefers a
  // pause that leaves both sides at least min_duration_s long.
  void split(size_t first, size_t last) {
    if (span_s(first, last) <= options_.max_duration_s) {
      candidates_.push_back(Candidate{first, last, "", 0});
      return;
    }
    size_t best = 0;
    double best_score = -1;
    for (size_t i = first; i + 1 < last; ++i) {
      double length = pauses_[i].length_s();
      if (length < options_.min_pause_s) continue;
      bool balanced = span_s(first, i + 1) >= options_.min_duration_s && span_s(i + 1, last) >= options_.min_duration_s;
      double score = length + (balanced ? 1000.0 : 0.0);
      if (score > best_score) {
        best_score = score;
        best = i;
      }
    }
    if (best_score < 0) {
      candidates_.push_back(Candidate{first, last, "too_long", 0});
      return;
    }
    split(first, best + 1);
    split(best + 1, last);
  }

  const std::vector<transcript::Word>& words_;
  const std::vector<Pause>& pauses_;
  const UtteranceOptions& options_;
  std::vector<Candidate> candidates_;
};

void validate(const std::vector<transcript::Word>& words, double audio_s) {
  if (words.empty()) {
    throw InputError("the transcript has no words: there is no speech to cut into utterances");
  }
  for (size_t i = 0; i < words.size(); ++i) {
    const transcript::Word& w = words[i];
    if (!std::isfinite(w.start_s) || !std::isfinite(w.end_s) || w.start_s < 0 || w.end_s < w.start_s) {
      throw InputError(
          fmt::format("word {} (\"{}\") has bad times {:.3f}..{:.3f} s", i + 1, w.text, w.start_s, w.end_s));
    }
    if (w.end_s > audio_s + kTimeToleranceS) {
      throw InputError(
          fmt::format("word {} (\"{}\") ends at {:.2f} s but the audio is only {:.2f} s long: the "
                      "transcript does not belong to this audio",
                      i + 1, w.text, w.end_s, audio_s));
    }
  }
}

// A number in [0, 1) from the utterance's words as said: same sentence, same number.
double split_key(const std::vector<transcript::Word>& words) {
  std::string text;
  for (const auto& w : words) {
    for (const std::string& s : transcript::scoring_words(w.text)) text += s + " ";
  }
  std::string hex = hash_bytes(text).substr(0, 8);
  return static_cast<double>(std::stoul(hex, nullptr, 16)) / 4294967296.0;
}

}  // namespace

std::string Utterance::text() const {
  std::string text;
  for (const auto& w : words) {
    if (!text.empty()) text += ' ';
    text += w.text;
  }
  return text;
}

UtteranceSet cut_utterances(const transcript::Transcript& transcript, std::span<const float> audio,
                            const UtteranceOptions& options) {
  const double audio_s = static_cast<double>(audio.size()) / kSampleRate;
  std::vector<transcript::Word> words = transcript.words;
  validate(words, audio_s);
  std::stable_sort(words.begin(), words.end(), [](const auto& a, const auto& b) { return a.start_s < b.start_s; });
  for (auto& w : words) {
    w.start_s = std::min(w.start_s, audio_s);
    w.end_s = std::min(w.end_s, audio_s);
  }
  const Activity activity = measure_activity(audio);

  std::vector<Pause> pauses(words.size());
  for (size_t i = 0; i + 1 < words.size(); ++i) pauses[i] = measure_pause(words[i], words[i + 1], activity);
  std::vector<Candidate> candidates = Grouper(words, pauses, options).group();

  // Clip edges: a little of the pause on each side, never past its middle (the neighbour's half).
  auto clip_start = [&](const Candidate& c) {
    double start = std::max(0.0, words[c.first].start_s - options.padding_s);
    if (c.first > 0) start = std::max(pauses[c.first - 1].end_s - options.padding_s, pauses[c.first - 1].middle_s());
    return std::min(start, words[c.first].start_s);
  };
  auto clip_end = [&](const Candidate& c) {
    double end = std::min(audio_s, words[c.last - 1].end_s + options.padding_s);
    if (c.last < words.size()) {
      end = std::min(pauses[c.last - 1].start_s + options.padding_s, pauses[c.last - 1].middle_s());
    }
    return std::max(end, words[c.last - 1].end_s);
  };

  for (Candidate& c : candidates) {
    if (!c.reason.empty()) continue;
    const double span = words[c.last - 1].end_s - words[c.first].start_s;
    if (span < options.min_duration_s) {
      c.reason = "too_short";
      continue;
    }
    double start = clip_start(c), end = clip_end(c);
    std::span<const float> clip = detail::samples_between(audio, start, end);
    size_t clipped = 0;
    for (float x : clip) clipped += std::fabs(x) >= options.clipping_level ? 1 : 0;
    size_t first_frame = frame_at(start), last_frame = std::max(first_frame + 1, frame_at(end));
    size_t speech_frames = 0;
    for (size_t f = first_frame; f < last_frame; ++f) speech_frames += is_speech_frame(activity, f) ? 1 : 0;
    c.words_per_s = static_cast<double>(c.last - c.first) / std::max(span, 0.1);
    if (static_cast<double>(clipped) > options.max_clipped_share * static_cast<double>(clip.size())) {
      c.reason = "clipping";
    } else if (sustained_tone_share(clip) > options.max_tone_share) {
      // Before the speech share: music under a whole source also lifts its quiet end, which can
      // make its speech look scarce.
      c.reason = "music";
    } else if (static_cast<double>(speech_frames) <
                   options.min_speech_share * static_cast<double>(last_frame - first_frame) ||
               c.words_per_s < options.min_words_per_s) {
      c.reason = "too_little_speech";
    }
  }

  // Words far faster than this person usually speaks were not said by one voice at the usual
  // pace: overlapping speakers, or captions timed against the wrong stretch of audio. It takes a
  // few utterances to know the usual pace.
  std::vector<float> rates;
  for (const Candidate& c : candidates) {
    if (c.reason.empty()) rates.push_back(static_cast<float>(c.words_per_s));
  }
  if (rates.size() >= 5) {
    double median = percentile(rates, 0.5);
    for (Candidate& c : candidates) {
      if (c.reason.empty() && c.words_per_s > options.max_rate_ratio * median) c.reason = "speech_rate_outlier";
    }
  }

  UtteranceSet set;
  std::vector<double> keys;
  for (const Candidate& c : candidates) {
    if (!c.reason.empty()) {
      set.dropped[c.reason] += 1;
      set.dropped_word_count += static_cast<int>(c.last - c.first);
      continue;
    }
    Utterance u;
    u.source_start_s = clip_start(c);
    u.source_end_s = clip_end(c);
    for (size_t i = c.first; i < c.last; ++i) {
      transcript::Word w = words[i];
      w.start_s -= u.source_start_s;
      w.end_s -= u.source_start_s;
      u.words.push_back(std::move(w));
    }
    keys.push_back(split_key(u.words));
    u.split = keys.back() < options.held_out_share ? Split::held_out : Split::train;
    set.utterances.push_back(std::move(u));
  }
  // A source with a few utterances but none held out gives up its lowest-keyed one, so that
  // every person has something to evaluate on; large sources are untouched by this.
  bool any_held_out = std::any_of(set.utterances.begin(), set.utterances.end(),
                                  [](const Utterance& u) { return u.split == Split::held_out; });
  if (!any_held_out && set.utterances.size() >= 3 && options.held_out_share > 0) {
    size_t lowest = static_cast<size_t>(std::min_element(keys.begin(), keys.end()) - keys.begin());
    set.utterances[lowest].split = Split::held_out;
  }
  return set;
}

}  // namespace dself::speech
