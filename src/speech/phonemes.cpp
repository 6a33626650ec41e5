// Phonemes: IPA from libespeak-ng, ARPAbet from the CMU dictionary or mapped from espeak-ng.
#include <espeak-ng/speak_lib.h>
#include <fmt/format.h>

#include <cctype>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "speech/speech.h"

namespace dself::speech {
namespace {

// ---- espeak-ng: one engine per process ------------------------------------------------------

std::mutex espeak_mutex;
bool espeak_ready = false;
std::string espeak_voice;

// Call with espeak_mutex held.
void use_espeak_voice(const std::string& voice) {
  if (!espeak_ready) {
    // Synchronous mode opens no audio device; DONT_EXIT turns a missing data directory into an
    // error code instead of exit(). Phoneme events (with IPA names) time the fallback voice's
    // phones; they change nothing in espeak_TextToPhonemes.
    const int options = espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA | espeakINITIALIZE_DONT_EXIT;
    if (espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, nullptr, options) < 0) {
      throw EnvironmentError("espeak-ng could not start: install espeak-ng-data (make setup)");
    }
    espeak_ready = true;
  }
  if (voice != espeak_voice) {
    if (espeak_SetVoiceByName(voice.c_str()) != EE_OK) {
      throw EnvironmentError(fmt::format("espeak-ng has no voice '{}': install espeak-ng-data (make setup)", voice));
    }
    espeak_voice = voice;
  }
}

// espeak-ng's IPA for text, phonemes separated by '|' and words by spaces, e.g. "h|ə|l|ˈoʊ".
std::string espeak_ipa(const std::string& text, const std::string& voice) {
  std::string result;
  with_espeak(voice, [&] {
    const void* position = text.c_str();
    // Bit 1: IPA; bits 8-23: the separator between phonemes.
    const int mode = espeakPHONEMES_IPA | ('|' << 8);
    while (position != nullptr) {
      const char* phonemes = espeak_TextToPhonemes(&position, espeakCHARS_UTF8, mode);
      if (phonemes == nullptr || *phonemes == '\0') continue;
      if (!result.empty()) result += ' ';
      result += phonemes;
    }
  });
  return result;
}

// ---- espeak-ng's IPA to ARPAbet --------------------------------------------------------------

// ref: espeak-ng's en-us phoneme inventory (phsource/ph_english_us) against the CMU dictionary's
// 39 phones. Longest match first, so diphthongs and affricates win over their parts. Rhotic
// vowels come out as vowel + r ("oːɹ" -> ao r), as the CMU dictionary writes them.
struct IpaRule {
  const char* ipa;
  const char* arpabet;  // space-separated
};
constexpr IpaRule kIpaRules[] = {
    {"aɪ", "ay"}, {"aʊ", "aw"}, {"eɪ", "ey"}, {"oʊ", "ow"}, {"əʊ", "ow"}, {"ɔɪ", "oy"}, {"tʃ", "ch"}, {"dʒ", "jh"},
    {"ɑ", "aa"},  {"ɒ", "aa"},  {"æ", "ae"},  {"a", "ae"},  {"ʌ", "ah"},  {"ə", "ah"},  {"ɐ", "ah"},  {"ɚ", "er"},
    {"ɝ", "er"},  {"ɜ", "er"},  {"ɛ", "eh"},  {"e", "eh"},  {"ɪ", "ih"},  {"ᵻ", "ih"},  {"ɨ", "ih"},  {"i", "iy"},
    {"ɔ", "ao"},  {"o", "ao"},  {"ʊ", "uh"},  {"u", "uw"},  {"b", "b"},   {"d", "d"},   {"f", "f"},   {"ɡ", "g"},
    {"g", "g"},   {"h", "hh"},  {"j", "y"},   {"k", "k"},   {"x", "k"},   {"l", "l"},   {"ɫ", "l"},   {"m", "m"},
    {"n", "n"},   {"ŋ", "ng"},  {"p", "p"},   {"ɹ", "r"},   {"r", "r"},   {"ɾ", "t"},   {"ʔ", "t"},   {"s", "s"},
    {"ʃ", "sh"},  {"t", "t"},   {"θ", "th"},  {"ð", "dh"},  {"v", "v"},   {"w", "w"},   {"ʍ", "w"},   {"z", "z"},
    {"ʒ", "zh"},  {"ç", "hh"},
};
// Marks that change no ARPAbet phone: stress, length, syllabic, tie, separators.
constexpr const char* kIgnoredMarks[] = {"ˈ", "ˌ", "ː", "ˑ", "\u0329", "\u0361", "|", " ", "-"};

size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xe) return 3;
  return 4;
}

}  // namespace

std::vector<std::string> ipa_to_arpabet(std::string_view ipa) {
  std::vector<std::string> phones;
  size_t i = 0;
  while (i < ipa.size()) {
    bool matched = false;
    for (const char* mark : kIgnoredMarks) {
      if (ipa.substr(i).starts_with(mark)) {
        i += std::string_view(mark).size();
        matched = true;
        break;
      }
    }
    if (matched) continue;
    size_t best_length = 0;
    const char* best = nullptr;
    for (const IpaRule& rule : kIpaRules) {
      std::string_view pattern(rule.ipa);
      if (pattern.size() > best_length && ipa.substr(i).starts_with(pattern)) {
        best_length = pattern.size();
        best = rule.arpabet;
      }
    }
    if (best == nullptr) {
      i += utf8_length(static_cast<unsigned char>(ipa[i]));  // a symbol English ARPAbet has no phone for
      continue;
    }
    std::istringstream parts(best);
    for (std::string phone; parts >> phone;) phones.push_back(phone);
    i += best_length;
  }
  return phones;
}

namespace {

// The words a written word is said as, lower case: "1995" -> nineteen ninety five, "I’ll" -> i'll.
std::vector<std::string> spoken_words(std::string_view written) {
  const std::string_view curly_apostrophe = "\u2019";
  std::string text;
  for (size_t i = 0; i < written.size(); ++i) {
    if (written.substr(i).starts_with(curly_apostrophe)) {
      text += '\'';
      i += curly_apostrophe.size() - 1;
    } else {
      text += written[i];
    }
  }
  std::istringstream tokens(transcript::normalize_text(text));
  std::vector<std::string> words;
  for (std::string token; tokens >> token;) {
    std::string word;
    auto flush = [&] {
      while (!word.empty() && word.front() == '\'') word.erase(word.begin());
      if (!word.empty()) words.push_back(word);
      word.clear();
    };
    for (char c : token) {
      auto u = static_cast<unsigned char>(c);
      if (std::isalnum(u) || c == '\'' || u >= 0x80) {
        word += static_cast<char>(std::tolower(u));
      } else if (c == '-') {
        flush();  // "well-known" is said as two words
      }
    }
    flush();
  }
  return words;
}

}  // namespace

void with_espeak(const std::string& voice, const std::function<void()>& work) {
  std::lock_guard lock(espeak_mutex);
  use_espeak_voice(voice);
  work();
}

struct Phonemizer::Impl {
  PhonemizerOptions options;
  // word -> its pronunciations, "hh ah l ow|hh eh l ow": one string per word keeps the 134 000
  // entries at a few megabytes.
  std::unordered_map<std::string, std::string> dictionary;

  std::vector<std::vector<std::string>> lookup(const std::string& word) const {
    auto found = dictionary.find(word);
    if (found == dictionary.end() && word.size() > 1 && word.back() == '\'') {
      found = dictionary.find(word.substr(0, word.size() - 1));  // "rails'" as "rails"
    }
    std::vector<std::vector<std::string>> variants;
    if (found == dictionary.end()) return variants;
    std::istringstream all(found->second);
    for (std::string one; std::getline(all, one, '|');) {
      std::istringstream phones(one);
      variants.emplace_back();
      for (std::string phone; phones >> phone;) variants.back().push_back(phone);
    }
    return variants;
  }
};

Phonemizer::Phonemizer(const PhonemizerOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
  std::ifstream in(options.dictionary);
  if (!in) {
    throw EnvironmentError(
        fmt::format("cannot read the pronunciation dictionary {}: install pocketsphinx-en-us "
                    "(make setup)",
                    options.dictionary.string()));
  }
  // Lines: "word PH1 PH2 ...", alternatives as "word(2) ...", optional "# comment" at the end.
  for (std::string line; std::getline(in, line);) {
    line = line.substr(0, line.find('#'));
    std::istringstream fields(line);
    std::string word;
    if (!(fields >> word)) continue;
    word = word.substr(0, word.find('('));
    std::string pronunciation;
    for (std::string phone; fields >> phone;) {
      std::string lower;
      for (char c : phone) {
        if (!std::isdigit(static_cast<unsigned char>(c))) {
          lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));  // stress digits dropped
        }
      }
      if (!pronunciation.empty()) pronunciation += ' ';
      pronunciation += lower;
    }
    if (pronunciation.empty()) continue;
    std::string& entry = impl_->dictionary[word];
    if (!entry.empty()) entry += '|';
    entry += pronunciation;
  }
  if (impl_->dictionary.empty()) {
    throw EnvironmentError(fmt::format("the pronunciation dictionary {} has no entries", options.dictionary.string()));
  }
  with_espeak(options.voice, [] {});
}

Phonemizer::~Phonemizer() = default;

Pronunciation Phonemizer::pronounce(std::string_view word) const {
  Pronunciation result;
  result.word = std::string(word);
  std::vector<std::string> spoken = spoken_words(word);
  if (spoken.empty()) return result;
  std::string joined;
  for (const auto& s : spoken) {
    if (!joined.empty()) joined += ' ';
    joined += s;
  }
  std::string separated = espeak_ipa(joined, impl_->options.voice);
  for (char c : separated) {
    if (c != '|') result.ipa += c;
  }
  // Each spoken word's pronunciations, from the dictionary where it has the word.
  std::vector<std::vector<std::vector<std::string>>> per_word;
  result.in_dictionary = true;
  for (const auto& s : spoken) {
    auto variants = impl_->lookup(s);
    if (variants.empty()) {
      variants.push_back(ipa_to_arpabet(espeak_ipa(s, impl_->options.voice)));
      result.in_dictionary = false;
    }
    per_word.push_back(std::move(variants));
  }
  // Every combination, likeliest first, up to max_variants.
  result.arpabet = {{}};
  for (const auto& variants : per_word) {
    std::vector<std::vector<std::string>> combined;
    for (const auto& prefix : result.arpabet) {
      for (const auto& variant : variants) {
        if (combined.size() >= std::max<size_t>(1, impl_->options.max_variants)) break;
        combined.push_back(prefix);
        combined.back().insert(combined.back().end(), variant.begin(), variant.end());
      }
    }
    result.arpabet = std::move(combined);
  }
  std::erase_if(result.arpabet, [](const auto& phones) { return phones.empty(); });
  return result;
}

std::vector<Pronunciation> Phonemizer::pronounce(const std::vector<transcript::Word>& words) const {
  std::vector<Pronunciation> result;
  result.reserve(words.size());
  for (const auto& w : words) result.push_back(pronounce(w.text));
  return result;
}

}  // namespace dself::speech
