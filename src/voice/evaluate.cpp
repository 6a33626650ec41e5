// How good the fallback voice is: the recogniser's word error rate on it, its speed, its pitch.
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "transcript/transcript.h"
#include "voice/detail/espeak.h"
#include "voice/voice.h"

namespace dself::voice {
namespace {

nlohmann::ordered_json pitch_json(const PitchProfile& p) {
  return {{"median_hz", p.median_hz}, {"p10_hz", p.p10_hz}, {"p90_hz", p.p90_hz}, {"voiced_frames", p.voiced_frame_count}};
}

// The texts of the avatar's utterances in `split`, in source order.
std::vector<std::string> utterance_texts(const std::filesystem::path& avatar, speech::Split split) {
  namespace fs = std::filesystem;
  std::vector<fs::path> sources;
  std::error_code ec;
  if (fs::is_directory(avatar / "speech", ec)) {
    for (const auto& entry : fs::directory_iterator(avatar / "speech")) {
      if (fs::exists(entry.path() / "utterances.json")) sources.push_back(entry.path());
    }
  }
  std::sort(sources.begin(), sources.end());
  std::vector<std::string> texts;
  for (const auto& dir : sources) {
    for (const auto& u : speech::read_dataset(dir).utterances) {
      if (u.split == split) texts.push_back(u.text);
    }
  }
  return texts;
}

}  // namespace

nlohmann::json evaluate_voice(const std::filesystem::path& avatar, const VoiceEvaluationOptions& options) {
  // Held-out texts, as for any voice; an avatar too small to have any (a minute of speech) is
  // judged on its train texts instead: espeak-ng learnt nothing from them, so they are as unseen.
  speech::Split split = speech::Split::held_out;
  std::vector<std::string> texts = utterance_texts(avatar, split);
  if (texts.empty()) texts = utterance_texts(avatar, split = speech::Split::train);
  if (texts.empty()) {
    throw InputError(fmt::format("{} has no utterances in speech/*/utterances.json: run `dself --avatar {} prepare` "
                                 "first",
                                 avatar.string(), avatar.string()));
  }
  const PitchProfile person = measure_avatar_pitch(avatar);
  EspeakOptions espeak;
  espeak.target_pitch_hz = person.median_hz;
  espeak.voice = options.voice.empty() ? closest_espeak_voice(person.median_hz) : options.voice;
  std::unique_ptr<Voice> voice = make_espeak_voice(espeak);
  transcript::PocketSphinxRecognizer recognizer;

  const size_t step = (texts.size() + options.max_utterances - 1) / std::max<size_t>(1, options.max_utterances);
  const std::vector<float> pause(static_cast<size_t>(0.3 * kSampleRate), 0.0f);
  std::vector<float> all_speech;  // for the voice's pitch
  double synthesis_s = 0, audio_s = 0, errors = 0;
  size_t reference_words = 0, utterance_count = 0;
  nlohmann::ordered_json utterances = nlohmann::ordered_json::array();
  for (size_t i = 0; i < texts.size(); i += std::max<size_t>(1, step)) {
    // Said sentence by sentence as `say` does, with a pause around each for the recogniser.
    std::vector<float> audio = pause;
    for (const auto& sentence : split_sentences(texts[i])) {
      const auto start = std::chrono::steady_clock::now();
      Utterance u = voice->say(sentence);
      synthesis_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      audio_s += u.duration_s();
      audio.insert(audio.end(), u.samples.begin(), u.samples.end());
      audio.insert(audio.end(), pause.begin(), pause.end());
      all_speech.insert(all_speech.end(), u.samples.begin(), u.samples.end());
    }
    std::string recognized;
    for (const auto& w : recognizer.transcribe(audio).words) recognized += (recognized.empty() ? "" : " ") + w.text;
    const auto reference = transcript::scoring_words(texts[i]);
    const double wer = transcript::word_error_rate(reference, transcript::scoring_words(recognized));
    errors += wer * static_cast<double>(reference.size());
    reference_words += reference.size();
    ++utterance_count;
    utterances.push_back({{"text", texts[i]}, {"recognized", recognized}, {"wer", wer}});
  }
  const PitchProfile spoken = measure_pitch(all_speech);
  nlohmann::ordered_json result = {
      {"format", "dself-eval-voice"},
      {"version", 1},
      {"voice", voice->name()},
      {"fallback", voice->is_fallback()},
      {"espeak_voice", espeak.voice},
      {"espeak_pitch", detail::espeak_pitch_for(espeak.voice, person.median_hz)},
      {"recognizer", recognizer.model_name()},
      {"split", speech::split_name(split)},
      {"utterance_count", utterance_count},
      {"reference_words", reference_words},
      {"wer", reference_words > 0 ? errors / static_cast<double>(reference_words) : 0.0},
      {"audio_s", audio_s},
      {"synthesis_s", synthesis_s},
      {"real_time_factor", audio_s > 0 ? synthesis_s / audio_s : 0.0},
      {"person_pitch", pitch_json(person)},
      {"voice_pitch", pitch_json(spoken)},
      {"pitch_difference_semitones",
       person.median_hz > 0 && spoken.median_hz > 0 ? 12 * std::log2(spoken.median_hz / person.median_hz) : 0.0},
      {"utterances", utterances}};
  return result;
}

}  // namespace dself::voice
