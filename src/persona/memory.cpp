// The memory: persona.db, an FTS5 index of sentences and passages.
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cstdlib>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/workspace.h"
#include "persona/detail/meaning.h"
#include "persona/detail/text.h"
#include "persona/persona.h"

namespace dself::persona {

namespace fs = std::filesystem;

namespace {

// Bumped whenever how sentences, passages or the card are made changes: forces a rebuild.
constexpr const char* kIndexVersion = "persona-index-10";

// A concept that more vocabulary words reach than this is too general to say anything
// ("entity", "act"): it is left out of the lexicon.
constexpr int kMaxConceptWords = 40;
// Words kept as associates of a word (co-occurrence in the person's own talk).
constexpr size_t kAssociatesPerWord = 8;
// Sentences either side that tell what a candidate answer is about, and their share of its score.
constexpr int kTopicWindow = 3;
constexpr double kTopicWeight = 0.3;

class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) {
      throw EnvironmentError(fmt::format("persona.db: cannot prepare \"{}\": {}", sql, sqlite3_errmsg(db)));
    }
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  void bind(int i, const std::string& v) { sqlite3_bind_text(stmt_, i, v.c_str(), -1, SQLITE_TRANSIENT); }
  void bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind(int i, int v) { sqlite3_bind_int64(stmt_, i, v); }
  void bind(int i, double v) { sqlite3_bind_double(stmt_, i, v); }
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw EnvironmentError(fmt::format("persona.db: {}", sqlite3_errmsg(db_)));
  }
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::string text(int i) {
    auto* p = sqlite3_column_text(stmt_, i);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  int64_t integer(int i) { return sqlite3_column_int64(stmt_, i); }
  double real(int i) { return sqlite3_column_double(stmt_, i); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    throw EnvironmentError(fmt::format("persona.db: {} (in \"{}\")", text, sql.substr(0, 80)));
  }
}

std::string quoted_or_query(const std::vector<std::string>& terms) {
  // Every term is letters/digits/apostrophes only (words_of), so wrapping it in double quotes
  // makes it an FTS5 string: operators (AND, NEAR, *, ^, :, -) in the user's text are just words.
  std::string query;
  for (const auto& t : terms) {
    if (!query.empty()) query += " OR ";
    query += '"' + t + '"';
  }
  return query;
}

std::vector<std::string> unique_terms(std::string_view text) {
  std::vector<std::string> terms;
  std::set<std::string> seen;
  for (auto& w : content_words(text)) {
    if (seen.insert(w).second) terms.push_back(w);
  }
  return terms;
}

// The vocabulary with its document frequency, and every concept each word reaches (WordNet).
void write_lexicon(sqlite3* db, const std::map<std::string, int>& df) {
  Statement add_vocab(db, "INSERT INTO vocab VALUES (?1, ?2)");
  Statement add_concept(db, "INSERT INTO lexicon VALUES (?1, ?2, ?3)");
  const WordNet* wordnet = WordNet::get();
  for (const auto& [key, count] : df) {
    add_vocab.bind(1, key);
    add_vocab.bind(2, count);
    add_vocab.step();
    add_vocab.reset();
    if (!wordnet) continue;
    auto concepts = wordnet->concepts(key);
    auto add = [&](const std::vector<ConceptId>& ids, Reach reach) {
      for (auto id : ids) {
        add_concept.bind(1, id);
        add_concept.bind(2, key);
        add_concept.bind(3, static_cast<int>(reach));
        add_concept.step();
        add_concept.reset();
      }
    };
    add(concepts.own, Reach::kOwn);
    add(concepts.broader1, Reach::kBroader1);
    add(concepts.broader2, Reach::kBroader2);
  }
  exec(db, fmt::format("DELETE FROM lexicon WHERE concept IN (SELECT concept FROM lexicon GROUP BY concept "
                       "HAVING count(*) > {});"
                       "CREATE INDEX lexicon_concept ON lexicon (concept);",
                       kMaxConceptWords));
}

// Words that go together in the person's own talk: positive pointwise mutual information of two
// keys occurring in the same window (a sentence and the next one of the same source), the best
// few per key. ref: Church & Hanks 1990, "Word association norms, mutual information, and lexicography".
void write_associations(sqlite3* db, const std::vector<Sentence>& sentences,
                        const std::vector<std::vector<std::string>>& key_sets) {
  std::unordered_map<std::string, int> pair_count;
  std::unordered_map<std::string, int> window_count;
  size_t n_windows = 0;
  for (size_t i = 0; i < sentences.size(); ++i) {
    std::set<std::string> window(key_sets[i].begin(), key_sets[i].end());
    if (i + 1 < sentences.size() && sentences[i + 1].source_id == sentences[i].source_id) {
      window.insert(key_sets[i + 1].begin(), key_sets[i + 1].end());
    }
    ++n_windows;
    for (const auto& a : window) ++window_count[a];
    for (auto a = window.begin(); a != window.end(); ++a) {
      for (auto b = std::next(a); b != window.end(); ++b) ++pair_count[*a + ' ' + *b];
    }
  }
  std::map<std::string, std::vector<std::pair<double, std::string>>> best;
  double n = static_cast<double>(n_windows);
  for (const auto& [pair, count] : pair_count) {
    if (count < 2) continue;  // once is chance
    auto space = pair.find(' ');
    std::string a = pair.substr(0, space), b = pair.substr(space + 1);
    double pmi = std::log(count * n / (static_cast<double>(window_count[a]) * window_count[b]));
    if (pmi <= 0) continue;
    // Scaled to 0..1 by the largest PMI a pair can have here (both seen only together, twice).
    double weight = std::min(1.0, pmi / std::log(n / 2));
    best[a].emplace_back(weight, b);
    best[b].emplace_back(weight, a);
  }
  Statement add(db, "INSERT INTO assoc VALUES (?1, ?2, ?3)");
  for (auto& [key, others] : best) {
    std::sort(others.rbegin(), others.rend());
    if (others.size() > kAssociatesPerWord) others.resize(kAssociatesPerWord);
    for (const auto& [weight, other] : others) {
      add.bind(1, key);
      add.bind(2, other);
      add.bind(3, weight);
      add.step();
      add.reset();
    }
  }
  exec(db, "CREATE INDEX assoc_key ON assoc (key);");
}

}  // namespace

Memory::Memory(const fs::path& avatar, const PersonaParams& params) : avatar_(avatar), params_(params) {
  fs::path dir = workspace::transcripts_dir(avatar);
  std::vector<fs::path> files;
  if (fs::is_directory(dir)) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().extension() == ".json") files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    throw InputError(fmt::format("no transcripts in {}: run `dself --avatar {} prepare` first (after `ingest`)",
                                 dir.string(), avatar.string()));
  }
  std::map<int64_t, std::string> titles;
  if (fs::exists(workspace::catalog_path(avatar))) {
    Catalog catalog(avatar);
    for (const auto& s : catalog.sources()) titles[s.id] = s.title;
  }
  std::string inputs = fmt::format("{}|{}|{}|{}\n", kIndexVersion, params.sentence_pause_s, params.max_sentence_words,
                                   params.passage_sentences);
  std::vector<std::pair<int64_t, std::string>> contents;
  for (const auto& f : files) {
    int64_t id = 0;
    try {
      id = std::stoll(f.stem().string());
    } catch (const std::exception&) {
      continue;  // not a source's transcript
    }
    std::string bytes = read_file(f);
    inputs += fmt::format("{}|{}|{}\n", id, titles[id], hash_bytes(bytes));
    contents.emplace_back(id, std::move(bytes));
  }
  std::string input_hash = hash_bytes(inputs);

  fs::path db_path = workspace::persona_db_path(avatar);
  if (sqlite3_open(db_path.c_str(), &db_) != SQLITE_OK) {
    std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw EnvironmentError(fmt::format("cannot open {}: {}", db_path.string(), message));
  }
  sqlite3_busy_timeout(db_, 5000);
  exec(db_,
       "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);");

  std::string stored_hash;
  std::string stored_card;
  {
    Statement q(db_, "SELECT key, value FROM meta");
    while (q.step()) {
      if (q.text(0) == "input_hash") stored_hash = q.text(1);
      if (q.text(0) == "card") stored_card = q.text(1);
      if (q.text(0) == "names") {
        for (const auto& n : nlohmann::json::parse(q.text(1), nullptr, false)) {
          if (n.is_string()) names_.insert(n.get<std::string>());
        }
      }
    }
  }
  if (stored_hash == input_hash && !stored_card.empty()) {
    card_ = card_from_json(nlohmann::json::parse(stored_card));
    if (!fs::exists(workspace::persona_card_path(avatar))) write_file_atomic(workspace::persona_card_path(avatar), to_json(card_).dump(2) + "\n");
  } else {
    std::vector<Sentence> sentences;
    for (const auto& [id, bytes] : contents) {
      nlohmann::json json;
      try {
        json = nlohmann::json::parse(bytes);
      } catch (const nlohmann::json::exception& e) {
        throw InputError(
            fmt::format("{}/{}.json is not valid JSON ({}): run `dself prepare` again", dir.string(), id, e.what()));
      }
      auto title = titles.count(id) ? titles[id] : fmt::format("source {}", id);
      auto s = split_sentences(json, id, title, params);
      sentences.insert(sentences.end(), s.begin(), s.end());
    }
    rebuild(sentences, input_hash);
  }
  Statement count(db_, "SELECT (SELECT count(*) FROM units), (SELECT count(*) FROM sentences)");
  if (count.step()) {
    n_units_ = static_cast<int>(count.integer(0));
    n_sentences_ = static_cast<int>(count.integer(1));
  }
}

Memory::~Memory() { sqlite3_close(db_); }

void Memory::rebuild(const std::vector<Sentence>& sentences, const std::string& input_hash) {
  card_ = build_card(sentences);
  names_ = capitalised_words(sentences);
  exec(db_, "BEGIN");
  try {
    exec(db_,
         "DROP TABLE IF EXISTS units; DROP TABLE IF EXISTS sentences; DROP TABLE IF EXISTS vocab;"
         "DROP TABLE IF EXISTS lexicon; DROP TABLE IF EXISTS assoc;"
         "CREATE TABLE sentences (source_id INTEGER NOT NULL, idx INTEGER NOT NULL, title TEXT NOT NULL,"
         " start_s REAL NOT NULL, end_s REAL NOT NULL, text TEXT NOT NULL, keys TEXT NOT NULL,"
         " PRIMARY KEY (source_id, idx));"
         "CREATE VIRTUAL TABLE units USING fts5(text, keys, kind UNINDEXED, source_id UNINDEXED, title UNINDEXED,"
         " first_sentence UNINDEXED, n_sentences UNINDEXED, start_s UNINDEXED, end_s UNINDEXED,"
         " tokenize = 'porter unicode61');"
         "CREATE TABLE vocab (key TEXT PRIMARY KEY, df INTEGER NOT NULL) WITHOUT ROWID;"
         "CREATE TABLE lexicon (concept INTEGER NOT NULL, key TEXT NOT NULL, reach INTEGER NOT NULL);"
         "CREATE TABLE assoc (key TEXT NOT NULL, other TEXT NOT NULL, weight REAL NOT NULL);");
    // Each sentence's content words as matching keys (lemmas), once per sentence.
    std::vector<std::string> keys(sentences.size());
    std::vector<std::vector<std::string>> key_sets(sentences.size());
    std::map<std::string, int> df;
    for (size_t i = 0; i < sentences.size(); ++i) {
      std::set<std::string> seen;
      for (auto& k : content_keys(sentences[i].text)) {
        if (seen.insert(k).second) key_sets[i].push_back(std::move(k));
      }
      for (const auto& k : key_sets[i]) {
        if (!keys[i].empty()) keys[i] += ' ';
        keys[i] += k;
        ++df[k];
      }
    }
    Statement add_sentence(db_, "INSERT INTO sentences VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    Statement add_unit(db_, "INSERT INTO units VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    auto unit = [&](const std::string& kind, size_t first, size_t n) {
      std::string text, unit_keys;
      for (size_t i = first; i < first + n; ++i) {
        if (i != first) text += ' ', unit_keys += ' ';
        text += sentences[i].text;
        unit_keys += keys[i];
      }
      add_unit.bind(1, text);
      add_unit.bind(2, unit_keys);
      add_unit.bind(3, kind);
      add_unit.bind(4, sentences[first].source_id);
      add_unit.bind(5, sentences[first].title);
      add_unit.bind(6, sentences[first].index);
      add_unit.bind(7, static_cast<int64_t>(n));
      add_unit.bind(8, sentences[first].start_s);
      add_unit.bind(9, sentences[first + n - 1].end_s);
      add_unit.step();
      add_unit.reset();
    };
    size_t window = static_cast<size_t>(std::max(2, params_.passage_sentences));
    for (size_t i = 0; i < sentences.size(); ++i) {
      const auto& s = sentences[i];
      add_sentence.bind(1, s.source_id);
      add_sentence.bind(2, s.index);
      add_sentence.bind(3, s.title);
      add_sentence.bind(4, s.start_s);
      add_sentence.bind(5, s.end_s);
      add_sentence.bind(6, s.text);
      add_sentence.bind(7, keys[i]);
      add_sentence.step();
      add_sentence.reset();
      unit("sentence", i, 1);
      // Passages: windows of `window` consecutive sentences of one source, step 1.
      size_t end = i;
      while (end < sentences.size() && sentences[end].source_id == s.source_id && end - i < window) ++end;
      if (end - i >= 2 && (end - i == window || i == 0 || sentences[i - 1].source_id != s.source_id)) {
        unit("passage", i, end - i);
      }
    }
    write_lexicon(db_, df);
    write_associations(db_, sentences, key_sets);
    Statement meta(db_, "INSERT OR REPLACE INTO meta VALUES (?1, ?2)");
    meta.bind(1, std::string("input_hash"));
    meta.bind(2, input_hash);
    meta.step();
    meta.reset();
    meta.bind(1, std::string("card"));
    meta.bind(2, to_json(card_).dump());
    meta.step();
    meta.reset();
    meta.bind(1, std::string("names"));
    meta.bind(2, nlohmann::json(names_).dump());
    meta.step();
    exec(db_, "COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
  write_file_atomic(workspace::persona_card_path(avatar_), to_json(card_).dump(2) + "\n");
  rebuilt_ = true;
}

int Memory::sentence_count() const {
  Statement q(db_, "SELECT count(*) FROM sentences");
  return q.step() ? static_cast<int>(q.integer(0)) : 0;
}

std::vector<Hit> Memory::search(std::string_view text, int k) const {
  std::vector<Hit> hits;
  auto terms = unique_terms(text);
  if (terms.empty() || k <= 0) return hits;
  Statement q(db_,
              "SELECT text, kind, source_id, title, first_sentence, n_sentences, start_s, end_s, bm25(units) "
              "FROM units WHERE units MATCH ?1 ORDER BY bm25(units) LIMIT ?2");
  q.bind(1, quoted_or_query(terms));
  q.bind(2, k * 6);
  while (q.step() && static_cast<int>(hits.size()) < k) {
    Hit hit;
    hit.ref.text = q.text(0);
    hit.kind = q.text(1);
    hit.ref.source_id = q.integer(2);
    hit.ref.title = q.text(3);
    hit.first_sentence = static_cast<int>(q.integer(4));
    hit.n_sentences = static_cast<int>(q.integer(5));
    hit.ref.start_s = q.real(6);
    hit.ref.end_s = q.real(7);
    hit.score = -q.real(8);
    // Overlapping units say the same thing: keep the better-ranked one.
    bool overlaps = false;
    for (const auto& h : hits) {
      if (h.ref.source_id != hit.ref.source_id) continue;
      int a0 = h.first_sentence, a1 = h.first_sentence + h.n_sentences;
      int b0 = hit.first_sentence, b1 = hit.first_sentence + hit.n_sentences;
      int overlap = std::min(a1, b1) - std::max(a0, b0);
      if (overlap * 2 > hit.n_sentences || (overlap > 0 && hit.n_sentences == 1)) overlaps = true;
    }
    if (!overlaps) hits.push_back(hit);
  }
  return hits;
}

double Memory::term_idf(const std::string& term) const {
  Statement q(db_, "SELECT count(*) FROM units WHERE units MATCH ?1");
  q.bind(1, quoted_or_query({term}));
  double df = q.step() ? static_cast<double>(q.integer(0)) : 0;
  return std::log((n_units_ + 1.0) / (df + 0.5));
}

double Memory::coverage(std::string_view query, std::string_view unit_text) const {
  auto terms = unique_terms(query);
  if (terms.empty()) return 0;
  std::set<std::string> unit_stems;
  for (auto& w : words_of(unit_text)) unit_stems.insert(stem(w));
  double total = 0, matched = 0;
  for (const auto& t : terms) {
    double idf = std::max(0.1, term_idf(t));
    total += idf;
    if (unit_stems.count(stem(t))) matched += idf;
  }
  return total > 0 ? matched / total : 0;
}

std::vector<Sentence> Memory::sentences(int64_t source_id, int first, int count) const {
  std::vector<Sentence> out;
  Statement q(db_,
              "SELECT source_id, idx, title, start_s, end_s, text FROM sentences WHERE source_id = ?1 AND idx >= ?2 "
              "ORDER BY idx LIMIT ?3");
  q.bind(1, source_id);
  q.bind(2, first);
  q.bind(3, count);
  while (q.step()) {
    out.push_back(Sentence{q.integer(0), q.text(2), static_cast<int>(q.integer(1)), q.real(3), q.real(4), q.text(5)});
  }
  return out;
}

std::vector<Sentence> Memory::all_sentences() const {
  std::vector<Sentence> out;
  Statement q(db_, "SELECT source_id, idx, title, start_s, end_s, text FROM sentences ORDER BY source_id, idx");
  while (q.step()) {
    out.push_back(Sentence{q.integer(0), q.text(2), static_cast<int>(q.integer(1)), q.real(3), q.real(4), q.text(5)});
  }
  return out;
}

double Memory::key_idf(const std::string& key) const {
  Statement q(db_, "SELECT df FROM vocab WHERE key = ?1");
  q.bind(1, key);
  double df = q.step() ? static_cast<double>(q.integer(0)) : 0;
  return std::log((n_sentences_ + 1.0) / (df + 0.5));
}

std::vector<std::pair<std::string, double>> Memory::related_keys(const std::string& key) const {
  std::map<std::string, double> related;
  auto keep = [&](const std::string& other, double sim) {
    if (other == key) return;
    auto& v = related[other];
    v = std::max(v, sim);
  };
  if (const WordNet* wordnet = WordNet::get()) {
    // How alike two words are by the concepts they share, by how far up each had to go: a
    // synonym or word family, a narrower word of the question's (gull for seabird), a broader one,
    // a sibling under the same parent. The figures are judgement, checked on the development set.
    static constexpr double kSimilarity[3][3] = {{0.85, 0.6, 0.45}, {0.55, 0.35, 0.2}, {0.45, 0.2, 0}};
    auto concepts = wordnet->concepts(key);
    std::map<ConceptId, int> reach;
    for (auto c : concepts.own) reach[c] = 0;
    for (auto c : concepts.broader1) reach.emplace(c, 1);
    for (auto c : concepts.broader2) reach.emplace(c, 2);
    if (!reach.empty()) {
      std::string ids;
      for (const auto& [c, r] : reach) ids += (ids.empty() ? "" : ",") + std::to_string(c);
      Statement q(db_, "SELECT concept, key, reach FROM lexicon WHERE concept IN (" + ids + ")");
      while (q.step()) {
        int qr = reach[q.integer(0)];
        int wr = static_cast<int>(q.integer(2));
        if (qr <= 2 && wr <= 2) keep(q.text(1), kSimilarity[qr][wr]);
      }
    }
  }
  // Words the person says together: weaker than a synonym, but they know their own topics.
  Statement q(db_, "SELECT other, weight FROM assoc WHERE key = ?1");
  q.bind(1, key);
  while (q.step()) keep(q.text(0), 0.3 * q.real(1));
  std::vector<std::pair<std::string, double>> out;
  for (const auto& [k, v] : related) {
    if (v > 0) out.emplace_back(k, v);
  }
  return out;
}

namespace {

// The question's own content words as keys: without the word after "how" ("how long", "how
// old"), which says what kind of answer is wanted, not what it is about.
std::vector<std::string> question_keys(std::string_view question) {
  auto words = words_of(question);
  std::string text;
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0 && words[i - 1] == "how") continue;
    text += words[i] + ' ';
  }
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (auto& key : content_keys(text, true)) {
    if (seen.insert(key).second) out.push_back(key);
  }
  return out;
}

struct Term {
  std::string key;
  double weight = 0;
  std::map<std::string, double> related;  // other keys and how alike they are (0..1)
};

std::vector<std::string> split_keys(const std::string& keys) {
  std::vector<std::string> out;
  for (auto k : split_spaces(keys)) out.emplace_back(k);
  return out;
}

// The IDF-weighted share of the terms found in a sentence's keys, each by its best match.
double covered(const std::vector<Term>& terms, const std::vector<std::string>& keys) {
  double total = 0, got = 0;
  for (const auto& t : terms) {
    double best = 0;
    for (const auto& k : keys) {
      if (k == t.key) {
        best = 1;
        break;
      }
      auto it = t.related.find(k);
      if (it != t.related.end()) best = std::max(best, it->second);
    }
    total += t.weight;
    got += t.weight * best;
  }
  return total > 0 ? got / total : 0;
}

}  // namespace

std::vector<Match> Memory::match(std::string_view question, int k, const MatchContext* context) const {
  std::vector<Match> out;
  double unknown_idf = std::log((n_sentences_ + 1.0) / 0.5);
  auto make_terms = [&](const std::vector<std::string>& keys) {
    std::vector<Term> terms;
    for (const auto& key : keys) {
      Term t{key, key_idf(key), {}};
      for (const auto& [other, sim] : related_keys(key)) t.related[other] = sim;
      // A word the person never said weighs the most, unless it means something they did say or
      // is a common word of many senses ("give", "worse"), which says little about the topic.
      if (t.weight >= unknown_idf - 1e-9) {
        if (!t.related.empty()) t.weight *= 0.8;
        if (const WordNet* wordnet = WordNet::get()) {
          int senses = wordnet->senses(key);
          if (senses > 1) t.weight /= 1 + std::log(static_cast<double>(senses)) / 2;
        }
      }
      terms.push_back(std::move(t));
    }
    return terms;
  };
  auto terms = make_terms(question_keys(question));
  std::string type = question_type(question);
  // A follow-up with at most one word of its own leans on what the conversation was about.
  std::vector<Term> context_terms;
  bool follow_up = context && context->source_id != 0 && terms.size() <= 1;
  if (follow_up) context_terms = make_terms(question_keys(context->text));
  if (terms.empty() && context_terms.empty()) return out;

  // Stage 1: BM25 over the words, their keys and their closest related keys, OR-ed.
  std::vector<std::string> query_terms;
  std::set<std::string> in_query;
  auto add_query = [&](const std::string& t) {
    if (in_query.insert(t).second) query_terms.push_back(t);
  };
  for (const auto& w : content_words(question)) add_query(w);
  for (const auto* list : {&terms, &context_terms}) {
    for (const auto& t : *list) {
      add_query(t.key);
      std::vector<std::pair<double, std::string>> ranked;
      for (const auto& [other, sim] : t.related) ranked.emplace_back(sim, other);
      std::sort(ranked.rbegin(), ranked.rend());
      for (size_t i = 0; i < ranked.size() && i < 12; ++i) add_query(ranked[i].second);
    }
  }
  struct Candidate {
    Sentence sentence;
    std::vector<std::string> keys;
    int rank = 0;
  };
  std::vector<Candidate> candidates;
  std::set<std::pair<int64_t, int>> seen;
  {
    Statement units(db_,
                    "SELECT source_id, first_sentence, n_sentences FROM units WHERE units MATCH ?1 "
                    "ORDER BY bm25(units) LIMIT ?2");
    Statement sentence(db_,
                       "SELECT source_id, idx, title, start_s, end_s, text, keys FROM sentences "
                       "WHERE source_id = ?1 AND idx >= ?2 AND idx < ?3 ORDER BY idx");
    units.bind(1, quoted_or_query(query_terms));
    units.bind(2, params_.match_units);
    int rank = 0;
    while (units.step()) {
      sentence.bind(1, units.integer(0));
      sentence.bind(2, units.integer(1));
      sentence.bind(3, units.integer(1) + units.integer(2));
      while (sentence.step()) {
        Sentence s{sentence.integer(0), sentence.text(2), static_cast<int>(sentence.integer(1)),
                   sentence.real(3), sentence.real(4), sentence.text(5)};
        if (!seen.insert({s.source_id, s.index}).second) continue;
        candidates.push_back(Candidate{std::move(s), split_keys(sentence.text(6)), rank});
      }
      sentence.reset();
      ++rank;
    }
  }

  // Stage 2: re-rank by meaning. A sentence answers best when it says what was asked and the
  // sentences around it are about the same thing (a visitor names the topic, "in the garden",
  // that the answer itself leaves out).
  Statement around(db_, "SELECT keys FROM sentences WHERE source_id = ?1 AND idx BETWEEN ?2 AND ?3");
  for (const auto& c : candidates) {
    std::vector<std::string> window_keys;
    around.bind(1, c.sentence.source_id);
    around.bind(2, c.sentence.index - kTopicWindow);
    around.bind(3, c.sentence.index + kTopicWindow);
    while (around.step()) {
      for (auto& key : split_keys(around.text(0))) window_keys.push_back(std::move(key));
    }
    around.reset();
    double score = (1 - kTopicWeight) * covered(terms, c.keys) + kTopicWeight * covered(terms, window_keys);
    if (follow_up) {
      // Its own words count double the conversation's; near the last answer is where it goes on.
      double own_weight = terms.empty() ? 0 : 2;
      double mixed = (own_weight * score + covered(context_terms, c.keys)) / (own_weight + 1);
      bool near = c.sentence.source_id == context->source_id &&
                  std::abs(c.sentence.index - context->sentence_index) <= 4;
      score = mixed + (near ? 0.15 : 0);
    }
    if (!type.empty()) score += answers_type(type, c.sentence.text) ? 0.08 : -0.12;
    // Ties go to the better BM25 rank.
    score += 0.02 / (1 + c.rank);
    out.push_back(Match{c.sentence, std::clamp(score, 0.0, 1.0), type});
  }
  std::stable_sort(out.begin(), out.end(), [](const Match& a, const Match& b) { return a.confidence > b.confidence; });
  if (std::getenv("DSELF_PERSONA_DEBUG")) {
    for (const auto& t : terms) {
      std::string rel;
      for (const auto& [o, v] : t.related) rel += fmt::format(" {}:{:.2f}", o, v);
      fmt::print(stderr, "term {} w={:.2f} type={} |{}\n", t.key, t.weight, type, rel);
    }
    for (size_t i = 0; i < out.size() && i < 5; ++i) fmt::print(stderr, "  {:.3f} {}\n", out[i].confidence, out[i].sentence.text);
  }
  if (static_cast<int>(out.size()) > k) out.resize(static_cast<size_t>(k));
  return out;
}

}  // namespace dself::persona
