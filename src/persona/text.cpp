// Words and sentences: content words for retrieval, sentences rebuilt from transcript words.
#include "persona/detail/text.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "persona/persona.h"

namespace dself::persona {

namespace {

// About 250 of the most frequent English words (function words, auxiliaries, pronouns and very
// general verbs and adverbs): what a question shares with everything, so it says nothing about
// the topic.
const std::set<std::string>& common_words() {
  static const std::set<std::string> words = {
      "a",          "about",     "above",     "after",    "again",      "against",  "all",        "also",    "am",
      "an",         "and",       "any",       "are",      "aren't",     "around",   "as",         "at",      "be",
      "because",    "been",      "before",    "being",    "below",      "between",  "both",       "but",     "by",
      "can",        "can't",     "cannot",    "could",    "couldn't",   "did",      "didn't",     "do",      "does",
      "doesn't",    "doing",     "don't",     "down",     "during",     "each",     "even",       "ever",    "every",
      "few",        "for",       "from",      "further",  "get",        "gets",     "got",        "had",     "hadn't",
      "has",        "hasn't",    "have",      "haven't",  "having",     "he",       "he'd",       "he'll",   "he's",
      "her",        "here",      "here's",    "hers",     "herself",    "him",      "himself",    "his",     "how",
      "how's",      "i",         "i'd",       "i'll",     "i'm",        "i've",     "if",         "in",      "into",
      "is",         "isn't",     "it",        "it's",     "its",        "itself",   "just",       "know",    "let",
      "let's",      "like",      "lot",       "make",     "makes",      "many",     "me",         "more",    "most",
      "much",       "must",      "my",        "myself",   "no",         "nor",      "not",        "now",     "of",
      "off",        "on",        "once",      "one",      "only",       "or",       "other",      "ought",   "our",
      "ours",       "ourselves", "out",       "over",     "own",        "really",   "same",       "say",     "said",
      "see",        "she",       "she'd",     "she'll",   "she's",      "should",   "shouldn't",  "so",      "some",
      "such",       "tell",      "than",      "that",     "that's",     "the",      "their",      "theirs",  "them",
      "themselves", "then",      "there",     "there's",  "these",      "they",     "they'd",     "they'll", "they're",
      "they've",    "thing",     "things",    "think",    "this",       "those",    "through",    "to",      "too",
      "under",      "until",     "up",        "us",       "very",       "was",      "wasn't",     "way",     "we",
      "we'd",       "we'll",     "we're",     "we've",    "well",       "were",     "weren't",    "what",    "what's",
      "when",       "when's",    "where",     "where's",  "which",      "while",    "who",        "who's",   "whom",
      "why",        "why's",     "will",      "with",     "won't",      "would",    "wouldn't",   "you",     "you'd",
      "you'll",     "you're",    "you've",    "your",     "yours",      "yourself", "yourselves", "yeah",    "yes",
      "okay",       "ok",        "oh",        "um",       "uh",         "go",       "going",      "gonna",   "want",
      "wanna",      "really",    "actually",  "maybe",    "quite",      "still",    "always",     "never",   "often",
      "sometimes",  "usually",   "something", "anything", "everything", "nothing",  "someone",    "anyone",  "everyone",
      "people",     "kind",      "sort",      "bit",      "little",     "good",     "great",      "new",     "old",
      "first",      "last",      "next",      "two",      "take",       "put",      "come",       "came",    "give",
      "use",        "used",      "look",      "find",     "back",       "time",     "day",        "today",   "year",
      "years",      "right",     "sure",      "why",      "does",       "tell",     "talk",       "talked",  "please",
      "favourite",  "favorite",  "think",     "feel",     "via",        "per",      "into",       "onto",    "upon",
      "within",     "without",   "s",         "t",        "d",          "ll",       "re",         "ve",      "m"};
  return words;
}

bool is_word_byte(unsigned char c) { return std::isalnum(c) || c >= 0x80; }

}  // namespace

bool is_common_english(const std::string& word) { return common_words().count(word) > 0; }

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  std::string current;
  auto flush = [&] {
    while (!current.empty() && current.back() == '\'') current.pop_back();
    if (!current.empty()) words.push_back(current);
    current.clear();
  };
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (is_word_byte(c)) {
      current.push_back(static_cast<char>(c < 0x80 ? std::tolower(c) : c));
    } else if ((c == '\'' || c == 0xE2) && !current.empty()) {
      // Apostrophes inside a word (also the typographic one, U+2019 = E2 80 99) are kept as '.
      if (c == 0xE2 && i + 2 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0x80 &&
          static_cast<unsigned char>(text[i + 2]) == 0x99) {
        current.push_back('\'');
        i += 2;
      } else if (c == '\'') {
        current.push_back('\'');
      } else {
        flush();
      }
    } else {
      flush();
    }
  }
  flush();
  return words;
}

std::vector<std::string> content_words(std::string_view text) {
  std::vector<std::string> out;
  for (auto& w : words_of(text)) {
    if (w.size() < 2 || is_common_english(w)) continue;
    out.push_back(w);
  }
  return out;
}

std::string stem(const std::string& word) {
  // A light suffix stripper, enough to match "bake/baking/baked" and plurals in coverage.
  static const char* suffixes[] = {"ing", "edly", "ed", "ies", "es", "ly", "s", "e"};
  for (const char* s : suffixes) {
    std::string suffix = s;
    if (word.size() >= suffix.size() + 3 && word.compare(word.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return word.substr(0, word.size() - suffix.size());
    }
  }
  return word;
}

std::string normalized(std::string_view text) {
  std::string out;
  for (auto& w : words_of(text)) {
    if (!out.empty()) out += ' ';
    out += w;
  }
  return out;
}

std::string as_sentence(const std::string& text) {
  std::string out = text;
  if (out.empty()) return out;
  if (out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 'a' + 'A');
  char last = out.back();
  if (last != '.' && last != '?' && last != '!') {
    while (!out.empty() && (out.back() == ',' || out.back() == ';' || out.back() == ':')) out.pop_back();
    out += '.';
  }
  return out;
}

namespace {

std::string letters_lower(const std::string& token) {
  std::string out;
  for (char c : token) {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '\'') out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

}  // namespace

std::vector<std::string_view> split_spaces(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(' ', pos);
    if (end == std::string_view::npos) end = text.size();
    if (end > pos) out.push_back(text.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

std::set<std::string> capitalised_words(const std::vector<Sentence>& sentences) {
  std::map<std::string, std::pair<int, int>> counts;  // word -> (capitalised, not)
  for (const auto& s : sentences) {
    // ASR text has no capitals at all: it says nothing about which words are names.
    if (std::none_of(s.text.begin() + std::min<size_t>(1, s.text.size()), s.text.end(),
                     [](char c) { return std::isupper(static_cast<unsigned char>(c)) && c != 'I'; })) {
      continue;
    }
    auto tokens = split_spaces(s.text);
    for (size_t i = 1; i < tokens.size(); ++i) {
      // After end punctuation a capital starts a sentence, not a name.
      char before = tokens[i - 1].empty() ? ' ' : tokens[i - 1].back();
      if (before == '.' || before == '?' || before == '!') continue;
      std::string word = letters_lower(std::string(tokens[i]));
      if (word.empty() || word == "i" || word.rfind("i'", 0) == 0) continue;
      auto& c = counts[word];
      (std::isupper(static_cast<unsigned char>(tokens[i][0])) ? c.first : c.second) += 1;
    }
  }
  std::set<std::string> out;
  for (const auto& [word, c] : counts) {
    if (c.first > c.second) out.insert(word);
  }
  return out;
}

std::string readable(const std::string& text, const std::set<std::string>& names) {
  std::string out;
  bool start = true;
  for (auto piece : split_spaces(text)) {
    std::string token(piece);
    std::string word = letters_lower(token);
    if (word.size() > 2 && word.compare(word.size() - 2, 2, "'s") == 0) word.resize(word.size() - 2);
    bool cap = start || word == "i" || word.rfind("i'", 0) == 0 || names.count(word);
    if (cap) {
      for (auto& c : token) {
        if (std::isalpha(static_cast<unsigned char>(c))) {
          c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
          break;
        }
      }
    }
    start = !token.empty() && (token.back() == '.' || token.back() == '?' || token.back() == '!');
    if (!out.empty()) out += ' ';
    out += token;
  }
  return as_sentence(out);
}

std::vector<Sentence> split_sentences(const nlohmann::json& transcript, int64_t source_id, const std::string& title,
                                      const PersonaParams& params) {
  struct W {
    std::string text;
    double start_s, end_s;
  };
  std::vector<W> words;
  if (transcript.contains("words")) {
    for (const auto& w : transcript.at("words")) {
      W word{w.value("text", std::string()), w.value("start_s", 0.0), w.value("end_s", 0.0)};
      if (!word.text.empty()) words.push_back(word);
    }
  }
  std::vector<Sentence> sentences;
  if (words.empty()) return sentences;

  // Median seconds per letter (start to next start), the person's speaking rate in this source.
  std::vector<double> per_letter;
  for (size_t i = 0; i + 1 < words.size(); ++i) {
    double span = words[i + 1].start_s - words[i].start_s;
    if (span > 0) per_letter.push_back(span / static_cast<double>(words[i].text.size() + 1));
  }
  double rate = 0.06;
  if (!per_letter.empty()) {
    std::nth_element(per_letter.begin(), per_letter.begin() + per_letter.size() / 2, per_letter.end());
    rate = per_letter[per_letter.size() / 2];
  }

  Sentence current;
  int n_words = 0;
  auto finish = [&] {
    if (n_words == 0) return;
    current.source_id = source_id;
    current.title = title;
    current.index = static_cast<int>(sentences.size());
    sentences.push_back(current);
    current = Sentence{};
    n_words = 0;
  };
  for (size_t i = 0; i < words.size(); ++i) {
    const W& w = words[i];
    if (n_words == 0) {
      current.start_s = w.start_s;
      current.text = w.text;
    } else {
      current.text += ' ' + w.text;
    }
    current.end_s = w.end_s;
    ++n_words;
    std::string stripped = w.text;
    while (!stripped.empty() && (stripped.back() == '"' || stripped.back() == '\'' || stripped.back() == ')')) {
      stripped.pop_back();
    }
    bool punct_end = !stripped.empty() && (stripped.back() == '.' || stripped.back() == '?' || stripped.back() == '!');
    bool pause_end = false;
    if (i + 1 < words.size()) {
      double expected = rate * static_cast<double>(w.text.size() + 1);
      double pause = (words[i + 1].start_s - w.start_s) - expected;
      pause_end = pause >= params.sentence_pause_s;
      if (pause_end) current.end_s = std::min(w.end_s, w.start_s + expected);
    }
    if (punct_end || pause_end || n_words >= params.max_sentence_words) finish();
  }
  finish();
  return sentences;
}

}  // namespace dself::persona
