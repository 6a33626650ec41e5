// The memory: persona.db, an FTS5 index of sentences and passages.
#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/workspace.h"
#include "persona/detail/text.h"
#include "persona/persona.h"

namespace dself::persona {

namespace fs = std::filesystem;

namespace {

// Bumped whenever how sentences, passages or the card are made changes: forces a rebuild.
constexpr const char* kIndexVersion = "persona-index-5";

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
  Statement count(db_, "SELECT count(*) FROM units");
  if (count.step()) n_units_ = static_cast<int>(count.integer(0));
}

Memory::~Memory() { sqlite3_close(db_); }

void Memory::rebuild(const std::vector<Sentence>& sentences, const std::string& input_hash) {
  card_ = build_card(sentences);
  exec(db_, "BEGIN");
  try {
    exec(db_,
         "DROP TABLE IF EXISTS units; DROP TABLE IF EXISTS sentences;"
         "CREATE TABLE sentences (source_id INTEGER NOT NULL, idx INTEGER NOT NULL, title TEXT NOT NULL,"
         " start_s REAL NOT NULL, end_s REAL NOT NULL, text TEXT NOT NULL, PRIMARY KEY (source_id, idx));"
         "CREATE VIRTUAL TABLE units USING fts5(text, kind UNINDEXED, source_id UNINDEXED, title UNINDEXED,"
         " first_sentence UNINDEXED, n_sentences UNINDEXED, start_s UNINDEXED, end_s UNINDEXED,"
         " tokenize = 'porter unicode61');");
    Statement add_sentence(db_, "INSERT INTO sentences VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    Statement add_unit(db_, "INSERT INTO units VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    auto unit = [&](const std::string& kind, size_t first, size_t n) {
      std::string text;
      for (size_t i = first; i < first + n; ++i) {
        if (i != first) text += ' ';
        text += sentences[i].text;
      }
      add_unit.bind(1, text);
      add_unit.bind(2, kind);
      add_unit.bind(3, sentences[first].source_id);
      add_unit.bind(4, sentences[first].title);
      add_unit.bind(5, sentences[first].index);
      add_unit.bind(6, static_cast<int64_t>(n));
      add_unit.bind(7, sentences[first].start_s);
      add_unit.bind(8, sentences[first + n - 1].end_s);
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
    Statement meta(db_, "INSERT OR REPLACE INTO meta VALUES (?1, ?2)");
    meta.bind(1, std::string("input_hash"));
    meta.bind(2, input_hash);
    meta.step();
    meta.reset();
    meta.bind(1, std::string("card"));
    meta.bind(2, to_json(card_).dump());
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

}  // namespace dself::persona
