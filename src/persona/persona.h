// The persona stage: a searchable memory of everything the person said (SQLite FTS5, BM25),
// a persona card (their distinctive words, greetings, sign-offs, first-person facts), and chat
// engines that answer as the person, each reply pointing at the moments it came from.
// Files: <avatar>/persona.db and <avatar>/persona.json (docs/FORMATS.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace dself::persona {

struct PersonaParams {
  double sentence_pause_s = 0.35;   // a pause at least this long ends a sentence (captions without punctuation)
  int max_sentence_words = 30;      // a sentence longer than this is cut (words)
  int passage_sentences = 3;        // sentences per passage (sliding window, step 1)
  size_t max_message_chars = 4000;  // longest message accepted (characters: code points, not bytes)
  int retrieve_k = 5;               // passages retrieved per reply
  double min_coverage = 0.5;        // IDF-weighted share of the question's terms a reply must match
  int max_reply_sentences = 2;      // sentences in one extractive reply
  int match_units = 40;             // BM25 units re-ranked by meaning per question
  // Least confidence (Match::confidence) to answer rather than decline; calibrated on the
  // development questions (tests/data/persona_questions.tsv, docs/FORMATS.md).
  double min_confidence = 0.6;
};

// Where a piece of text was said.
struct SourceRef {
  int64_t source_id = 0;
  std::string title;
  double start_s = 0;
  double end_s = 0;
  std::string text;  // what was said there
};

// One retrieved sentence or passage; score is -bm25 (higher is better).
struct Hit {
  SourceRef ref;
  std::string kind;        // "sentence" or "passage"
  int first_sentence = 0;  // index of its first sentence within the source
  int n_sentences = 1;
  double score = 0;
};

// A sentence of a source, as rebuilt from the transcript's words.
struct Sentence {
  int64_t source_id = 0;
  std::string title;
  int index = 0;
  double start_s = 0;
  double end_s = 0;
  std::string text;
};

// Builds sentences from a transcript's words: a word ending in . ? ! ends one; without
// punctuation (automatic captions), a pause of sentence_pause_s ends one, where the pause after
// a word is its start-to-next-start time beyond what its length in letters takes at the
// transcript's median speaking rate (caption words end where the next starts, so gaps alone
// do not show pauses); a sentence never exceeds max_sentence_words.
std::vector<Sentence> split_sentences(const nlohmann::json& transcript, int64_t source_id, const std::string& title,
                                      const PersonaParams& params = {});

// The persona card (persona.json); JSON shape in docs/FORMATS.md.
struct PersonaCard {
  struct Term {
    std::string text;
    int count = 0;
  };
  int n_sources = 0;
  int n_sentences = 0;
  int n_words = 0;
  double mean_sentence_words = 0;
  double median_sentence_words = 0;
  std::vector<Term> distinctive_terms;    // frequent words that are not common English
  std::vector<Term> distinctive_phrases;  // frequent 2-3 word phrases of content words
  std::vector<Term> recurring_phrases;    // 4-10 word phrases said in more than one source (or 3+ times)
  std::vector<SourceRef> greetings;       // how the person opens a video (recurring across sources)
  std::vector<SourceRef> sign_offs;       // how the person closes one
  std::vector<SourceRef> facts;           // first-person statements ("I started...", "My ... is ...")
  std::vector<std::string> suggested_questions;  // "Tell me about your cello.": from distinctive words said after "my"
};

nlohmann::json to_json(const PersonaCard& card);
PersonaCard card_from_json(const nlohmann::json& json);

// A sentence that may answer a question, and how sure the memory is that it does (0..1): the
// IDF-weighted share of the question's content words found in it, as themselves, their word
// family, a WordNet synonym or broader/narrower term, or a word they go with in the person's own
// talk; raised when it holds what the question type asks for (a duration for "how long").
struct Match {
  Sentence sentence;
  double confidence = 0;
  std::string question_type;  // "duration", "age", "person", ... or "" (see detail/meaning.h)
};

// The conversation a question leans on: the last answer (its sentence) and the text before it.
struct MatchContext {
  std::string text;        // the previous question and answer
  int64_t source_id = 0;   // where the last answer was said (0: nowhere)
  int sentence_index = -1; // the last answer's sentence
};

// The memory: <avatar>/persona.db, indexing every transcript in <avatar>/transcripts/ as
// sentences and passages (FTS5, porter stemming, BM25), rebuilt when the transcripts change
// (hash of their bytes, the titles and the params). Conversations are kept in the catalog.
class Memory {
 public:
  // Opens or rebuilds the index (and persona.json). Throws InputError when the avatar has no
  // transcripts (run `dself prepare`).
  explicit Memory(const std::filesystem::path& avatar, const PersonaParams& params = {});
  ~Memory();
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;

  bool rebuilt() const { return rebuilt_; }  // true when this open (re)built the index
  const std::filesystem::path& avatar() const { return avatar_; }
  const PersonaCard& card() const { return card_; }
  // Words the transcripts write capitalised (names, places), lower case: for readable replies.
  const std::set<std::string>& names() const { return names_; }
  const PersonaParams& params() const { return params_; }
  int sentence_count() const;

  // Top k sentences/passages for free text, best first, overlapping ones dropped. Any text is
  // safe: it is reduced to quoted content words, never passed to FTS as syntax.
  std::vector<Hit> search(std::string_view text, int k) const;

  // The share (0..1) of the text's content terms, weighted by IDF over the index, that occur in
  // the given sentence/passage text. Unknown terms weigh the most.
  double coverage(std::string_view query, std::string_view unit_text) const;

  // The k best sentences for a question by meaning, best first: BM25 over the question's words
  // and their related keys finds the candidates, the meaning signals re-rank them (Match).
  // With a context, a question with few words of its own (a follow-up) leans on it.
  std::vector<Match> match(std::string_view question, int k, const MatchContext* context = nullptr) const;

  // The sentences of a source from first, up to count.
  std::vector<Sentence> sentences(int64_t source_id, int first, int count) const;
  std::vector<Sentence> all_sentences() const;


 private:
  void rebuild(const std::vector<Sentence>& sentences, const std::string& input_hash);
  double term_idf(const std::string& term) const;
  double key_idf(const std::string& key) const;
  std::vector<std::pair<std::string, double>> related_keys(const std::string& key) const;

  std::filesystem::path avatar_;
  PersonaParams params_;
  PersonaCard card_;
  std::set<std::string> names_;
  sqlite3* db_ = nullptr;
  bool rebuilt_ = false;
  int n_units_ = 0;
  int n_sentences_ = 0;
};

// Content words of free text: lower-case letter/digit runs (apostrophes kept inside), without
// common English words. Used for FTS queries, coverage, and the card.
std::vector<std::string> content_words(std::string_view text);
bool is_common_english(const std::string& word);

struct Message {
  std::string role;  // "user" or "assistant"
  std::string text;
  std::vector<SourceRef> sources;
};

// An earlier conversation kept in the catalog (<avatar>/dself.db), as the history a reply leans
// on: each message with where each reply was said. Throws InputError for an unknown id.
std::vector<Message> conversation_history(const std::filesystem::path& avatar, int64_t conversation_id);

struct Reply {
  std::string text;
  std::vector<SourceRef> sources;
  bool grounded = false;  // false: a canned answer (not talked about it, another language)
  std::string kind;       // "answer", "greeting", "thanks", "unknown", "language"
  bool stopped = false;   // the text callback asked to stop: text is what came before
};

// Called with each piece of reply text as it is produced; returns true to go on, false to stop
// the reply (as whisper.cpp's abort callback does). Engines call it from inside C libraries
// (libcurl's write callback), so it must not throw.
using TextCallback = std::function<bool(std::string_view piece)>;

// A way of answering as the person.
class ChatEngine {
 public:
  virtual ~ChatEngine() = default;
  virtual std::string name() const = 0;
  // Answers the last user message of history, streaming text through on_text; when on_text
  // returns false, stops and returns what it had with Reply::stopped set.
  virtual Reply reply(const std::vector<Message>& history, const TextCallback& on_text) = 0;
};

// The default engine, with no model: the person's own sentences, chosen by retrieval.
std::unique_ptr<ChatEngine> make_extractive_engine(const Memory& memory);

// An OpenAI-compatible chat completions server (POST <url>/chat/completions, stream: true,
// server-sent events). The system prompt is the persona card plus the passages retrieved for
// the question, with the instruction to speak as the person and stay within what they said.
struct OpenAiOptions {
  std::string url;                // base URL, e.g. http://127.0.0.1:8000/v1 (or the full .../chat/completions)
  std::string model;              // model name the server knows
  std::string api_key;            // sent as a Bearer token when set ($DSELF_LLM_API_KEY)
  double timeout_s = 120;         // whole request, seconds
  double connect_timeout_s = 10;  // connecting, seconds
  int max_tokens = 400;           // longest reply, tokens
};

// Throws InputError (exit 1) naming the flag when the options cannot work: a URL that is not
// http(s), no model, a timeout that is not a positive number of seconds.
void check_openai_options(const OpenAiOptions& options);

// Throws EnvironmentError (exit 2) naming the URL for a refused connection, a timeout, an HTTP
// error status (with the server's message) or a malformed stream.
std::unique_ptr<ChatEngine> make_openai_engine(const Memory& memory, const OpenAiOptions& options);

// A local chat model (src/llm): a Hugging Face Llama-family checkpoint directory the user has
// (SmolLM2, Qwen2/2.5, Llama 3.x -Instruct). The
// extractive engine decides whether the person talked about the question (greetings, thanks and
// questions with no support get its answer, as with the other engines' declines); otherwise the
// model answers from the system prompt (the persona card and the retrieved passages, the same as
// the openai engine's), streamed token by token, and the reply lists those passages as sources.
struct LlmOptions {
  std::filesystem::path model_dir;  // config.json, model.safetensors, tokenizer.json, tokenizer_config.json
  int max_tokens = 160;             // longest reply, tokens
  double temperature = 0.7;         // 0: greedy
  double top_p = 0.9;
  int top_k = 40;
  double repetition_penalty = 1.1;
  uint64_t seed = 1;                // same seed, same question: same reply
  int context_length = 2048;        // tokens the cache holds (at most the model's own)
  int threads = 0;                  // libtorch threads; 0: leave as it is
  // A LoRA adapter (PEFT layout) applied to the model; empty: the person's own (models/persona, from
  // `dself train persona`) when it was trained on this model_dir, else none.
  std::filesystem::path adapter_dir;
  bool no_adapter = false;          // run the base model even when the person's adapter matches it
  bool merge_adapter = false;       // merge the adapter into the weights at load (no cost per token)
};

// The person's adapter (<avatar>/models/persona) when it was trained on the checkpoint in
// model_dir (the base fingerprint in its metrics.json matches); empty otherwise.
std::filesystem::path person_adapter(const std::filesystem::path& avatar, const std::filesystem::path& model_dir);

// Loads (once per process and model directory; later engines share it) the model, its tokenizer
// and chat template. Throws InputError naming the file for a missing or malformed checkpoint, an
// unknown architecture or template, a model too big for memory.
std::unique_ptr<ChatEngine> make_llm_engine(const Memory& memory, const LlmOptions& options);

// Throws InputError when a message is empty or longer than params.max_message_chars characters
// (Unicode code points of its UTF-8, not bytes).
void check_message(std::string_view message, const PersonaParams& params);

// Held-out retrieval evaluation (see docs): a question per sampled sentence from its content
// words; recall@1/@5 of the sentence among the retrieved units, and how often the extractive
// reply contains it.
struct EvalReport {
  int n_questions = 0;
  double recall_at_1 = 0;
  double recall_at_5 = 0;
  double reply_contains = 0;
  double mean_reply_ms = 0;
  double two_word_recall_at_1 = 0;  // the same, asking with only the two rarest content words
  double two_word_recall_at_5 = 0;
  std::vector<nlohmann::json> examples;  // first few questions with their replies
};
EvalReport evaluate(const Memory& memory, int max_questions);
nlohmann::json to_json(const EvalReport& report);

// A hand-written question and the sentence that answers it ("" when the person never talked
// about it: the right reply declines).
struct Question {
  std::string text;
  std::string expected;
  int line = 0;  // in the questions file
};

// Reads a questions file (docs/FORMATS.md): UTF-8 lines "question<TAB>expected sentence" or
// "question<TAB>-"; blank lines and lines starting with # are skipped. Throws InputError naming
// the file and line of a bad line, and for a file with no questions.
std::vector<Question> read_questions(const std::filesystem::path& file, const PersonaParams& params = {});

// How the extractive engine does on hand-written questions, each asked in a new conversation.
// A question whose expected sentence is not in this avatar's memory (another sample person's
// videos may not say it) is counted apart and left out of the accuracy.
struct QuestionsReport {
  int in_scope = 0;            // questions with an expected sentence found in the memory
  int not_in_memory = 0;       // expected sentence not found in this memory: not asked
  int answered_expected = 0;   // the reply contains the expected sentence
  int in_scope_declined = 0;   // in scope, but declined
  int out_of_scope = 0;
  int out_of_scope_declined = 0;
  double mean_reply_ms = 0;
  double max_reply_ms = 0;
  std::vector<nlohmann::json> misses;   // every wrong answer: line, question, expected, reply, kind
  std::vector<nlohmann::json> answers;  // every question asked: line, in_scope, confidence, best_is_expected
};
QuestionsReport evaluate_questions(const Memory& memory, const std::vector<Question>& questions);
nlohmann::json to_json(const QuestionsReport& report);

}  // namespace dself::persona
