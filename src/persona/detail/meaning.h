// Word meaning for matching questions to what the person said: base forms (lemmas) and WordNet
// concepts (synonym sets, word families, broader terms). Not part of the persona's API.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace dself::persona {

// A WordNet concept: part of speech (1 noun, 2 verb, 3 adjective, 4 adverb) * 1e8 + synset offset.
using ConceptId = int64_t;

// How a vocabulary word reaches a concept: its own senses (and their word family), or a broader
// term one or two steps up.
enum class Reach : int { kOwn = 0, kBroader1 = 1, kBroader2 = 2 };

struct WordConcepts {
  std::vector<ConceptId> own;       // synsets of its first senses, and derivationally related ones
  std::vector<ConceptId> broader1;  // their hypernyms
  std::vector<ConceptId> broader2;  // the hypernyms of those
};

// WordNet 3.0, read straight from Debian's wordnet-base files (index.*, data.*, *.exc) through
// memory maps, so a lookup is a binary search and costs microseconds; read-only and thread-safe.
// ref: WordNet 3.0 wndb(5WN) (file formats) and morphy(7WN) (base forms).
class WordNet {
 public:
  // The dictionary under $DSELF_WORDNET or /usr/share/wordnet; nullptr when it is not installed
  // (matching then uses stems only).
  static const WordNet* get();

  // Base forms WordNet knows for a word form (children -> child, practising -> practise), any part of speech.
  std::vector<std::string> base_forms(const std::string& word) const;
  bool knows(const std::string& lemma) const;
  // How many senses a lemma has over all parts of speech: common words have many ("give": 45).
  int senses(const std::string& lemma) const;
  WordConcepts concepts(const std::string& lemma) const;

  ~WordNet();
  WordNet(const WordNet&) = delete;
  WordNet& operator=(const WordNet&) = delete;

 private:
  WordNet() = default;
  struct Impl;
  Impl* impl_ = nullptr;
};

// The key a word is matched by: its shortest WordNet base form, else a light stem.
std::string lemma_key(const std::string& word);

// Keys of the content words of a text, in order; a two-word term WordNet knows is one more key,
// beside its words or, with terms_replace_words (questions), instead of them.
std::vector<std::string> content_keys(std::string_view text, bool terms_replace_words = false);

// What a question asks for, from its wh-words: "duration", "age", "quantity", "frequency",
// "person", "time", "place", "reason", or "" (anything).
std::string question_type(std::string_view question);
// Whether a sentence holds an answer of that type (a duration, an age, a name, a reason...).
bool answers_type(const std::string& type, std::string_view sentence);

}  // namespace dself::persona
