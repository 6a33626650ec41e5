#include "sample/detail/speech.h"

#include <flite/flite.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>

#include "core/error.h"
#include "sample/sample.h"

extern "C" {
cst_voice* register_cmu_us_awb(const char* voxdir);
cst_voice* register_cmu_us_kal16(const char* voxdir);
cst_voice* register_cmu_us_rms(const char* voxdir);
cst_voice* register_cmu_us_slt(const char* voxdir);
}

namespace dself::sample {

namespace {

using Register = cst_voice* (*)(const char*);

// `kal` is the 16 kHz diphone build of kal (cmu_us_kal16); the others are 16 kHz already.
const std::map<std::string, Register>& registrars() {
  static const std::map<std::string, Register> table = {
      {"awb", register_cmu_us_awb},
      {"kal", register_cmu_us_kal16},
      {"rms", register_cmu_us_rms},
      {"slt", register_cmu_us_slt},
  };
  return table;
}

cst_voice* load_voice(const std::string& name) {
  static std::mutex mutex;
  static std::map<std::string, cst_voice*> loaded;
  std::lock_guard lock(mutex);
  static bool initialised = (flite_init(), true);
  (void)initialised;
  auto found = loaded.find(name);
  if (found != loaded.end()) return found->second;
  cst_voice* voice = registrars().at(name)(nullptr);
  if (voice == nullptr)
    throw EnvironmentError(fmt::format("flite could not load voice {}; reinstall flite1-dev", name));
  loaded[name] = voice;
  return voice;
}

double segment_start(const cst_item* segment) {
  const cst_item* previous = item_prev(item_as(segment, "Segment"));
  return previous ? item_feat_float(previous, "end") : 0.0;
}

std::vector<Phone> read_phones(const cst_utterance* u) {
  std::vector<Phone> phones;
  for (const cst_item* s = relation_head(utt_relation(u, "Segment")); s; s = item_next(s)) {
    phones.push_back(Phone{item_feat_string(s, "name"), segment_start(s), item_feat_float(s, "end")});
  }
  return phones;
}

void add_phones(const cst_item* word, std::vector<Phone>& phones) {
  for (const cst_item* syl = item_daughter(item_as(word, "SylStructure")); syl; syl = item_next(syl)) {
    for (const cst_item* s = item_daughter(syl); s; s = item_next(s)) {
      phones.push_back(Phone{item_feat_string(s, "name"), segment_start(s), item_feat_float(s, "end")});
    }
  }
}

bool has_digit(const std::string& text) {
  return std::any_of(text.begin(), text.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Words as written, one per token ("I'll", "half-hour", "Bertha"), except that numbers are the
// words flite says for them ("3" -> "three"). Tokens flite says nothing for are left out.
std::vector<Word> read_words(const cst_utterance* u) {
  std::vector<Word> words;
  for (const cst_item* token = relation_head(utt_relation(u, "Token")); token; token = item_next(token)) {
    std::string written = item_feat_string(token, "name");
    bool spell_out = has_digit(written);
    Word word{written, 0, 0, {}};
    for (const cst_item* w = item_daughter(token); w; w = item_next(w)) {
      if (spell_out) word = Word{item_feat_string(w, "name"), 0, 0, {}};
      add_phones(w, word.phones);
      if (spell_out && !word.phones.empty()) words.push_back(word);
    }
    if (!spell_out && !word.phones.empty()) words.push_back(word);
  }
  for (Word& word : words) {
    word.start_s = word.phones.front().start_s;
    word.end_s = word.phones.back().end_s;
  }
  return words;
}

// Makes the audio and the phones end together: the audio is padded to the last phone's end,
// and the last silence stretched to the audio's end (flite's differ by a few milliseconds).
void make_phones_cover_audio(Utterance& utterance) {
  if (utterance.phones.empty()) utterance.phones.push_back(Phone{"pau", 0, 0});
  auto last_end = static_cast<int64_t>(std::ceil(utterance.phones.back().end_s * kSampleRate - 1e-6));
  if (last_end > utterance.sample_count()) utterance.samples.resize(static_cast<size_t>(last_end), 0.0f);
  double end_s = utterance.duration_s();
  if (utterance.phones.back().phone == "pau") {
    utterance.phones.back().end_s = end_s;
  } else if (utterance.phones.back().end_s < end_s) {
    utterance.phones.push_back(Phone{"pau", utterance.phones.back().end_s, end_s});
  }
}

}  // namespace

std::vector<std::string> voice_names() {
  std::vector<std::string> names;
  for (const auto& [name, _] : registrars()) names.push_back(name);
  return names;
}

Voice::Voice(const std::string& name) : name_(name) {
  if (!registrars().contains(name)) {
    throw InputError(
        fmt::format("unknown voice '{}' (--voice): the flite voices are {}", name, fmt::join(voice_names(), ", ")));
  }
  voice_ = load_voice(name);
}

Utterance Voice::speak(const std::string& text) const {
  // flite's clustergen voices (awb, rms, slt) draw their excitation noise from rand():
  // reseeding makes a sentence sound the same every time it is said, in every run.
  std::srand(1);
  cst_utterance* u = flite_synth_text(text.c_str(), voice_);
  if (u == nullptr) throw EnvironmentError(fmt::format("flite voice {} could not say \"{}\"", name_, text));
  Utterance utterance;
  cst_wave* wave = utt_wave(u);
  if (wave != nullptr && cst_wave_sample_rate(wave) != kSampleRate) cst_wave_resample(wave, kSampleRate);
  int n = cst_wave_num_samples(wave);
  int channels = std::max(1, cst_wave_num_channels(wave));
  utterance.samples.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) utterance.samples[i] = static_cast<float>(wave->samples[i * channels]) / 32768.0f;
  utterance.phones = read_phones(u);
  utterance.words = read_words(u);
  delete_utterance(u);
  make_phones_cover_audio(utterance);
  return utterance;
}

}  // namespace dself::sample
