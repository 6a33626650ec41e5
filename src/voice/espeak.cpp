// The fallback voice: espeak-ng, its phones timed by its own phoneme events.
#include <espeak-ng/espeak_ng.h>
#include <espeak-ng/speak_lib.h>
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "core/error.h"
#include "core/text.h"
#include "media/media.h"
#include "transcript/transcript.h"
#include "voice/detail/espeak.h"
#include "voice/detail/text.h"
#include "voice/voice.h"

namespace dself::voice {
namespace {

// Said by every candidate voice to measure its pitch: mostly voiced sounds, a statement's falling
// and a clause's rising intonation, about four seconds.
constexpr const char* kCalibrationSentence =
    "When the morning light came over the hills, we walked along the river and talked about our plans for the "
    "summer.";

constexpr int kDefaultPitch = 50;  // espeak-ng's pitch parameter that leaves a voice as it is

// ---- Capture of one espeak_Synth call -------------------------------------------------------

struct PhonemeEvent {
  int sample = 0;   // at espeak-ng's own rate, from the start of the call
  std::string ipa;  // empty for a pause
};

struct Capture {
  std::vector<float> samples;  // at espeak-ng's own rate
  std::vector<PhonemeEvent> events;
};

Capture* capture_target = nullptr;  // set only while espeak-ng's lock is held

// espeak-ng calls this from inside espeak_Synth (synchronous mode), with each block of audio and
// the events that fall in it; returning 0 lets it go on.
int on_synth(short* wav, int sample_count, espeak_EVENT* events) {
  Capture* capture = capture_target;
  if (capture == nullptr) return 1;
  for (int i = 0; wav != nullptr && i < sample_count; ++i) capture->samples.push_back(wav[i] / 32768.0f);
  for (espeak_EVENT* e = events; e != nullptr && e->type != espeakEVENT_LIST_TERMINATED; ++e) {
    if (e->type != espeakEVENT_PHONEME) continue;
    // The name fills id.string's 8 bytes without a terminating zero when it needs all 8.
    capture->events.push_back({e->sample, std::string(e->id.string, strnlen(e->id.string, sizeof e->id.string))});
  }
  return 0;
}

// The phones of the events over [0, duration_s): a pause (an event without a name) is "sil";
// a sound ARPAbet has no phone for joins the phone before it; an espeak-ng phoneme that is two
// ARPAbet phones ("oːɹ" -> ao r) has its time shared evenly; time before the first event is
// silence; silences in a row are one.
std::vector<speech::TimedPhone> phones_from_events(const std::vector<PhonemeEvent>& events, int source_rate,
                                                   double duration_s) {
  struct Mark {
    double start_s;
    std::vector<std::string> phones;
  };
  std::vector<Mark> marks;
  for (const auto& e : events) {
    double start_s = std::clamp(static_cast<double>(e.sample) / source_rate, 0.0, duration_s);
    if (!marks.empty()) start_s = std::max(start_s, marks.back().start_s);
    std::vector<std::string> phones = e.ipa.empty() ? std::vector<std::string>{"sil"} : speech::ipa_to_arpabet(e.ipa);
    if (!phones.empty()) marks.push_back({start_s, std::move(phones)});
  }
  std::vector<speech::TimedPhone> result;
  auto push = [&result](const std::string& phone, double start_s, double end_s) {
    if (end_s <= start_s) return;
    if (!result.empty() && phone == "sil" && result.back().phone == "sil") {
      result.back().end_s = end_s;
      return;
    }
    result.push_back({phone, start_s, end_s});
  };
  push("sil", 0, marks.empty() ? duration_s : marks.front().start_s);
  for (size_t i = 0; i < marks.size(); ++i) {
    const double start_s = marks[i].start_s;
    const double end_s = i + 1 < marks.size() ? marks[i + 1].start_s : duration_s;
    const size_t n = marks[i].phones.size();
    for (size_t j = 0; j < n; ++j) {
      push(marks[i].phones[j], start_s + (end_s - start_s) * j / n, start_s + (end_s - start_s) * (j + 1) / n);
    }
  }
  return result;
}

// ---- The voices espeak-ng has ----------------------------------------------------------------

struct Catalog {
  std::set<std::string> languages;  // English voices, e.g. "en-us", "en-gb-x-rp"
  std::set<std::string> variants;   // "m1", "f3", "klatt", ...
};

const Catalog& catalog() {
  static std::once_flag once;
  static Catalog result;
  std::call_once(once, [] {
    speech::with_espeak("en-us", [] {
      // espeak_SetVoiceByName takes a voice file's name ("gmw/en-US" -> en-us), not every
      // language a voice lists ("en-gb" is only a language of "gmw/en").
      for (const espeak_VOICE** v = espeak_ListVoices(nullptr); v != nullptr && *v != nullptr; ++v) {
        std::string id = ascii_lower((*v)->identifier != nullptr ? (*v)->identifier : "");
        std::string file = id.substr(id.rfind('/') + 1);
        if (file == "en" || file.starts_with("en-")) result.languages.insert(file);
      }
      espeak_VOICE spec{};
      spec.languages = "variant";
      for (const espeak_VOICE** v = espeak_ListVoices(&spec); v != nullptr && *v != nullptr; ++v) {
        std::string id = (*v)->identifier != nullptr ? (*v)->identifier : "";
        if (id.starts_with("!v/")) result.variants.insert(id.substr(3));
      }
    });
    if (result.languages.empty()) {
      throw EnvironmentError("espeak-ng lists no English voice: install espeak-ng-data (make setup)");
    }
  });
  return result;
}

// "en-US+M3" -> "en-us+m3" when espeak-ng has it; InputError listing what it has otherwise.
std::string checked_voice_name(const std::string& name) {
  const Catalog& known = catalog();
  const size_t plus = name.find('+');
  const std::string language = ascii_lower(name.substr(0, plus));
  std::string variant = plus == std::string::npos ? "" : name.substr(plus + 1);
  if (!variant.empty() && !known.variants.contains(variant)) variant = ascii_lower(variant);
  const bool variant_ok = plus == std::string::npos || known.variants.contains(variant);
  if (known.languages.contains(language) && variant_ok) return variant.empty() ? language : language + "+" + variant;
  auto list = [](const std::set<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out;
  };
  throw InputError(fmt::format("unknown espeak-ng voice '{}': give an English voice ({}), optionally with "
                               "+VARIANT, one of: {}; e.g. en-us+m3",
                               name, list(known.languages), list(known.variants)));
}

class EspeakVoice : public Voice {
 public:
  EspeakVoice(std::string voice, int pitch, int words_per_minute)
      : voice_(std::move(voice)), pitch_(pitch), words_per_minute_(words_per_minute) {}

  std::string name() const override { return fmt::format("espeak-ng {} (fallback voice)", voice_); }
  bool is_fallback() const override { return true; }

  Utterance say(std::string_view sentence) override {
    if (!has_something_to_say(sentence)) {
      throw InputError(fmt::format("nothing to say in \"{}\": the text has no letters or digits", sentence));
    }
    // Written out as dself's transcripts are scored ("Dr." -> doctor, "$5" -> five dollars), so
    // that what is said matches what the recogniser is asked to hear; espeak-ng's own rules
    // take what is left. Punctuation stays: espeak-ng pauses at it.
    Utterance utterance = detail::espeak_say(voice_, pitch_, words_per_minute_, transcript::normalize_text(sentence));
    utterance.text = std::string(sentence);
    return utterance;
  }

 private:
  std::string voice_;
  int pitch_;
  int words_per_minute_;
};

// Medians at a few pitch settings of one voice, cached per process.
std::vector<std::pair<int, double>> pitch_curve(const std::string& voice) {
  static std::mutex mutex;
  static std::map<std::string, std::vector<std::pair<int, double>>> cache;
  std::lock_guard lock(mutex);
  auto found = cache.find(voice);
  if (found != cache.end()) return found->second;
  std::vector<std::pair<int, double>> curve;
  for (int pitch : {0, 25, 50, 75, 100}) {
    const double hz = measure_pitch(detail::espeak_say(voice, pitch, 165, kCalibrationSentence).samples).median_hz;
    if (hz > 0) curve.emplace_back(pitch, hz);
  }
  cache[voice] = curve;
  return curve;
}

}  // namespace

namespace detail {

Utterance espeak_say(const std::string& voice, int pitch, int words_per_minute, const std::string& text) {
  Capture capture;
  int source_rate = 0;
  espeak_ERROR rc = EE_OK;
  speech::with_espeak(voice, [&] {
    source_rate = espeak_ng_GetSampleRate();
    espeak_SetSynthCallback(on_synth);
    espeak_SetParameter(espeakRATE, words_per_minute, 0);
    espeak_SetParameter(espeakPITCH, pitch, 0);
    capture_target = &capture;
    rc = espeak_Synth(text.c_str(), text.size() + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, nullptr, nullptr);
    capture_target = nullptr;
  });
  if (rc != EE_OK || source_rate <= 0) {
    throw EnvironmentError(fmt::format("espeak-ng failed to say \"{}\" (error {}): reinstall espeak-ng-data", text,
                                       static_cast<int>(rc)));
  }
  Utterance utterance;
  utterance.text = text;
  utterance.samples = media::resample(capture.samples, source_rate, kSampleRate);
  utterance.phones = phones_from_events(capture.events, source_rate, utterance.duration_s());
  return utterance;
}

int espeak_pitch_for(const std::string& voice, double target_hz) {
  const auto curve = pitch_curve(voice);
  if (curve.empty() || target_hz <= 0) return kDefaultPitch;
  // The median rises with the parameter; interpolate in log frequency between the settings that
  // bracket the target, and stay at the ends beyond them.
  const double target = std::log(target_hz);
  if (target <= std::log(curve.front().second)) return curve.front().first;
  for (size_t i = 1; i < curve.size(); ++i) {
    const double low = std::log(curve[i - 1].second), high = std::log(curve[i].second);
    if (target <= high && high > low) {
      const double share = (target - low) / (high - low);
      return static_cast<int>(std::lround(curve[i - 1].first + share * (curve[i].first - curve[i - 1].first)));
    }
  }
  return curve.back().first;
}

}  // namespace detail

std::vector<EspeakCandidate> espeak_candidates() {
  static std::once_flag once;
  static std::vector<EspeakCandidate> result;
  std::call_once(once, [] {
    // espeak-ng's plain US voice and its numbered male and female variants: the ones that sound
    // like an ordinary adult (the named variants are characters: robots, whispers, croaks).
    std::vector<std::string> names = {"en-us"};
    for (const char* variant : {"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5"}) {
      if (catalog().variants.contains(variant)) names.push_back(std::string("en-us+") + variant);
    }
    for (const auto& name : names) {
      Utterance u = detail::espeak_say(name, kDefaultPitch, 165, kCalibrationSentence);
      result.push_back({name, measure_pitch(u.samples).median_hz});
    }
  });
  return result;
}

std::string closest_espeak_voice(double target_hz) {
  if (target_hz <= 0) return "en-us";
  std::string best = "en-us";
  double best_distance = 1e9;
  for (const auto& candidate : espeak_candidates()) {
    if (candidate.median_hz <= 0) continue;
    const double distance = std::abs(std::log(candidate.median_hz / target_hz));  // in octaves, up to a factor
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate.voice;
    }
  }
  return best;
}

std::unique_ptr<Voice> make_espeak_voice(const EspeakOptions& options) {
  if (options.words_per_minute < 80 || options.words_per_minute > 450) {
    throw InputError(fmt::format("speaking rate {} words per minute is outside espeak-ng's 80..450",
                                 options.words_per_minute));
  }
  if (options.target_pitch_hz != 0 && !(options.target_pitch_hz >= 40 && options.target_pitch_hz <= 600)) {
    throw InputError(fmt::format("target pitch {} Hz is not a speaking voice's (40..600 Hz; 0 for espeak-ng's own)",
                                 options.target_pitch_hz));
  }
  std::string voice = options.voice.empty() ? closest_espeak_voice(options.target_pitch_hz)
                                            : checked_voice_name(options.voice);
  const int pitch = options.target_pitch_hz > 0 ? detail::espeak_pitch_for(voice, options.target_pitch_hz) : kDefaultPitch;
  return std::make_unique<EspeakVoice>(std::move(voice), pitch, options.words_per_minute);
}

}  // namespace dself::voice
