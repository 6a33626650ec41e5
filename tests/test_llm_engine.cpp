// The llm chat engine on the sample person, with a tiny random Llama model in the Hugging Face
// layout (made here) and a small byte-level BPE tokenizer (tests/data/hf/bpe/llama3, with the
// ChatML tokens added): it streams token by token, stops when asked, cites its passages, declines
// what the person never talked about, and drops the oldest turns of a conversation too long for
// its context.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "llm/detail/model_impl.h"
#include "llm/llm.h"
#include "persona/persona.h"
#include "llm_checkpoint.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace dself;

namespace {

persona::LlmOptions options_for(const fs::path& model) {
  persona::LlmOptions o;
  o.model_dir = model;
  o.max_tokens = 12;
  o.threads = 1;
  o.temperature = 1.0;
  o.top_k = 0;
  o.top_p = 1.0;
  return o;
}

class LlmEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    avatar_ = test::copy_avatar(dir_.path());
    model_ = dself::test::write_tiny_chat_model(dir_ / "model");
  }
  test::TempDir dir_;
  fs::path avatar_, model_;
};

}  // namespace

TEST_F(LlmEngineTest, StreamsStopsAndCites) {
  persona::Memory memory(avatar_);
  const std::string question = memory.all_sentences().at(3).text;
  auto engine = persona::make_llm_engine(memory, options_for(model_));
  EXPECT_EQ(engine->name(), "llm");
  std::vector<std::string> pieces;
  auto reply = engine->reply({{"user", question, {}}}, [&](std::string_view piece) {
    pieces.emplace_back(piece);
    return true;
  });
  EXPECT_EQ(reply.kind, "answer");
  EXPECT_TRUE(reply.grounded);
  EXPECT_FALSE(reply.stopped);
  EXPECT_GE(pieces.size(), 2u);  // token by token, not one block
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, reply.text);
  // The sources are the passages the model was given.
  auto hits = memory.search(question, memory.params().retrieve_k);
  ASSERT_FALSE(hits.empty());
  ASSERT_EQ(reply.sources.size(), hits.size());
  for (size_t i = 0; i < hits.size(); ++i) EXPECT_EQ(reply.sources[i].text, hits[i].ref.text);

  // The same seed gives the same reply; the callback's "stop" ends it after the first piece.
  auto again = persona::make_llm_engine(memory, options_for(model_))->reply({{"user", question, {}}}, nullptr);
  EXPECT_EQ(again.text, reply.text);
  std::string first;
  auto stopped = persona::make_llm_engine(memory, options_for(model_))->reply(
      {{"user", question, {}}}, [&](std::string_view piece) {
        first = piece;
        return false;
      });
  EXPECT_TRUE(stopped.stopped);
  EXPECT_EQ(stopped.text, first);
  EXPECT_EQ(first, pieces.front());
}

TEST_F(LlmEngineTest, DeclinesWhatThePersonNeverTalkedAbout) {
  persona::Memory memory(avatar_);
  auto engine = persona::make_llm_engine(memory, options_for(model_));
  auto reply = engine->reply({{"user", "Who won the football world cup in 2018?", {}}}, nullptr);
  EXPECT_EQ(reply.kind, "unknown");
  EXPECT_FALSE(reply.grounded);
  EXPECT_TRUE(reply.sources.empty());
}

TEST_F(LlmEngineTest, ALongConversationDropsItsOldestTurns) {
  persona::Memory memory(avatar_);
  auto options = options_for(model_);
  options.context_length = 1024;
  auto engine = persona::make_llm_engine(memory, options);
  const auto sentences = memory.all_sentences();
  std::vector<persona::Message> history;
  for (int turn = 0; turn < 20; ++turn) {
    history.push_back({"user", sentences.at(size_t(turn) % sentences.size()).text, {}});
    history.push_back({"assistant", std::string(200, 'a') + " and more words here.", {}});
  }
  history.push_back({"user", sentences.at(3).text, {}});
  auto reply = engine->reply(history, nullptr);
  EXPECT_EQ(reply.kind, "answer");
  EXPECT_FALSE(reply.text.empty());
}

TEST_F(LlmEngineTest, BadModelsAreRefusedClearly) {
  persona::Memory memory(avatar_);
  auto expect_error = [&](const persona::LlmOptions& o, const std::string& fragment) {
    try {
      persona::make_llm_engine(memory, o);
      ADD_FAILURE() << "accepted " << o.model_dir;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error(options_for(""), "needs --model DIR");
  expect_error(options_for(dir_ / "nowhere"), "no tokenizer_config.json");
  write_file_atomic(model_ / "tokenizer_config.json",
                    nlohmann::json{{"chat_template", "{{ '[INST] ' + messages[0]['content'] }}"}}.dump());
  expect_error(options_for(model_), "the chat template is of a family dself does not format");
}

TEST(LlmEvalPerplexity, ScoresEachLineOfAFile) {
  test::TempDir dir;
  auto model = dself::test::write_tiny_chat_model(dir / "model");
  write_file_atomic(dir / "held_out.txt", "I bake bread every Sunday.\n\nThe garden is full of tomatoes.\n");
  auto run = test::run_dself({"eval", "persona", "--perplexity", (dir / "held_out.txt").string(), "--model",
                              model.string(), "--json"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  auto json = nlohmann::json::parse(run.output);
  ASSERT_EQ(json["lines"].size(), 2u);  // the blank line is skipped
  EXPECT_EQ(json["lines"][1]["line"], 3);
  int64_t total = 0;
  for (const auto& line : json["lines"]) {
    EXPECT_EQ(line["token_count"].get<int64_t>(), int64_t(line["tokens"].size()) - 1);
    EXPECT_LT(line["log_probability"].get<double>(), 0);
    total += line["token_count"].get<int64_t>();
  }
  EXPECT_EQ(json["total_tokens"].get<int64_t>(), total);
  EXPECT_GT(json["perplexity"].get<double>(), 1);

  auto alone = test::run_dself({"eval", "persona", "--perplexity", (dir / "held_out.txt").string()});
  EXPECT_EQ(alone.exit_code, 1);
  EXPECT_NE(alone.output.find("--perplexity FILE and --model DIR go together"), std::string::npos) << alone.output;
}
