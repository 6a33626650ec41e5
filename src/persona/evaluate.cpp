// Held-out retrieval evaluation: questions made from the person's own sentences.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>
#include <fstream>
#include <fmt/format.h>

#include "core/error.h"
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

namespace {

bool valid_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    }
    i += n;
  }
  return true;
}

std::string trimmed(std::string_view s) {
  size_t a = s.find_first_not_of(" \t\r");
  if (a == std::string_view::npos) return "";
  size_t b = s.find_last_not_of(" \t\r");
  return std::string(s.substr(a, b - a + 1));
}

// Share of words two texts have in common (F1 over word multisets): ASR text differs a little
// from what was meant, so a sentence is found by its words, not byte for byte.
double word_f1(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  if (a.empty() || b.empty()) return 0;
  std::multiset<std::string> rest(b.begin(), b.end());
  double common = 0;
  for (const auto& w : a) {
    auto it = rest.find(w);
    if (it != rest.end()) {
      ++common;
      rest.erase(it);
    }
  }
  return 2 * common / static_cast<double>(a.size() + b.size());
}

}  // namespace

std::vector<Question> read_questions(const std::filesystem::path& file, const PersonaParams& params) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(fmt::format("cannot read the questions file {}", file.string()));
  std::vector<Question> out;
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto where = [&] { return fmt::format("{} line {}", file.string(), number); };
    if (!valid_utf8(line)) throw InputError(fmt::format("{}: not valid UTF-8", where()));
    std::string t = trimmed(line);
    if (t.empty() || t[0] == '#') continue;
    size_t tab = line.find('\t');
    if (tab == std::string::npos) {
      throw InputError(fmt::format("{}: no tab: write the question, a tab, then the expected sentence or -", where()));
    }
    if (line.find('\t', tab + 1) != std::string::npos) {
      throw InputError(fmt::format("{}: more than one tab: a line is question<TAB>expected", where()));
    }
    Question q{trimmed(std::string_view(line).substr(0, tab)), trimmed(std::string_view(line).substr(tab + 1)), number};
    if (q.text.empty()) throw InputError(fmt::format("{}: the question is empty", where()));
    if (q.text.size() > params.max_message_chars) {
      throw InputError(fmt::format("{}: the question is longer than {} characters", where(), params.max_message_chars));
    }
    if (q.expected.empty()) {
      throw InputError(fmt::format("{}: the expected sentence is empty (write - for out of scope)", where()));
    }
    if (q.expected == "-") q.expected.clear();
    out.push_back(std::move(q));
  }
  if (out.empty()) throw InputError(fmt::format("{} has no questions", file.string()));
  return out;
}

QuestionsReport evaluate_questions(const Memory& memory, const std::vector<Question>& questions) {
  QuestionsReport report;
  auto sentences = memory.all_sentences();
  std::vector<std::vector<std::string>> sentence_words;
  for (const auto& s : sentences) sentence_words.push_back(words_of(s.text));
  auto engine = make_extractive_engine(memory);
  double total_ms = 0;
  int asked = 0;
  for (const auto& q : questions) {
    // The memory's sentences that are the expected one (it may be said in more than one video).
    std::vector<const Sentence*> targets;
    if (!q.expected.empty()) {
      auto expected = words_of(q.expected);
      double best = 0;
      std::vector<double> f1(sentences.size());
      for (size_t i = 0; i < sentences.size(); ++i) {
        f1[i] = word_f1(expected, sentence_words[i]);
        best = std::max(best, f1[i]);
      }
      if (best < 0.6) {
        ++report.not_in_memory;
        continue;
      }
      for (size_t i = 0; i < sentences.size(); ++i) {
        if (f1[i] >= best - 0.05) targets.push_back(&sentences[i]);
      }
    }
    auto t0 = std::chrono::steady_clock::now();
    Reply r = engine->reply({Message{"user", q.text, {}}}, {});
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    total_ms += ms;
    report.max_reply_ms = std::max(report.max_reply_ms, ms);
    ++asked;
    // The best match before any threshold: what calibrating min_confidence needs.
    auto top = memory.match(q.text, 50);
    int rank = -1;  // of the expected sentence among the matches (-1: not among them)
    for (size_t i = 0; i < top.size() && rank < 0; ++i) {
      for (const auto* s : targets) {
        if (top[i].sentence.source_id == s->source_id && top[i].sentence.index == s->index) rank = static_cast<int>(i);
      }
    }
    report.answers.push_back({{"line", q.line},
                              {"in_scope", !q.expected.empty()},
                              {"confidence", top.empty() ? 0.0 : top[0].confidence},
                              {"best_is_expected", rank == 0},
                              {"expected_rank", rank}});
    bool ok = false;
    if (q.expected.empty()) {
      ++report.out_of_scope;
      ok = !r.grounded;
      report.out_of_scope_declined += ok;
    } else {
      ++report.in_scope;
      for (const auto* s : targets) {
        for (const auto& ref : r.sources) {
          double mid = (s->start_s + s->end_s) / 2;
          if (ref.source_id == s->source_id && ref.start_s <= mid && mid <= ref.end_s) ok = true;
        }
      }
      report.answered_expected += ok;
      report.in_scope_declined += !r.grounded;
    }
    if (!ok) {
      report.misses.push_back({{"line", q.line},
                               {"question", q.text},
                               {"expected", q.expected.empty() ? "-" : q.expected},
                               {"reply", r.text},
                               {"kind", r.kind}});
    }
  }
  if (asked > 0) report.mean_reply_ms = total_ms / asked;
  return report;
}

nlohmann::json to_json(const QuestionsReport& report) {
  auto share = [](int a, int n) { return n > 0 ? static_cast<double>(a) / n : 0.0; };
  return {{"in_scope", report.in_scope},
          {"not_in_memory", report.not_in_memory},
          {"answered_expected", report.answered_expected},
          {"accuracy", share(report.answered_expected, report.in_scope)},
          {"in_scope_declined", share(report.in_scope_declined, report.in_scope)},
          {"out_of_scope", report.out_of_scope},
          {"out_of_scope_declined", share(report.out_of_scope_declined, report.out_of_scope)},
          {"mean_reply_ms", report.mean_reply_ms},
          {"max_reply_ms", report.max_reply_ms},
          {"misses", report.misses},
          {"answers", report.answers}};
}

}  // namespace dself::persona
