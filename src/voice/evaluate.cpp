// How good a voice is (DESIGN.md §4): against the person's real held-out recordings (MCD, F0,
// voicing, phone durations), by ear of the recogniser (WER), by speed; the vocoder's own floor.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "media/media.h"
#include "transcript/transcript.h"
#include "vocoder/vocoder.h"
#include "voice/detail/espeak.h"
#include "voice/voice.h"

namespace dself::voice {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

nlohmann::ordered_json pitch_json(const PitchProfile& p) {
  return {{"median_hz", p.median_hz}, {"p10_hz", p.p10_hz}, {"p90_hz", p.p90_hz}, {"voiced_frames", p.voiced_frame_count}};
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// One recording of the person: the clip, its text and its aligned phones.
struct Recording {
  std::string source;  // the speech/<source> directory's name
  std::string id;
  fs::path wav;
  std::string text;
  std::vector<speech::TimedPhone> phones;
};

// The avatar's utterances in `split`, in source order.
std::vector<Recording> recordings(const fs::path& avatar, speech::Split split) {
  std::vector<fs::path> sources;
  std::error_code ec;
  if (fs::is_directory(avatar / "speech", ec)) {
    for (const auto& entry : fs::directory_iterator(avatar / "speech")) {
      if (fs::exists(entry.path() / "utterances.json")) sources.push_back(entry.path());
    }
  }
  std::sort(sources.begin(), sources.end());
  std::vector<Recording> found;
  for (const auto& dir : sources) {
    for (const auto& u : speech::read_dataset(dir).utterances) {
      if (u.split == split) found.push_back({dir.filename().string(), u.id, dir / u.wav, u.text, u.alignment.phones});
    }
  }
  return found;
}

// Phones with a duration, pauses left out.
struct Phone {
  std::string label;
  double duration_s = 0;
};

std::vector<Phone> spoken_phones(std::span<const speech::TimedPhone> phones) {
  std::vector<Phone> out;
  for (const auto& p : phones) {
    if (p.phone != "sil" && p.phone != "sp") out.push_back({p.phone, p.end_s - p.start_s});
  }
  return out;
}

// Pairs the phones of two sayings of one text by the edit distance on their labels (a match or a
// substitution pairs two phones; insertions and deletions pair none).
// ref: Wagner & Fischer, "The string-to-string correction problem", JACM 21(1), 1974
std::vector<std::pair<size_t, size_t>> pair_phones(const std::vector<Phone>& a, const std::vector<Phone>& b) {
  const size_t n = a.size(), m = b.size();
  std::vector<int> cost((n + 1) * (m + 1));
  auto at = [&](size_t i, size_t j) -> int& { return cost[i * (m + 1) + j]; };
  for (size_t i = 0; i <= n; ++i) at(i, 0) = int(i);
  for (size_t j = 0; j <= m; ++j) at(0, j) = int(j);
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      at(i, j) = std::min({at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + (a[i - 1].label == b[j - 1].label ? 0 : 1)});
    }
  }
  std::vector<std::pair<size_t, size_t>> pairs;
  size_t i = n, j = m;
  while (i > 0 && j > 0) {
    if (at(i, j) == at(i - 1, j - 1) + (a[i - 1].label == b[j - 1].label ? 0 : 1)) {
      pairs.emplace_back(--i, --j);
    } else if (at(i, j) == at(i - 1, j) + 1) {
      --i;
    } else {
      --j;
    }
  }
  std::reverse(pairs.begin(), pairs.end());
  return pairs;
}

// Figures pooled over utterances: MCD, F0 and voicing weighted by DTW path pairs, WER over words.
struct Tally {
  double mcd_sum = 0;  // Σ mcd · path length
  double f0_squares = 0;
  double vuv_errors = 0;
  long path_pairs = 0;
  long voiced_pairs = 0;
  double word_errors = 0;
  size_t reference_words = 0;
  double duration_error_s = 0;  // Σ |Δ duration| over paired phones
  long phone_pairs = 0;
  long phones_matched = 0;  // pairs with the same label
  long reference_phones = 0;
  double audio_s = 0;
  double synthesis_s = 0;

  void add(const vocoder::Distance& d) {
    mcd_sum += d.mcd_db * d.path_length;
    f0_squares += d.f0_rmse_hz * d.f0_rmse_hz * d.voiced_pair_count;
    vuv_errors += d.vuv_error * d.path_length;
    path_pairs += d.path_length;
    voiced_pairs += d.voiced_pair_count;
  }
  void add_words(double wer, size_t words) {
    word_errors += wer * double(words);
    reference_words += words;
  }
  nlohmann::ordered_json json(bool durations) const {
    nlohmann::ordered_json j;
    j["mcd_db"] = path_pairs > 0 ? mcd_sum / double(path_pairs) : 0.0;
    j["f0_rmse_hz"] = voiced_pairs > 0 ? std::sqrt(f0_squares / double(voiced_pairs)) : 0.0;
    j["vuv_error"] = path_pairs > 0 ? vuv_errors / double(path_pairs) : 0.0;
    j["path_frames"] = path_pairs;
    if (durations) {
      j["duration_mae_ms"] = phone_pairs > 0 ? 1000 * duration_error_s / double(phone_pairs) : 0.0;
      j["phone_pairs"] = phone_pairs;
      j["phone_match_share"] = reference_phones > 0 ? double(phones_matched) / double(reference_phones) : 0.0;
    }
    j["wer"] = reference_words > 0 ? word_errors / double(reference_words) : 0.0;
    j["audio_s"] = audio_s;
    j["synthesis_s"] = synthesis_s;
    j["real_time_factor"] = audio_s > 0 ? synthesis_s / audio_s : 0.0;
    return j;
  }
};

nlohmann::ordered_json distance_json(const vocoder::Distance& d) {
  return {{"mcd_db", d.mcd_db}, {"f0_rmse_hz", d.f0_rmse_hz}, {"vuv_error", d.vuv_error}, {"path_frames", d.path_length}};
}

// What the recogniser heard in `audio` (with a pause either side, as `say` leaves them), and its
// WER against `text`.
struct Heard {
  std::string recognized;
  double wer = 0;
  size_t reference_words = 0;
};

const std::vector<float>& pause() {
  static const std::vector<float> silence(static_cast<size_t>(0.3 * kSampleRate), 0.0f);
  return silence;
}

Heard hear(transcript::PocketSphinxRecognizer& recognizer, std::span<const float> audio, const std::string& text) {
  std::vector<float> padded = pause();
  padded.insert(padded.end(), audio.begin(), audio.end());
  padded.insert(padded.end(), pause().begin(), pause().end());
  Heard heard;
  for (const auto& w : recognizer.transcribe(padded).words) heard.recognized += (heard.recognized.empty() ? "" : " ") + w.text;
  const auto reference = transcript::scoring_words(text);
  heard.wer = transcript::word_error_rate(reference, transcript::scoring_words(heard.recognized));
  heard.reference_words = reference.size();
  return heard;
}

// A voice saying `text` as `say` does: sentence by sentence, 0.3 s of silence between them; its
// phones timed on the joined samples. Adds the synthesis time and the seconds said (pauses left
// out) to the tally.
Utterance say_text(Voice& voice, const std::string& text, Tally& tally) {
  Utterance joined;
  joined.text = text;
  for (const auto& sentence : split_sentences(text)) {
    if (!joined.samples.empty()) {
      const double start_s = joined.duration_s();
      joined.samples.insert(joined.samples.end(), pause().begin(), pause().end());
      joined.phones.push_back({"sil", start_s, joined.duration_s()});
    }
    const auto start = Clock::now();
    Utterance u = voice.say(sentence);
    tally.synthesis_s += seconds_since(start);
    tally.audio_s += u.duration_s();
    const double offset_s = joined.duration_s();
    for (auto p : u.phones) joined.phones.push_back({p.phone, p.start_s + offset_s, p.end_s + offset_s});
    joined.samples.insert(joined.samples.end(), u.samples.begin(), u.samples.end());
  }
  return joined;
}

}  // namespace

std::unique_ptr<Voice> make_fallback_voice(const PitchProfile& person, const std::string& espeak_voice) {
  EspeakOptions espeak;
  espeak.target_pitch_hz = person.median_hz;
  espeak.voice = espeak_voice.empty() ? closest_espeak_voice(person.median_hz) : espeak_voice;
  return make_espeak_voice(espeak);
}

nlohmann::json evaluate_voices(const fs::path& avatar, const std::vector<JudgedVoice>& voices,
                               const VoiceEvaluationOptions& options) {
  // Held-out recordings only, so that no voice is judged on what it learnt from; an avatar too small
  // to have any (a minute of speech) may judge fallback voices on its train utterances instead:
  // espeak-ng learnt nothing from them, so they are as unseen.
  bool only_fallbacks = true;
  for (const auto& v : voices) only_fallbacks = only_fallbacks && v.voice != nullptr && v.voice->is_fallback();
  speech::Split split = speech::Split::held_out;
  std::vector<Recording> all = recordings(avatar, split);
  if (all.empty() && only_fallbacks) all = recordings(avatar, split = speech::Split::train);
  if (all.empty()) {
    throw InputError(fmt::format("{} has no held-out utterances in speech/*/utterances.json to judge a voice on: run "
                                 "`dself --avatar {} prepare` first, on enough speech for a held-out share (a few "
                                 "minutes)",
                                 avatar.string(), avatar.string()));
  }
  std::vector<Recording> chosen;
  const size_t count = std::min(all.size(), std::max<size_t>(1, options.max_utterances));
  for (size_t i = 0; i < count; ++i) chosen.push_back(all[i * all.size() / count]);

  transcript::PocketSphinxRecognizer recognizer;
  Tally real, copy;
  std::vector<Tally> tallies(voices.size());
  std::vector<std::vector<float>> voice_speech(voices.size());  // for each voice's pitch
  nlohmann::ordered_json utterances = nlohmann::ordered_json::array();
  for (const Recording& r : chosen) {
    const std::vector<float> audio = media::decode_audio(r.wav, kSampleRate);
    const vocoder::Features reference = vocoder::analyze(audio);
    nlohmann::ordered_json entry = {{"source", r.source}, {"id", r.id}, {"text", r.text}};
    const Heard real_heard = hear(recognizer, audio, r.text);
    real.add_words(real_heard.wer, real_heard.reference_words);
    real.audio_s += double(audio.size()) / kSampleRate;
    entry["real"] = {{"recognized", real_heard.recognized}, {"wer", real_heard.wer}};

    if (options.copy_synthesis) {
      const auto start = Clock::now();
      const std::vector<float> resynthesised = vocoder::synthesize(reference);
      copy.synthesis_s += seconds_since(start);
      copy.audio_s += double(resynthesised.size()) / kSampleRate;
      const vocoder::Distance d = vocoder::distance(reference, vocoder::analyze(resynthesised));
      copy.add(d);
      const Heard heard = hear(recognizer, resynthesised, r.text);
      copy.add_words(heard.wer, heard.reference_words);
      entry["copy_synthesis"] = distance_json(d);
      entry["copy_synthesis"]["recognized"] = heard.recognized;
      entry["copy_synthesis"]["wer"] = heard.wer;
    }

    const std::vector<Phone> real_phones = spoken_phones(r.phones);
    for (size_t v = 0; v < voices.size(); ++v) {
      Tally& tally = tallies[v];
      const Utterance said = say_text(*voices[v].voice, r.text, tally);
      voice_speech[v].insert(voice_speech[v].end(), said.samples.begin(), said.samples.end());
      const vocoder::Distance d = vocoder::distance(reference, vocoder::analyze(said.samples));
      tally.add(d);
      const std::vector<Phone> phones = spoken_phones(said.phones);
      double duration_error_s = 0;
      long matched = 0;
      const auto pairs = pair_phones(real_phones, phones);
      for (const auto& [i, j] : pairs) {
        duration_error_s += std::abs(real_phones[i].duration_s - phones[j].duration_s);
        matched += real_phones[i].label == phones[j].label;
      }
      tally.duration_error_s += duration_error_s;
      tally.phone_pairs += long(pairs.size());
      tally.phones_matched += matched;
      tally.reference_phones += long(real_phones.size());
      const Heard heard = hear(recognizer, said.samples, r.text);
      tally.add_words(heard.wer, heard.reference_words);
      nlohmann::ordered_json figures = distance_json(d);
      figures["duration_mae_ms"] = pairs.empty() ? 0.0 : 1000 * duration_error_s / double(pairs.size());
      figures["recognized"] = heard.recognized;
      figures["wer"] = heard.wer;
      entry[voices[v].role] = figures;
    }
    utterances.push_back(entry);
  }

  nlohmann::ordered_json judged = nlohmann::ordered_json::object();
  for (size_t v = 0; v < voices.size(); ++v) {
    nlohmann::ordered_json figures = {{"voice", voices[v].voice->name()}, {"fallback", voices[v].voice->is_fallback()}};
    figures.update(tallies[v].json(true));
    figures["voice_pitch"] = pitch_json(measure_pitch(voice_speech[v]));
    judged[voices[v].role] = figures;
  }
  nlohmann::ordered_json result = {{"format", "dself-eval-voices"},
                                   {"version", 1},
                                   {"recognizer", recognizer.model_name()},
                                   {"split", speech::split_name(split)},
                                   {"utterance_count", chosen.size()},
                                   {"reference_words", real.reference_words},
                                   {"real", {{"wer", real.reference_words > 0 ? real.word_errors / double(real.reference_words) : 0.0},
                                             {"audio_s", real.audio_s}}}};
  if (options.copy_synthesis) {
    result["copy_synthesis"] = copy.json(false);
    result["copy_synthesis"]["vocoder"] = fmt::format("mel-cepstrum order {}, alpha {}, mixed excitation, MLSA",
                                                      vocoder::kMcepOrder, vocoder::kAlpha);
  }
  result["voices"] = judged;
  result["utterances"] = utterances;
  return result;
}

}  // namespace dself::voice
