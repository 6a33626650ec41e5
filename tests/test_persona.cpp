// The persona stage: the memory index, the persona card, the extractive chat engine and the
// `dself chat` command, on the sample person prepared by the real binary, plus bad input.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "persona/persona.h"
#include "core/catalog.h"
#include "persona/detail/meaning.h"
#include "persona/detail/text.h"
#include "support.h"

namespace dself {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// One prepared avatar of the sample person, shared by the tests of this file (prepare takes ~10 s).
class PersonaTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // The sample person ingested and prepared (the prepared_avatar fixture), copied: chat writes
    // conversations into it. Preparing here would cost every test (each runs in its own process).
    dir_ = new test::TempDir();
    avatar_ = test::copy_avatar(dir_->path()).string();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static nlohmann::json truth_sentences() {
    nlohmann::json all = nlohmann::json::array();
    for (const auto& entry : fs::directory_iterator(test::sample_dir())) {
      std::string name = entry.path().filename().string();
      if (name.size() > 11 && name.substr(name.size() - 11) == ".truth.json") {
        std::ifstream in(entry.path());
        auto truth = nlohmann::json::parse(in);
        for (const auto& s : truth["sentences"]) all.push_back(s);
      }
    }
    return all;
  }
  static test::TempDir* dir_;
  static std::string avatar_;
};
test::TempDir* PersonaTest::dir_ = nullptr;
std::string PersonaTest::avatar_;

TEST(PersonaText, SentencesFromAutoCaptionWordsSplitAtPausesAndPunctuation) {
  // Auto captions: no punctuation, each word ends where the next starts; "train" spans a pause.
  nlohmann::json transcript = {{"words",
                                {{{"text", "we"}, {"start_s", 0.0}, {"end_s", 0.2}},
                                 {{"text", "took"}, {"start_s", 0.2}, {"end_s", 0.45}},
                                 {{"text", "the"}, {"start_s", 0.45}, {"end_s", 0.6}},
                                 {{"text", "train"}, {"start_s", 0.6}, {"end_s", 2.0}},
                                 {{"text", "it"}, {"start_s", 2.0}, {"end_s", 2.1}},
                                 {{"text", "was"}, {"start_s", 2.1}, {"end_s", 2.3}},
                                 {{"text", "late."}, {"start_s", 2.3}, {"end_s", 2.6}},
                                 {{"text", "Sadly"}, {"start_s", 2.7}, {"end_s", 3.0}}}}};
  auto sentences = persona::split_sentences(transcript, 7, "trip", {});
  ASSERT_EQ(sentences.size(), 3u);
  EXPECT_EQ(sentences[0].text, "we took the train");
  EXPECT_EQ(sentences[1].text, "it was late.");
  EXPECT_EQ(sentences[2].text, "Sadly");
  EXPECT_EQ(sentences[0].source_id, 7);
  EXPECT_LT(sentences[0].end_s, 2.0);  // the pause is not part of the sentence
}

TEST(PersonaText, ContentWordsDropCommonEnglishAndFtsSyntax) {
  auto words = persona::content_words("What do you \"bake\" AND NEAR(bread* ^rye: -flour)?");
  EXPECT_EQ(words, (std::vector<std::string>{"bake", "near", "bread", "rye", "flour"}));
}

TEST_F(PersonaTest, IndexesEverySentenceWithItsSourceAndTimes) {
  persona::Memory memory(avatar_);
  auto truth = truth_sentences();
  EXPECT_EQ(memory.sentence_count(), static_cast<int>(truth.size()));
  ASSERT_FALSE(truth.empty());
  // Every truth sentence is found, at its time, from its own words.
  for (const auto& s : truth) {
    auto hits = memory.search(s["text"].get<std::string>(), 5);
    ASSERT_FALSE(hits.empty()) << s["text"];
    double mid = (s["start_s"].get<double>() + s["end_s"].get<double>()) / 2;
    bool found = false;
    for (const auto& h : hits) found = found || (h.ref.start_s <= mid && mid <= h.ref.end_s && !h.ref.title.empty());
    EXPECT_TRUE(found) << s["text"];
  }
  // Opening again with unchanged transcripts does not rebuild; the card is on disk.
  persona::Memory again(avatar_);
  EXPECT_FALSE(again.rebuilt());
  EXPECT_TRUE(fs::exists(fs::path(avatar_) / "persona.json"));
}

TEST_F(PersonaTest, SearchNeverRaisesOnFtsSyntax) {
  persona::Memory memory(avatar_);
  for (std::string text : {"\"", "*", "AND", "NEAR(", ":", "-", "^", "\"workshop\" AND NEAR(train* OR -x):^y",
                           "workshop\"", "OR OR OR", "()", "'", "train'", "col:train", "\xff\xfe"}) {
    EXPECT_NO_THROW(memory.search(text, 5)) << text;
  }
  auto hits = memory.search("NEAR(\"workshop\"*", 5);
  EXPECT_FALSE(hits.empty());
}

TEST_F(PersonaTest, CardHasGreetingSignOffAndDistinctiveTerms) {
  persona::Memory memory(avatar_);  // writes persona.json when missing
  std::ifstream in(fs::path(avatar_) / "persona.json");
  auto card = nlohmann::json::parse(in);
  EXPECT_EQ(card["format"], "dself-persona-card");
  ASSERT_FALSE(card["greetings"].empty());
  EXPECT_TRUE(contains(lower(card["greetings"][0]["text"]), "welcome back to the workshop"));
  ASSERT_FALSE(card["sign_offs"].empty());
  EXPECT_TRUE(contains(lower(card["sign_offs"][0]["text"]), "thanks for watching"));
  EXPECT_FALSE(card["distinctive_terms"].empty());
  EXPECT_GT(card["mean_sentence_words"].get<double>(), 3);
  for (const auto& term : card["distinctive_terms"]) EXPECT_FALSE(persona::is_common_english(term["text"]));
}

TEST_F(PersonaTest, ExtractiveEngineAnswersGreetsThanksAndDeclines) {
  persona::Memory memory(avatar_);
  auto engine = persona::make_extractive_engine(memory);
  std::string streamed;
  auto collect = [&](std::string_view piece) {
    streamed += piece;
    return true;
  };

  auto truth = truth_sentences();
  std::string expected;
  for (const auto& s : truth) {
    if (contains(s["text"], "night train")) expected = s["text"];
  }
  ASSERT_FALSE(expected.empty());
  auto answer = engine->reply({{"user", "Where are you filming from, a night train?", {}}}, collect);
  EXPECT_EQ(answer.kind, "answer");
  EXPECT_TRUE(answer.grounded);
  EXPECT_EQ(streamed, answer.text);
  EXPECT_TRUE(contains(lower(answer.text), "night train")) << answer.text;
  ASSERT_FALSE(answer.sources.empty());
  EXPECT_FALSE(answer.sources[0].title.empty());
  EXPECT_LT(answer.sources[0].start_s, answer.sources[0].end_s);

  auto hello = engine->reply({{"user", "Hi there!", {}}}, {});
  EXPECT_EQ(hello.kind, "greeting");
  EXPECT_TRUE(contains(lower(hello.text), "welcome back")) << hello.text;
  EXPECT_FALSE(hello.sources.empty());

  auto thanks = engine->reply({{"user", "Thanks so much!", {}}}, {});
  EXPECT_EQ(thanks.kind, "thanks");
  EXPECT_TRUE(contains(lower(thanks.text), "thanks for watching")) << thanks.text;

  auto off_topic = engine->reply({{"user", "What do you think about quantum chromodynamics?", {}}}, {});
  EXPECT_EQ(off_topic.kind, "unknown");
  EXPECT_FALSE(off_topic.grounded);
  EXPECT_TRUE(off_topic.sources.empty());
  EXPECT_TRUE(contains(off_topic.text, "talked about")) << off_topic.text;

  auto foreign = engine->reply({{"user", "¿Dónde vives ahora mismo, señora?", {}}}, {});
  EXPECT_EQ(foreign.kind, "language");
  EXPECT_TRUE(contains(foreign.text, "English"));
  auto german = engine->reply({{"user", "Wohin fährt der Nachtzug morgen früh", {}}}, {});
  EXPECT_EQ(german.kind, "language");
}

TEST_F(PersonaTest, EvaluationMeetsRecallTarget) {
  persona::Memory memory(avatar_);
  auto report = persona::evaluate(memory, 200);
  ASSERT_GT(report.n_questions, 0);
  EXPECT_GE(report.recall_at_5, 0.9);
  EXPECT_GE(report.recall_at_1, 0.5);
  EXPECT_GE(report.reply_contains, 0.5);
}

TEST_F(PersonaTest, ChatCommandPrintsReplyWithSourcesAndKeepsTheConversation) {
  auto text = test::run_dself({"--avatar", avatar_, "chat", "What are you filming from?"});
  ASSERT_EQ(text.exit_code, 0) << text.output;
  EXPECT_TRUE(contains(text.output, "source:")) << text.output;

  auto json = test::run_dself({"--avatar", avatar_, "--quiet", "chat", "--json", "night train filming"});
  ASSERT_EQ(json.exit_code, 0) << json.output;
  auto reply = nlohmann::json::parse(json.output);
  EXPECT_EQ(reply["engine"], "extractive");
  EXPECT_TRUE(reply["grounded"].get<bool>());
  ASSERT_FALSE(reply["sources"].empty());
  EXPECT_TRUE(reply["sources"][0].contains("source_id"));
  EXPECT_TRUE(reply["sources"][0].contains("start_s"));

  // The conversation is in the catalog: the user's message and the reply with its sources.
  Catalog catalog(avatar_);
  auto messages = catalog.messages(reply["conversation_id"].get<int64_t>());
  ASSERT_EQ(messages.size(), 2u);
  EXPECT_EQ(messages[0].role, "user");
  EXPECT_EQ(messages[1].role, "assistant");
  EXPECT_EQ(messages[1].text, reply["reply"].get<std::string>());
  EXPECT_NE(messages[1].sources_json.find("\"source_id\""), std::string::npos);

  // `dself status` shows the persona card that chat built.
  auto status = test::run_dself({"--avatar", avatar_, "status", "--json"});
  ASSERT_EQ(status.exit_code, 0) << status.output;
  auto card = nlohmann::json::parse(status.output)["persona"];
  ASSERT_TRUE(card.is_object());
  EXPECT_FALSE(card["distinctive_terms"].empty());
  EXPECT_FALSE(card["greetings"].empty());
  auto status_text = test::run_dself({"--avatar", avatar_, "status"});
  EXPECT_NE(status_text.output.find("persona  talks about:"), std::string::npos) << status_text.output;
}

TEST_F(PersonaTest, InteractiveSessionReadsStdinUntilQuit) {
  fs::path input = *dir_ / "session.txt";
  {
    std::ofstream out(input);
    out << "hello\n\nnight train\ntell me more\n" << std::string(1 << 20, 'a') << "\n/quit\nnever read\n";
  }
  auto result = test::run_program(
      {"sh", "-c",
       std::string(DSELF_BINARY) + " --quiet --avatar '" + avatar_ + "' chat --json < '" + input.string() + "'"});
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::vector<nlohmann::json> lines;
  std::istringstream in(result.output);
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(lines.size(), 4u) << result.output;
  EXPECT_EQ(lines[0]["kind"], "greeting");
  EXPECT_EQ(lines[1]["kind"], "answer");
  EXPECT_EQ(lines[2]["conversation_id"], lines[0]["conversation_id"]);
  EXPECT_TRUE(contains(lines[3]["error"], "limit")) << lines[3];
}

TEST_F(PersonaTest, BadMessagesAreRefusedClearly) {
  auto empty = test::run_dself({"--avatar", avatar_, "chat", "   "});
  EXPECT_EQ(empty.exit_code, 1);
  EXPECT_TRUE(contains(empty.output, "empty")) << empty.output;

  // One argument cannot be 1 MB (the kernel's limit is 128 KiB); the session test sends 1 MB.
  auto huge = test::run_dself({"--avatar", avatar_, "chat", std::string(100000, 'x')});
  EXPECT_EQ(huge.exit_code, 1);
  EXPECT_TRUE(contains(huge.output, "limit is 4000")) << huge.output.substr(0, 300);
  EXPECT_FALSE(contains(huge.output, "PersonaParams")) << "the message names an internal";
  // The limit counts characters, not bytes: 3000 "é" are 6000 bytes and within it.
  std::string accents;
  for (int i = 0; i < 3000; ++i) accents += "\u00e9";
  auto accented = test::run_dself({"--avatar", avatar_, "chat", accents});
  EXPECT_EQ(accented.exit_code, 0) << accented.output.substr(0, 300);
  auto over = test::run_dself({"--avatar", avatar_, "chat", accents + accents});
  EXPECT_EQ(over.exit_code, 1);
  EXPECT_TRUE(contains(over.output, "is 6000 characters long")) << over.output.substr(0, 300);

  for (std::string message : {"\"", "*", "AND", "NEAR(", ":", "-", "^", "bread\" AND NEAR(x* y:z -w ^v"}) {
    auto r = test::run_dself({"--avatar", avatar_, "chat", message});
    EXPECT_EQ(r.exit_code, 0) << message << "\n" << r.output;
    EXPECT_FALSE(contains(lower(r.output), "fts5")) << r.output;
    EXPECT_FALSE(contains(lower(r.output), "syntax")) << r.output;
  }

  auto foreign = test::run_dself({"--avatar", avatar_, "chat", "Bonjour, où habitez-vous maintenant?"});
  EXPECT_EQ(foreign.exit_code, 0) << foreign.output;
  EXPECT_TRUE(contains(foreign.output, "English")) << foreign.output;
}

TEST(PersonaCli, AvatarWithoutTranscriptsSaysToPrepare) {
  test::TempDir dir;
  auto r = test::run_dself({"--avatar", (dir / "empty").string(), "chat", "hello"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(contains(r.output, "dself")) << r.output;
  EXPECT_TRUE(contains(r.output, "prepare")) << r.output;
}

TEST_F(PersonaTest, EvalPersonaCommandPrintsJson) {
  auto r = test::run_dself({"--avatar", avatar_, "--quiet", "eval", "persona", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto json = nlohmann::json::parse(r.output);
  EXPECT_GE(json["recall_at_5"].get<double>(), 0.9);
}

// The stub's last request, parsed.
nlohmann::json request_of(const test::OpenAiStub& stub) { return nlohmann::json::parse(stub.request_json()); }

test::CommandResult chat_openai(const std::string& avatar, const std::string& url, const std::string& model,
                                const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv = {"env",        "DSELF_LLM_API_KEY=test-key",
                                   DSELF_BINARY, "--avatar",
                                   avatar,       "--quiet",
                                   "chat",       "--engine",
                                   "openai",     "--llm-url",
                                   url,          "--llm-model",
                                   model};
  argv.insert(argv.end(), extra.begin(), extra.end());
  argv.push_back("Where are you filming from, the night train?");
  return test::run_program(argv);
}

TEST_F(PersonaTest, OpenAiEngineStreamsFromACompatibleServerGroundedInPassages) {
  test::TempDir record;
  test::OpenAiStub server(record.path());
  auto r = chat_openai(avatar_, server.url(), "ok");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "I bake bread every week.")) << r.output;
  EXPECT_TRUE(contains(r.output, "source:")) << r.output;
  auto request = request_of(server);
  EXPECT_EQ(request["path"], "/v1/chat/completions");
  EXPECT_EQ(request["authorization"], "Bearer test-key");
  EXPECT_EQ(request["body"]["stream"], true);
  EXPECT_EQ(request["body"]["model"], "ok");
  auto system = request["body"]["messages"][0];
  EXPECT_EQ(system["role"], "system");
  EXPECT_TRUE(contains(system["content"], "night train")) << system["content"];
  EXPECT_TRUE(contains(system["content"], "speaking as the person"));
  EXPECT_EQ(request["body"]["messages"].back()["role"], "user");
}

TEST_F(PersonaTest, OpenAiEngineErrorsSayWhatFailed) {
  test::TempDir record;
  test::OpenAiStub server(record.path());
  auto unauthorized = chat_openai(avatar_, server.url(), "status401");
  EXPECT_EQ(unauthorized.exit_code, 2);
  EXPECT_TRUE(contains(unauthorized.output, "HTTP 401")) << unauthorized.output;
  EXPECT_TRUE(contains(unauthorized.output, "Incorrect API key")) << unauthorized.output;

  auto malformed = chat_openai(avatar_, server.url(), "malformed");
  EXPECT_EQ(malformed.exit_code, 2);
  EXPECT_TRUE(contains(malformed.output, "malformed stream")) << malformed.output;

  auto slow = chat_openai(avatar_, server.url(), "slow", {"--llm-timeout", "1"});
  EXPECT_EQ(slow.exit_code, 2);
  EXPECT_TRUE(contains(slow.output, "did not answer within")) << slow.output;

  // A port nobody listens on: bind one, note it, close it.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  auto refused = chat_openai(avatar_, "http://127.0.0.1:" + std::to_string(ntohs(address.sin_port)) + "/v1", "ok");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_TRUE(contains(refused.output, "cannot connect")) << refused.output;

  auto missing = test::run_dself({"--avatar", avatar_, "chat", "--engine", "openai", "hello"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(contains(missing.output, "--llm-url")) << missing.output;
}

// A small memory written straight as transcripts (no prepare): three talks of the sample
// monologue, each sentence two seconds long, so that meaning tests know every sentence there is.
class MeaningTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    avatar_ = (*dir_ / "avatar").string();
    const std::vector<std::vector<std::string>> talks = {
        {"I started baking bread about six years ago, during a very long and rainy winter.",
         "My sourdough starter is called Bertha, and she lives in a glass jar on the kitchen counter.",
         "I feed my sourdough starter with rye flour every morning before breakfast.",
         "I add ten grams of salt to every loaf, because bread without salt tastes flat and sad.",
         "Bulk fermentation in my cold kitchen usually takes around six hours.",
         "I tap the bottom of the loaf, and if it sounds hollow, the bread is done.",
         "Homemade sourdough stays fresh for about three days if you keep it wrapped in a linen cloth."},
        {"I started learning the cello at thirty four, and I had never played any instrument before.",
         "My cello teacher is a patient woman named Margit who has been teaching for over thirty years.",
         "I have a cello lesson with Margit every Tuesday evening, and each lesson lasts forty five minutes.",
         "Margit says that adults learn slowly, but they practise with much more purpose than children.",
         "I practise the cello for thirty minutes every day, usually right after dinner.",
         "My dream piece is the prelude from the first cello suite by Bach."},
        {"I have rented a small allotment plot on the edge of town for four years now.",
         "My allotment is plot number twelve, right next to the old water tank and the blackberry hedge.",
         "Slugs are the biggest enemy on my allotment, especially after a warm and rainy night.",
         "I go out with a torch after dark to pick slugs off my lettuces by hand.",
         "Courgettes grow so fast in August that I end up giving bags of them to my neighbours.",
         "I live in a small town by the coast called Wrenhaven, on the edge of a wide grey bay.",
         "i moved to wrenhaven eight years ago after living in a big city for most of my twenties"}};
    fs::create_directories(fs::path(avatar_) / "transcripts");
    for (size_t t = 0; t < talks.size(); ++t) {
      nlohmann::json words = nlohmann::json::array();
      double at = 0;
      for (const auto& sentence : talks[t]) {
        std::istringstream in(sentence);
        std::vector<std::string> ws;
        for (std::string w; in >> w;) ws.push_back(w);
        for (const auto& w : ws) {
          words.push_back({{"text", w}, {"start_s", at}, {"end_s", at + 2.0 / ws.size()}});
          at += 2.0 / ws.size();
        }
        at += 0.8;
      }
      std::ofstream(fs::path(avatar_) / "transcripts" / (std::to_string(t + 1) + ".json"))
          << nlohmann::json{{"words", words}}.dump();
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static persona::Reply ask(const persona::Memory& memory, const std::vector<persona::Message>& history) {
    return persona::make_extractive_engine(memory)->reply(history, {});
  }
  static test::TempDir* dir_;
  static std::string avatar_;
};
test::TempDir* MeaningTest::dir_ = nullptr;
std::string MeaningTest::avatar_;

TEST(PersonaMeaning, LemmasAndWordNetFamiliesJoinWordForms) {
  ASSERT_NE(persona::WordNet::get(), nullptr) << "WordNet is not installed: run scripts/setup.sh (wordnet-base)";
  EXPECT_EQ(persona::lemma_key("children"), "child");
  EXPECT_EQ(persona::lemma_key("kids"), "kid");
  EXPECT_EQ(persona::lemma_key("practising"), "practise");
  EXPECT_EQ(persona::lemma_key("loaves"), "loaf");
  auto shares = [](const std::string& a, const std::string& b) {
    auto ca = persona::WordNet::get()->concepts(a).own, cb = persona::WordNet::get()->concepts(b).own;
    for (auto c : ca) {
      if (std::find(cb.begin(), cb.end(), c) != cb.end()) return true;
    }
    return false;
  };
  EXPECT_TRUE(shares("practise", "practice"));
  EXPECT_TRUE(shares("grownup", "adult"));
  EXPECT_TRUE(shares("kid", "child"));
  EXPECT_FALSE(shares("cello", "bread"));
  // A two-word term is one more key beside its words.
  auto keys = persona::content_keys("grown ups learn slowly");
  EXPECT_NE(std::find(keys.begin(), keys.end(), "grownup"), keys.end());
  EXPECT_EQ(persona::question_type("How long are your lessons?"), "duration");
  EXPECT_EQ(persona::question_type("Who teaches you?"), "person");
  EXPECT_TRUE(persona::answers_type("duration", "each lesson lasts forty five minutes"));
  EXPECT_FALSE(persona::answers_type("duration", "My dream piece is the prelude"));
}

TEST_F(MeaningTest, ParaphrasedQuestionsFindTheSentence) {
  persona::Memory memory(avatar_);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Are grown-ups worse at learning music than kids?", "adults learn slowly"},
      {"How long have you had your garden plot?", "rented a small allotment plot"},
      {"How long do you rehearse every day?", "thirty minutes every day"},
      {"Who teaches you the cello?", "named Margit"},
      {"What do you give your starter to eat?", "rye flour every morning"},
      {"How old were you when you took up your instrument?", "at thirty four"},
      {"How long does homemade bread keep?", "stays fresh for about three days"},
  };
  for (const auto& [question, expected] : cases) {
    auto reply = ask(memory, {{"user", question, {}}});
    EXPECT_TRUE(reply.grounded) << question;
    EXPECT_TRUE(contains(reply.text, expected)) << question << " -> " << reply.text;
  }
}

TEST_F(MeaningTest, SuggestedQuestionsComeFromThePersonsTopics) {
  persona::Memory memory(avatar_);
  const auto& suggested = memory.card().suggested_questions;
  ASSERT_FALSE(suggested.empty());
  for (const auto& q : suggested) {
    EXPECT_EQ(q.rfind("Tell me about your ", 0), 0u) << q;
    // Each is answered from what the person said, not declined.
    auto reply = ask(memory, {{"user", q, {}}});
    EXPECT_TRUE(reply.grounded) << q << " -> " << reply.text;
  }
  EXPECT_NE(std::find(suggested.begin(), suggested.end(), "Tell me about your cello."), suggested.end());
}

TEST_F(MeaningTest, OutOfScopeQuestionsAreDeclined) {
  persona::Memory memory(avatar_);
  for (const char* question : {"What's the capital of Australia?", "Who painted the Mona Lisa?",
                               "How do I file my tax return?", "Can you explain quantum computing?"}) {
    auto reply = ask(memory, {{"user", question, {}}});
    EXPECT_EQ(reply.kind, "unknown") << question << " -> " << reply.text;
    EXPECT_FALSE(reply.grounded);
  }
}

TEST_F(MeaningTest, FollowUpsLeanOnTheLastAnswerAndNothingIsRepeated) {
  persona::Memory memory(avatar_);
  std::vector<persona::Message> history = {{"user", "Who is your cello teacher?", {}}};
  auto first = ask(memory, history);
  ASSERT_TRUE(first.grounded) << first.text;
  ASSERT_TRUE(contains(first.text, "Margit")) << first.text;
  history.push_back({"assistant", first.text, first.sources});
  history.push_back({"user", "And how long are they?", {}});
  auto follow = ask(memory, history);
  EXPECT_TRUE(follow.grounded) << follow.text;
  EXPECT_TRUE(contains(follow.text, "forty five minutes")) << follow.text;
  ASSERT_FALSE(follow.sources.empty());
  EXPECT_EQ(follow.sources[0].source_id, first.sources[0].source_id);

  // The same question again gets something not said yet, unless asked to repeat.
  history.push_back({"assistant", follow.text, follow.sources});
  history.push_back({"user", "Who is your cello teacher?", {}});
  auto again = ask(memory, history);
  EXPECT_FALSE(contains(again.text, "patient woman named Margit")) << again.text;
  history.push_back({"assistant", again.text, again.sources});
  history.push_back({"user", "Can you repeat who your cello teacher is?", {}});
  auto repeated = ask(memory, history);
  EXPECT_TRUE(contains(repeated.text, "patient woman named Margit")) << repeated.text;
}

TEST_F(MeaningTest, RepliesFromAsrTextGetCapitalsAndPunctuation) {
  persona::Memory memory(avatar_);
  std::vector<persona::Sentence> sentences = {{1, "t", 0, 0, 1, "We went to Wrenhaven in May"},
                                              {1, "t", 1, 1, 2, "My friend Margit lives there"},
                                              {1, "t", 2, 2, 3, "Then Margit plays the cello with Bach"},
                                              {1, "t", 3, 3, 4, "The cello in Wrenhaven is Old"},
                                              {1, "t", 4, 4, 5, "i met margit at the cello shop and margit"}};
  auto names = persona::capitalised_words(sentences);
  EXPECT_TRUE(names.count("wrenhaven"));
  EXPECT_TRUE(names.count("margit"));  // the last sentence is ASR text (no capitals): it does not count
  EXPECT_FALSE(names.count("cello"));
  EXPECT_TRUE(names.count("bach"));
  EXPECT_EQ(persona::readable("i think margit's cello is in wrenhaven", names),
            "I think Margit's cello is in Wrenhaven.");
  EXPECT_EQ(persona::readable("i'm sure. it is", names), "I'm sure. It is.");
  // The memory learnt the names from its own transcripts, and uses them in replies.
  EXPECT_TRUE(memory.names().count("margit"));
  auto reply = ask(memory, {{"user", "When did you move to Wrenhaven?", {}}});
  EXPECT_TRUE(contains(reply.text, "I moved to Wrenhaven eight years ago")) << reply.text;
  EXPECT_EQ(reply.text.back(), '.');
}

TEST_F(MeaningTest, ChatContinuesAConversationByIdAndRefusesAnUnknownOne) {
  test::TempDir dir;
  fs::copy(avatar_, dir / "avatar", fs::copy_options::recursive);
  std::string avatar = (dir / "avatar").string();
  auto first = test::run_dself({"--avatar", avatar, "--quiet", "chat", "--json", "Who is your cello teacher?"});
  ASSERT_EQ(first.exit_code, 0) << first.output;
  auto reply = nlohmann::json::parse(first.output);
  int64_t id = reply["conversation_id"];
  auto next = test::run_dself({"--avatar", avatar, "--quiet", "chat", "--json", "--conversation", std::to_string(id),
                               "And how long are they?"});
  ASSERT_EQ(next.exit_code, 0) << next.output;
  auto next_reply = nlohmann::json::parse(next.output);
  EXPECT_EQ(next_reply["conversation_id"], id);
  EXPECT_TRUE(contains(next_reply["reply"], "forty five minutes")) << next.output;
  Catalog catalog(avatar);
  EXPECT_EQ(catalog.messages(id).size(), 4u);

  auto unknown = test::run_dself({"--avatar", avatar, "chat", "--conversation", "424242", "hello"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(contains(unknown.output, "424242")) << unknown.output;
}

TEST_F(MeaningTest, QuestionsFileBadLinesAreNamed) {
  test::TempDir dir;
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir / name) << text;
    return (dir / name).string();
  };
  auto good = write("good.tsv",
                    "# comment\n\nWho teaches you the cello?\tMy cello teacher is a patient woman named Margit who has "
                    "been teaching for over thirty years.\nWhat's the capital of Australia?\t-\n");
  auto questions = persona::read_questions(good);
  ASSERT_EQ(questions.size(), 2u);
  EXPECT_EQ(questions[0].line, 3);
  EXPECT_TRUE(questions[1].expected.empty());

  const std::vector<std::pair<std::string, std::string>> bad = {
      {"no tab here\n", "line 1"},
      {"# fine\nq\ta\tb\n", "line 2"},
      {"q\t\n", "line 1"},
      {"\tanswer\n", "line 1"},
      {"ok?\t-\nbad \xff\xfe\t-\n", "line 2"},
      {"# only comments\n", "no questions"},
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    auto file = write("bad" + std::to_string(i) + ".tsv", bad[i].first);
    EXPECT_THROW(persona::read_questions(file), InputError) << bad[i].first;
    auto r = test::run_dself({"--avatar", avatar_, "eval", "persona", "--questions", file});
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_TRUE(contains(r.output, bad[i].second)) << r.output;
  }
  auto missing = test::run_dself({"--avatar", avatar_, "eval", "persona", "--questions", (dir / "none.tsv").string()});
  EXPECT_EQ(missing.exit_code, 1);

  // A good file: the figures and every answer, in JSON.
  auto r = test::run_dself({"--avatar", avatar_, "--quiet", "eval", "persona", "--questions", good, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto json = nlohmann::json::parse(r.output);
  const auto& f = json["questions_file"];
  EXPECT_EQ(f["in_scope"], 1);
  EXPECT_EQ(f["out_of_scope"], 1);
  EXPECT_EQ(f["accuracy"], 1.0) << f.dump();
  EXPECT_EQ(f["out_of_scope_declined"], 1.0);
  EXPECT_EQ(f["answers"].size(), 2u);
  EXPECT_TRUE(json.contains("recall_at_1"));  // the generated questions' figures stay beside it
}

}  // namespace
}  // namespace dself
