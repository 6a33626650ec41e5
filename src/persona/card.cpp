// The persona card: what makes the person's speech theirs, from all their sentences.
#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "persona/detail/text.h"
#include "persona/persona.h"

namespace dself::persona {

namespace {

std::vector<PersonaCard::Term> top_terms(const std::map<std::string, int>& counts, int min_count, size_t limit) {
  std::vector<PersonaCard::Term> terms;
  for (const auto& [text, count] : counts) {
    if (count >= min_count) terms.push_back({text, count});
  }
  std::stable_sort(terms.begin(), terms.end(), [](const auto& a, const auto& b) { return a.count > b.count; });
  if (terms.size() > limit) terms.resize(limit);
  return terms;
}

std::string join(const std::vector<std::string>& words, size_t first, size_t n) {
  std::string out;
  for (size_t i = first; i < first + n; ++i) {
    if (i != first) out += ' ';
    out += words[i];
  }
  return out;
}

// The longest word prefix shared by sentences from most sources (see below; or the first
// sentence alone when there is one source): a greeting or a sign-off.
std::vector<SourceRef> recurring_openers(const std::vector<const Sentence*>& candidates, size_t n_sources) {
  std::vector<SourceRef> out;
  if (candidates.empty()) return out;
  // The longest prefix that at least three quarters of the sources (and at least two) share:
  // the stable part of how the person opens, without what each video then goes on to say.
  size_t n = candidates.size();
  size_t need = std::max<size_t>(2, (3 * n_sources + 3) / 4);
  size_t best_len = 0;
  const Sentence* best = nullptr;
  std::vector<std::vector<std::string>> words;
  for (const auto* c : candidates) words.push_back(words_of(c->text));
  for (size_t a = 0; a < n; ++a) {
    for (size_t len = best_len + 1; len <= words[a].size(); ++len) {
      std::set<int64_t> sharing_sources;
      for (size_t b = 0; b < n; ++b) {
        if (words[b].size() >= len && std::equal(words[a].begin(), words[a].begin() + len, words[b].begin())) {
          sharing_sources.insert(candidates[b]->source_id);
        }
      }
      size_t sharing = sharing_sources.size();
      if (sharing < need) break;
      best_len = len;
      best = candidates[a];
    }
  }
  if (best_len < 2) {
    if (n_sources > 1) return out;
    best = candidates[0];
    best_len = std::min<size_t>(words[0].size(), 8);
  }
  // "welcome back to the workshop and today" -> "welcome back to the workshop": a greeting does
  // not end on a conjunction or an article.
  auto best_words = words_of(best->text);
  static const std::set<std::string> dangling = {"and", "but", "or",   "so",   "today", "the",  "a",  "an",
                                                 "to",  "of",  "with", "then", "now",   "that", "in", "on"};
  while (best_len > 2 && dangling.count(best_words[best_len - 1])) --best_len;
  // Keep the original spelling of the shared words (split on spaces: one transcript word each).
  std::string text;
  size_t taken = 0;
  size_t pos = 0;
  const std::string& s = best->text;
  while (taken < best_len && pos < s.size()) {
    size_t next = s.find(' ', pos);
    if (next == std::string::npos) next = s.size();
    if (taken) text += ' ';
    text += s.substr(pos, next - pos);
    ++taken;
    pos = next + 1;
  }
  double fraction = static_cast<double>(best_len) / std::max<size_t>(1, words_of(best->text).size());
  SourceRef ref{best->source_id, best->title, best->start_s,
                best->start_s + (best->end_s - best->start_s) * std::min(1.0, fraction), text};
  out.push_back(ref);
  for (const auto* c : candidates) {
    if (c != best && normalized(c->text).rfind(normalized(text), 0) == 0) {
      out.push_back({c->source_id, c->title, c->start_s, c->end_s, c->text});
    }
  }
  return out;
}

}  // namespace

namespace {

// Questions a visitor could ask, from the person's own topics: a distinctive word they say
// after "my" ("my cello", "my sourdough starter") becomes "Tell me about your cello". Never a raw
// phrase of the transcript ("What about hey everyone welcome?").
std::vector<std::string> suggest_questions(const std::vector<Sentence>& sentences,
                                           const std::vector<PersonaCard::Term>& terms) {
  constexpr size_t kMaxSuggestions = 4;
  constexpr size_t kTermsTried = 12;
  std::vector<std::vector<std::string>> all_words;
  for (const auto& s : sentences) all_words.push_back(words_of(s.text));
  std::vector<std::string> out;
  std::set<std::string> asked;
  for (size_t t = 0; t < terms.size() && t < kTermsTried && out.size() < kMaxSuggestions; ++t) {
    // The most frequent "my [word] TERM" for this term.
    std::map<std::string, int> said;
    for (const auto& words : all_words) {
      for (size_t i = 0; i < words.size(); ++i) {
        if (words[i] != terms[t].text) continue;
        if (i >= 1 && words[i - 1] == "my") ++said[words[i]];
        if (i >= 2 && words[i - 2] == "my" && !is_common_english(words[i - 1])) ++said[words[i - 1] + " " + words[i]];
      }
    }
    if (said.empty()) continue;
    auto best = std::max_element(said.begin(), said.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
    // One question per thing: "your night" after "your night train" says nothing new.
    bool repeats = false;
    for (const auto& w : words_of(best->first)) repeats = repeats || asked.count(w);
    if (repeats) continue;
    for (const auto& w : words_of(best->first)) asked.insert(w);
    out.push_back("Tell me about your " + best->first + ".");
  }
  return out;
}

}  // namespace

PersonaCard build_card(const std::vector<Sentence>& sentences) {
  PersonaCard card;
  std::map<int64_t, std::pair<const Sentence*, const Sentence*>> first_last;
  std::map<int64_t, const Sentence*> before_last;  // a sign-off cut at a pause ("..., and happy growing")
  std::map<std::string, int> word_counts, phrase_counts;
  std::map<std::string, int> ngram_counts;
  std::map<std::string, std::set<int64_t>> ngram_sources;
  std::vector<int> lengths;
  for (const auto& s : sentences) {
    auto& fl = first_last[s.source_id];
    if (!fl.first) fl.first = &s;
    if (fl.second) before_last[s.source_id] = fl.second;
    fl.second = &s;
    auto words = words_of(s.text);
    lengths.push_back(static_cast<int>(words.size()));
    card.n_words += static_cast<int>(words.size());
    for (size_t i = 0; i < words.size(); ++i) {
      bool content = words[i].size() >= 3 && !is_common_english(words[i]);
      if (content) ++word_counts[words[i]];
      for (size_t n = 2; n <= 3 && i + n <= words.size(); ++n) {
        const auto& last = words[i + n - 1];
        if (content && last.size() >= 3 && !is_common_english(last)) ++phrase_counts[join(words, i, n)];
      }
      for (size_t n = 4; n <= 10 && i + n <= words.size(); ++n) {
        auto g = join(words, i, n);
        ++ngram_counts[g];
        ngram_sources[g].insert(s.source_id);
      }
    }
    // First-person facts: statements that open with I / my (not questions).
    if (!words.empty() && (words[0] == "i" || words[0] == "my" || words[0] == "i'm" || words[0] == "i've") &&
        words.size() >= 4 && s.text.back() != '?' && card.facts.size() < 60) {
      card.facts.push_back({s.source_id, s.title, s.start_s, s.end_s, s.text});
    }
  }
  card.n_sources = static_cast<int>(first_last.size());
  card.n_sentences = static_cast<int>(sentences.size());
  if (!lengths.empty()) {
    double sum = 0;
    for (int l : lengths) sum += l;
    card.mean_sentence_words = sum / static_cast<double>(lengths.size());
    std::sort(lengths.begin(), lengths.end());
    card.median_sentence_words = lengths[lengths.size() / 2];
  }
  card.distinctive_terms = top_terms(word_counts, 2, 30);
  card.distinctive_phrases = top_terms(phrase_counts, 2, 20);
  card.suggested_questions = suggest_questions(sentences, card.distinctive_terms);

  // Recurring phrases: said in 2+ sources (or 3+ times in one); longer ones hide the shorter
  // phrases they contain.
  std::map<std::string, int> recurring;
  for (const auto& [g, count] : ngram_counts) {
    if (ngram_sources[g].size() >= 2 || count >= 3) {
      auto words = words_of(g);
      int n_content = 0;
      for (auto& w : words) n_content += is_common_english(w) ? 0 : 1;
      if (n_content >= 1) recurring[g] = count;
    }
  }
  // Only the most frequent few hundred are compared, so the card stays linear in hours of video.
  std::vector<PersonaCard::Term> candidates = top_terms(recurring, 1, 300);
  std::vector<PersonaCard::Term> phrases;
  for (const auto& [g, count] : candidates) {
    bool inside_longer = false;
    for (const auto& [other, other_count] : candidates) {
      if (other.size() > g.size() && other_count >= count && other.find(g) != std::string::npos) {
        inside_longer = true;
        break;
      }
    }
    if (!inside_longer) phrases.push_back({g, count});
  }
  std::stable_sort(phrases.begin(), phrases.end(), [](const auto& a, const auto& b) {
    return a.count != b.count ? a.count > b.count : a.text.size() > b.text.size();
  });
  if (phrases.size() > 20) phrases.resize(20);
  card.recurring_phrases = phrases;

  std::vector<const Sentence*> firsts, lasts;
  for (const auto& [id, fl] : first_last) {
    firsts.push_back(fl.first);
    lasts.push_back(fl.second);
    if (before_last.count(id)) lasts.push_back(before_last[id]);
  }
  card.greetings = recurring_openers(firsts, first_last.size());
  card.sign_offs = recurring_openers(lasts, first_last.size());
  return card;
}

namespace {

nlohmann::json refs_json(const std::vector<SourceRef>& refs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : refs) {
    out.push_back(
        {{"text", r.text}, {"source_id", r.source_id}, {"title", r.title}, {"start_s", r.start_s}, {"end_s", r.end_s}});
  }
  return out;
}

nlohmann::json terms_json(const std::vector<PersonaCard::Term>& terms) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& t : terms) out.push_back({{"text", t.text}, {"count", t.count}});
  return out;
}

std::vector<SourceRef> refs_from(const nlohmann::json& json) {
  std::vector<SourceRef> out;
  for (const auto& r : json) {
    out.push_back({r.at("source_id").get<int64_t>(), r.at("title").get<std::string>(), r.at("start_s").get<double>(),
                   r.at("end_s").get<double>(), r.at("text").get<std::string>()});
  }
  return out;
}

std::vector<PersonaCard::Term> terms_from(const nlohmann::json& json) {
  std::vector<PersonaCard::Term> out;
  for (const auto& t : json) out.push_back({t.at("text").get<std::string>(), t.at("count").get<int>()});
  return out;
}

}  // namespace

nlohmann::json to_json(const PersonaCard& card) {
  return {{"format", "dself-persona-card"},
          {"version", 1},
          {"sources", card.n_sources},
          {"sentences", card.n_sentences},
          {"words", card.n_words},
          {"mean_sentence_words", card.mean_sentence_words},
          {"median_sentence_words", card.median_sentence_words},
          {"distinctive_terms", terms_json(card.distinctive_terms)},
          {"distinctive_phrases", terms_json(card.distinctive_phrases)},
          {"recurring_phrases", terms_json(card.recurring_phrases)},
          {"greetings", refs_json(card.greetings)},
          {"sign_offs", refs_json(card.sign_offs)},
          {"facts", refs_json(card.facts)},
          {"suggested_questions", card.suggested_questions}};
}

PersonaCard card_from_json(const nlohmann::json& json) {
  PersonaCard card;
  card.n_sources = json.at("sources").get<int>();
  card.n_sentences = json.at("sentences").get<int>();
  card.n_words = json.at("words").get<int>();
  card.mean_sentence_words = json.at("mean_sentence_words").get<double>();
  card.median_sentence_words = json.at("median_sentence_words").get<double>();
  card.distinctive_terms = terms_from(json.at("distinctive_terms"));
  card.distinctive_phrases = terms_from(json.at("distinctive_phrases"));
  card.recurring_phrases = terms_from(json.at("recurring_phrases"));
  card.greetings = refs_from(json.at("greetings"));
  card.sign_offs = refs_from(json.at("sign_offs"));
  card.facts = refs_from(json.at("facts"));
  if (json.contains("suggested_questions")) card.suggested_questions = json["suggested_questions"].get<std::vector<std::string>>();
  return card;
}

}  // namespace dself::persona
