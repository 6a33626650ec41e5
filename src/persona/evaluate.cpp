// Held-out retrieval evaluation: questions made from the person's own sentences.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>

#include "persona/detail/text.h"
#include "persona/persona.h"

namespace dself::persona {

namespace {

// A question from a sentence: its content words without the first one (the question must not
// be the sentence), at most the `max_words` rarest of the rest, in their order: "What about a b c?".
std::string question_for(const std::map<std::string, int>& df, const Sentence& s, size_t max_words) {
  auto words = content_words(s.text);
  std::vector<std::string> unique;
  for (const auto& w : words) {
    if (std::find(unique.begin(), unique.end(), w) == unique.end()) unique.push_back(w);
  }
  if (unique.size() < 3) return "";
  unique.erase(unique.begin());
  if (unique.size() > max_words) {
    // A word that fewer sentences contain is more specific.
    std::vector<std::pair<int, std::string>> ranked;
    for (const auto& w : unique) ranked.emplace_back(df.at(w), w);
    std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> keep;
    for (size_t i = 0; i < max_words; ++i) keep.push_back(ranked[i].second);
    std::vector<std::string> ordered;
    for (const auto& w : unique) {
      if (std::find(keep.begin(), keep.end(), w) != keep.end()) ordered.push_back(w);
    }
    unique = ordered;
  }
  std::string q = "What about";
  for (const auto& w : unique) q += " " + w;
  return q + "?";
}

bool covers(const Hit& hit, const Sentence& s) {
  double mid = (s.start_s + s.end_s) / 2;
  if (hit.ref.source_id == s.source_id && hit.ref.start_s <= mid && mid <= hit.ref.end_s) return true;
  // The same sentence said in another video (greetings, sign-offs) counts too.
  return normalized(hit.ref.text).find(normalized(s.text)) != std::string::npos;
}

}  // namespace

EvalReport evaluate(const Memory& memory, int max_questions) {
  EvalReport report;
  auto sentences = memory.all_sentences();
  std::map<std::string, int> df;
  for (const auto& s : sentences) {
    auto words = content_words(s.text);
    std::sort(words.begin(), words.end());
    words.erase(std::unique(words.begin(), words.end()), words.end());
    for (const auto& w : words) ++df[w];
  }
  std::vector<std::pair<const Sentence*, std::string>> questions;
  for (const auto& s : sentences) {
    auto q = question_for(df, s, 5);
    if (!q.empty()) questions.emplace_back(&s, q);
  }
  // Evenly spaced over all sources when there are more than asked for.
  if (max_questions > 0 && static_cast<int>(questions.size()) > max_questions) {
    std::vector<std::pair<const Sentence*, std::string>> picked;
    for (int i = 0; i < max_questions; ++i) picked.push_back(questions[questions.size() * i / max_questions]);
    questions = picked;
  }
  auto engine = make_extractive_engine(memory);
  int at1 = 0, at5 = 0, contains = 0, short_at1 = 0, short_at5 = 0;
  double reply_ms = 0;
  for (const auto& [s, q] : questions) {
    auto hits = memory.search(q, 5);
    for (size_t i = 0; i < hits.size(); ++i) {
      if (covers(hits[i], *s)) {
        at1 += i == 0;
        ++at5;
        break;
      }
    }
    // The harder variant: only the two rarest words.
    auto short_hits = memory.search(question_for(df, *s, 2), 5);
    for (size_t i = 0; i < short_hits.size(); ++i) {
      if (covers(short_hits[i], *s)) {
        short_at1 += i == 0;
        ++short_at5;
        break;
      }
    }
    auto t0 = std::chrono::steady_clock::now();
    Reply r = engine->reply({Message{"user", q, {}}}, {});
    reply_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    bool ok = normalized(r.text).find(normalized(s->text)) != std::string::npos;
    contains += ok;
    if (report.examples.size() < 5) {
      report.examples.push_back({{"question", q},
                                 {"expected", s->text},
                                 {"source_id", s->source_id},
                                 {"start_s", s->start_s},
                                 {"reply", r.text},
                                 {"reply_contains_expected", ok}});
    }
  }
  report.n_questions = static_cast<int>(questions.size());
  if (report.n_questions > 0) {
    double n = report.n_questions;
    report.recall_at_1 = at1 / n;
    report.recall_at_5 = at5 / n;
    report.reply_contains = contains / n;
    report.two_word_recall_at_1 = short_at1 / n;
    report.two_word_recall_at_5 = short_at5 / n;
    report.mean_reply_ms = reply_ms / n;
  }
  return report;
}

nlohmann::json to_json(const EvalReport& report) {
  return {{"format", "dself-eval-persona"},
          {"version", 1},
          {"questions", report.n_questions},
          {"recall_at_1", report.recall_at_1},
          {"recall_at_5", report.recall_at_5},
          {"reply_contains_expected", report.reply_contains},
          {"mean_reply_ms", report.mean_reply_ms},
          {"two_word_recall_at_1", report.two_word_recall_at_1},
          {"two_word_recall_at_5", report.two_word_recall_at_5},
          {"examples", report.examples}};
}

}  // namespace dself::persona
