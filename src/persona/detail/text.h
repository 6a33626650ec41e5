// Helpers shared by the persona's .cpp files; not part of its API.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "persona/persona.h"

namespace dself::persona {

// The space-separated fields of a text (runs of spaces count as one).
std::vector<std::string_view> split_spaces(std::string_view text);
// Lower-case words (letters, digits, inner apostrophes; other scripts kept as bytes).
std::vector<std::string> words_of(std::string_view text);
// A light suffix-stripped form, for matching word forms in coverage.
std::string stem(const std::string& word);
// Lower-case words joined by single spaces: for comparing texts.
std::string normalized(std::string_view text);
// Capitalised, ending in a full stop when it has no end punctuation (auto captions have none).
std::string as_sentence(const std::string& text);
// Text fit to show and to speak where the memory holds ASR text (lower case, no punctuation): "I"
// and its contractions, the first letter, and the words in names (the person's transcripts write
// them capitalised elsewhere) get their capitals back, and it ends in a full stop.
std::string readable(const std::string& text, const std::set<std::string>& names);
// Words written capitalised inside sentences more often than not (names, places): lower case.
std::set<std::string> capitalised_words(const std::vector<Sentence>& sentences);
// The system prompt of the generating engines (openai.cpp): speak as the person, in their style,
// from these retrieved passages only.
std::string system_prompt(const PersonaCard& card, const std::vector<Hit>& hits);
// The persona card built from all sentences (card.cpp).
PersonaCard build_card(const std::vector<Sentence>& sentences);

}  // namespace dself::persona
