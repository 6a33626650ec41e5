// The persona model's data: questions a visitor might ask, answered by the person's own words.
// Why questions on a key phrase: a visitor asks about a topic by naming it ("what do you think
// about sourdough?"), and the memory finds the passage by the same rare words (BM25 weighs a
// term by its IDF), so a question on the reply's rarest words is the question that reply would
// be retrieved for at chat time (docs/PERSONA.md, "Fine-tuning").
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "train/detail/persona.h"

namespace dself::train {

namespace {

constexpr size_t kHeldOutEvery = 10;   // every tenth sentence is held out
constexpr size_t kReplySentences = 2;  // sentences per reply at most

const char* const kTemplates[] = {
    "What can you tell me about {}?",
    "What do you think about {}?",
    "Tell me about {}.",
    "How do you feel about {}?",
};

bool contains_words(const std::vector<std::string>& words, const std::vector<std::string>& phrase) {
  if (phrase.empty() || phrase.size() > words.size()) return false;
  for (size_t i = 0; i + phrase.size() <= words.size(); ++i) {
    if (std::equal(phrase.begin(), phrase.end(), words.begin() + int64_t(i))) return true;
  }
  return false;
}

}  // namespace

PersonaData persona_data(const persona::Memory& memory) {
  const auto sentences = memory.all_sentences();
  // Document frequency of each content word over the person's sentences.
  std::map<std::string, int> df;
  for (const auto& s : sentences) {
    auto words = persona::content_words(s.text);
    for (const auto& w : std::set<std::string>(words.begin(), words.end())) ++df[w];
  }
  std::vector<std::vector<std::string>> phrases;  // the card's distinctive phrases, as content words
  for (const auto& term : memory.card().distinctive_phrases) phrases.push_back(persona::content_words(term.text));

  PersonaData data;
  std::vector<const persona::Sentence*> run;  // consecutive kept sentences of one source
  auto flush = [&] {
    for (size_t i = 0; i < run.size(); i += kReplySentences) {
      PersonaConversation c;
      for (size_t j = i; j < std::min(run.size(), i + kReplySentences); ++j) {
        c.reply += (c.reply.empty() ? "" : " ") + run[j]->text;
      }
      const auto words = persona::content_words(c.reply);
      if (words.empty()) continue;
      for (const auto& phrase : phrases) {
        if (contains_words(words, phrase)) {
          c.key_phrase = fmt::format("{}", fmt::join(phrase, " "));
          break;
        }
      }
      if (c.key_phrase.empty()) {
        // The rarest content word (fewest sentences); the first of equals.
        c.key_phrase = words.front();
        for (const auto& w : words) {
          if (df[w] < df[c.key_phrase]) c.key_phrase = w;
        }
      }
      const size_t pick = data.train.size() % std::size(kTemplates);
      c.question = fmt::format(fmt::runtime(kTemplates[pick]), c.key_phrase);
      data.train.push_back(std::move(c));
    }
    run.clear();
  };
  for (size_t i = 0; i < sentences.size(); ++i) {
    const auto& s = sentences[i];
    if (!run.empty() && run.back()->source_id != s.source_id) flush();
    if (i % kHeldOutEvery == kHeldOutEvery / 2) {
      data.held_out.push_back(s.text);
      flush();  // a reply never spans a held-out sentence
      continue;
    }
    run.push_back(&s);
  }
  flush();
  return data;
}

}  // namespace dself::train
