// Text -> sentences for the voice: where to stop, where an abbreviation or a number only looks
// like a stop, and how to keep a sentence short enough to say in one breath.
#include <algorithm>
#include <cctype>
#include <set>
#include <string>

#include "core/text.h"
#include "voice/detail/text.h"
#include "voice/voice.h"

namespace dself::voice {
namespace {

bool is_space(char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_terminator(char c) { return c == '.' || c == '!' || c == '?' || c == ';'; }
// Closing quotes and brackets that stay with the sentence they end: 'He said "no."'
bool is_closer(char c) { return c == '"' || c == '\'' || c == ')' || c == ']'; }

// Abbreviations after which a full stop does not end the sentence. Titles come before a name;
// the rest come mid-sentence ("e.g.", "vs."). "etc.", "Jr.", "Sr." and "No." end a sentence when
// what follows says so (see ends_sentence).
const std::set<std::string>& abbreviations() {
  static const std::set<std::string> table = {"mr", "mrs", "ms", "dr", "prof", "st", "vs", "e.g", "i.e", "approx",
                                               "mt", "gen", "col", "lt", "sgt", "capt", "rev", "fig", "cf"};
  return table;
}

// The word just before text[dot] (a '.'), without leading punctuation: "(Dr" -> "Dr".
std::string word_before(std::string_view text, size_t dot) {
  size_t start = dot;
  while (start > 0 && !is_space(text[start - 1])) --start;
  std::string word(text.substr(start, dot - start));
  while (!word.empty() && !std::isalnum(static_cast<unsigned char>(word.front()))) word.erase(word.begin());
  return word;
}

// The first character of the next word after position `from`, or '\0' at the end.
char next_word_start(std::string_view text, size_t from) {
  while (from < text.size() && (is_space(text[from]) || text[from] == '"' || text[from] == '(')) ++from;
  return from < text.size() ? text[from] : '\0';
}

// Whether the terminator run text[first..last] ends a sentence.
bool ends_sentence(std::string_view text, size_t first, size_t last) {
  const size_t after = last + 1;
  if (after < text.size() && !is_space(text[after]) && !is_closer(text[after])) {
    return false;  // "3.5", "example.com", "U.S.A": a stop inside a token
  }
  if (text[first] != '.' || last != first) return true;  // "!", "?", ";", "...", "?!"
  const std::string word = word_before(text, first);
  const std::string key = ascii_lower(word);
  if (abbreviations().contains(key)) return false;
  if (word.size() == 1 && std::isupper(static_cast<unsigned char>(word[0]))) return false;  // an initial: "J. Smith"
  const char next = next_word_start(text, after);
  if (key == "no") return !is_digit(next);  // "No. 5" vs "I said no."
  if (key == "etc" || key == "jr" || key == "sr") return next == '\0' || std::isupper(static_cast<unsigned char>(next));
  return true;
}

std::vector<std::string> words_of(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (is_space(c)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word += c;
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

std::string join(const std::vector<std::string>& words, size_t begin, size_t end) {
  std::string out;
  for (size_t i = begin; i < end; ++i) {
    if (!out.empty()) out += ' ';
    out += words[i];
  }
  return out;
}

// One sentence (whitespace collapsed) into pieces of at most max_words: each cut after the last
// word ending in a comma, colon or dash that keeps the piece within the limit (a natural breath),
// else after max_words.
void add_sentence(std::string_view sentence, size_t max_words, std::vector<std::string>& out) {
  std::vector<std::string> words = words_of(sentence);
  max_words = std::max<size_t>(1, max_words);
  size_t begin = 0;
  while (begin < words.size()) {
    size_t end = words.size();
    if (end - begin > max_words) {
      end = begin + max_words;
      for (size_t i = begin + max_words; i > begin + 1; --i) {
        const std::string& w = words[i - 1];
        const char last = w.back();
        if (last == ',' || last == ':' || w == "-" || w == "--" || w.ends_with("\u2014")) {
          end = i;
          break;
        }
      }
    }
    std::string piece = join(words, begin, end);
    if (has_something_to_say(piece)) out.push_back(std::move(piece));
    begin = end;
  }
}

}  // namespace

bool has_something_to_say(std::string_view text) {
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c))) return true;
  }
  return false;
}

std::vector<std::string> split_sentences(std::string_view text, size_t max_words) {
  std::vector<std::string> sentences;
  size_t start = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == '\n' || text[i] == '\r') {
      add_sentence(text.substr(start, i - start), max_words, sentences);
      start = ++i;
      continue;
    }
    if (!is_terminator(text[i])) {
      ++i;
      continue;
    }
    size_t last = i;
    while (last + 1 < text.size() && is_terminator(text[last + 1])) ++last;
    if (!ends_sentence(text, i, last)) {
      i = last + 1;
      continue;
    }
    size_t end = last + 1;
    while (end < text.size() && is_closer(text[end])) ++end;
    add_sentence(text.substr(start, end - start), max_words, sentences);
    start = i = end;
  }
  add_sentence(text.substr(start), max_words, sentences);
  return sentences;
}

}  // namespace dself::voice
