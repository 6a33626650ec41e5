// `dself train persona` on the sample person with a tiny random chat checkpoint (made here, with
// the small byte-level BPE tokenizer of tests/data/hf/bpe/llama3 and ChatML's tokens): the
// conversations are the person's words, LoRA lowers the held-out perplexity, a stopped run resumes
// to the same adapter bit for bit, a trained adapter is up to date, found by the llm engine, and
// scored by `eval persona --adapter`; bad input exits 1 naming what was wrong.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "llm/detail/model_impl.h"
#include "llm/llm.h"
#include "persona/persona.h"
#include "llm_checkpoint.h"
#include "support.h"
#include "train/detail/persona.h"
#include "train/train.h"

namespace fs = std::filesystem;
using namespace dself;

namespace {

// The sample person says four sentences; a fine-tuning test needs more of their talk. These are
// hand-written in their manner (the workshop, the night train), added as a third transcript.
const char* const kMoreTalk[] = {
    "I built this workbench from old oak floorboards.",
    "The vise came from my grandfather's garage.",
    "Sharpening the chisels takes me about ten minutes every morning.",
    "I use a water stone and finish on a leather strop.",
    "The night train leaves the city at nine in the evening.",
    "I love working in the sleeper cabin while the fields go by.",
    "My favourite joint is the dovetail because it never lies.",
    "A good dovetail shows every mistake you made.",
    "I glue the drawers with hide glue so they can be repaired.",
    "The workshop smells of pine shavings and linseed oil.",
    "Most of my tools are older than I am.",
    "I bought the hand plane at a flea market in Lyon.",
    "It took me a whole winter to restore it.",
    "The sole was rusty and the blade was chipped.",
    "Now it takes shavings thinner than paper.",
    "People ask me why I do not use power tools.",
    "I like the quiet of hand tools and the rhythm of the saw.",
    "On the train I sketch the next projects in a notebook.",
    "The next project is a cabinet for my records.",
    "I will make it from walnut with brass hinges.",
    "Walnut is expensive, so I plan every cut twice.",
    "I always leave the pencil lines visible on the back.",
    "My teacher said the back of a piece tells the truth.",
    "I learned joinery in a small shop in the mountains.",
    "We worked in winter by the light of one window.",
    "The train stops in Vienna for an hour before dawn.",
    "I walk along the platform and drink a coffee.",
    "Then I go back to the cabin and carve spoons.",
    "Carving spoons is how I relax on long journeys.",
    "A birch spoon takes me about two hours.",
    "I give most of them away to friends.",
    "Thanks for all your comments on the last video.",
    "Many of you asked about the finish on the table.",
    "It is three coats of oil and a little wax.",
    "Do not rush the oil, let every coat dry for a day.",
    "The table now lives in my sister's kitchen.",
    "She says it is the heaviest thing she owns.",
    "I will show the cabinet build in the next video.",
    "Until then, keep your chisels sharp.",
    "And I'll see you next time wherever the rails take me.",
};

// Writes kMoreTalk as transcripts/3.json (the dself-transcript words layout), a word every 0.3 s.
void add_more_talk(const fs::path& avatar) {
  nlohmann::json words = nlohmann::json::array(), segments = nlohmann::json::array();
  double t = 0;
  for (const char* sentence : kMoreTalk) {
    const double start = t;
    std::istringstream in(sentence);
    std::string word;
    while (in >> word) {
      words.push_back({{"text", word}, {"start_s", t}, {"end_s", t + 0.25}, {"confidence", 1.0}});
      t += 0.3;
    }
    segments.push_back({{"text", sentence}, {"start_s", start}, {"end_s", t}});
    t += 0.5;
  }
  const nlohmann::json transcript = {
      {"format", "dself-transcript"}, {"version", 1},  {"engine", "captions"}, {"language", "en"}, {"model", "test"},
      {"segments", segments},         {"words", words}};
  write_file_atomic(workspace::transcripts_dir(avatar) / "3.json", transcript.dump());
}

train::TrainOptions options_for(const fs::path& avatar, const fs::path& base, int steps) {
  train::TrainOptions o;
  o.avatar = avatar;
  o.models = {train::Model::persona};
  o.steps = steps;
  o.threads = 1;
  o.persona.base = base;
  o.persona.lora_targets = {"q_proj", "v_proj", "o_proj", "down_proj"};
  o.persona.learning_rate = 1e-2;
  return o;
}

class PersonaTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    avatar_ = test::copy_avatar(dir_.path());
    add_more_talk(avatar_);
    base_ = dself::test::write_tiny_chat_model(dir_ / "base", 1024, 10);
  }
  test::TempDir dir_;
  fs::path avatar_, base_;
};

}  // namespace

TEST_F(PersonaTrainTest, ConversationsAreThePersonsWordsWithSentencesHeldOut) {
  persona::Memory memory(avatar_);
  const auto data = train::persona_data(memory);
  const auto sentences = memory.all_sentences();
  ASSERT_GE(data.train.size(), 3u);
  EXPECT_EQ(data.held_out.size(), (sentences.size() + 4) / 10);
  for (const auto& c : data.train) {
    EXPECT_NE(c.question.find(c.key_phrase), std::string::npos) << c.question;
    for (const auto& held : data.held_out) EXPECT_EQ(c.reply.find(held), std::string::npos) << held;
    // The key phrase's words are in the reply (what the question asks about, the reply says).
    const auto reply_words = persona::content_words(c.reply);
    for (const auto& w : persona::content_words(c.key_phrase)) {
      EXPECT_NE(std::find(reply_words.begin(), reply_words.end(), w), reply_words.end()) << w << " / " << c.reply;
    }
  }
}

TEST_F(PersonaTrainTest, LoraLowersTheHeldOutPerplexityAndIsThenUpToDate) {
  auto outcomes = train::train(options_for(avatar_, base_, 60));
  ASSERT_EQ(outcomes.size(), 1u);
  EXPECT_EQ(outcomes[0].state, "trained") << outcomes[0].message;
  const fs::path dir = workspace::model_dir(avatar_, "persona");
  auto metrics = nlohmann::json::parse(read_file(dir / "metrics.json"));
  const double before = metrics["held_out_perplexity_before"], after = metrics["held_out_perplexity_after"];
  EXPECT_LT(after, 0.8 * before) << before << " -> " << after;
  // The figures, for --gtest_output=xml (docs/PERSONA.md quotes them).
  RecordProperty("held_out_perplexity_before", std::to_string(before));
  RecordProperty("held_out_perplexity_after", std::to_string(after));
  EXPECT_GT(metrics["tokens_per_s"].get<double>(), 0);
  EXPECT_FALSE(metrics["loss_curve"].empty());
  EXPECT_FALSE(fs::exists(dir / "checkpoint"));
  auto config = nlohmann::json::parse(read_file(dir / "adapter_config.json"));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["target_modules"], (nlohmann::json{"q_proj", "v_proj", "o_proj", "down_proj"}));

  // Up to date: not trained again.
  outcomes = train::train(options_for(avatar_, base_, 60));
  EXPECT_EQ(outcomes[0].state, "up_to_date");
  EXPECT_EQ(train::model_state(avatar_, train::Model::persona), "current");
  auto status = test::run_dself({"--avatar", avatar_.string(), "status"});
  EXPECT_NE(status.output.find("persona  LoRA adapter, current: held-out perplexity"), std::string::npos)
      << status.output;

  // The llm engine finds it for this base, not for another.
  EXPECT_EQ(persona::person_adapter(avatar_, base_), dir);
  auto other = dir_ / "other";
  fs::copy(base_, other, fs::copy_options::recursive);
  auto cfg = nlohmann::json::parse(read_file(other / "config.json"));
  cfg["rms_norm_eps"] = 1e-6;
  write_file_atomic(other / "config.json", cfg.dump());
  EXPECT_TRUE(persona::person_adapter(avatar_, other).empty());

  // The engine with the person's adapter answers otherwise than the base alone (greedy, same question).
  {
    persona::Memory memory(avatar_);
    persona::LlmOptions o;
    o.model_dir = base_;
    o.max_tokens = 8;
    o.threads = 1;
    o.temperature = 0;
    const std::vector<persona::Message> question = {{"user", memory.all_sentences().at(5).text, {}}};
    const auto adapted = persona::make_llm_engine(memory, o)->reply(question, nullptr);
    o.no_adapter = true;
    const auto plain = persona::make_llm_engine(memory, o)->reply(question, nullptr);
    ASSERT_EQ(adapted.kind, "answer");
    EXPECT_NE(adapted.text, plain.text);
  }

  // eval persona --adapter scores the held-out sentences as training measured them.
  auto base_run = test::run_dself(
      {"eval", "persona", "--perplexity", (dir / "held_out.txt").string(), "--model", base_.string(), "--json"});
  ASSERT_EQ(base_run.exit_code, 0) << base_run.output;
  auto adapted_run = test::run_dself({"eval", "persona", "--perplexity", (dir / "held_out.txt").string(), "--model",
                                      base_.string(), "--adapter", dir.string(), "--json"});
  ASSERT_EQ(adapted_run.exit_code, 0) << adapted_run.output;
  const double eval_before = nlohmann::json::parse(base_run.output)["perplexity"];
  const double eval_after = nlohmann::json::parse(adapted_run.output)["perplexity"];
  EXPECT_NEAR(eval_before, before, 1e-6 * before);
  EXPECT_NEAR(eval_after, after, 1e-6 * after);
}

TEST_F(PersonaTrainTest, AStoppedRunResumesToTheSameAdapter) {
  const fs::path second = dir_ / "second";
  fs::create_directories(second);
  const fs::path other_avatar = test::copy_avatar(second);
  add_more_talk(other_avatar);
  auto whole = options_for(avatar_, base_, 12);
  whole.persona.lora_dropout = 0.1;  // the dropout's draws must repeat too
  ASSERT_EQ(train::train(whole)[0].state, "trained");

  auto broken = whole;
  broken.avatar = other_avatar;
  int asked = 0;
  broken.should_stop = [&] { return ++asked > 5; };  // stops before step 6
  auto outcomes = train::train(broken);
  ASSERT_EQ(outcomes[0].state, "stopped") << outcomes[0].message;
  EXPECT_TRUE(fs::exists(workspace::model_dir(other_avatar, "persona") / "checkpoint" / "state.json"));
  broken.should_stop = {};
  ASSERT_EQ(train::train(broken)[0].state, "trained");
  EXPECT_EQ(read_file(workspace::model_dir(avatar_, "persona") / "adapter_model.safetensors"),
            read_file(workspace::model_dir(other_avatar, "persona") / "adapter_model.safetensors"));
  auto a = nlohmann::json::parse(read_file(workspace::model_dir(avatar_, "persona") / "metrics.json"));
  auto b = nlohmann::json::parse(read_file(workspace::model_dir(other_avatar, "persona") / "metrics.json"));
  EXPECT_EQ(a["loss_curve"], b["loss_curve"]);
  EXPECT_EQ(a["held_out_perplexity_after"], b["held_out_perplexity_after"]);
}

TEST_F(PersonaTrainTest, BadInputExitsOneNamingWhatWasWrong) {
  auto expect_error = [&](std::vector<std::string> args, const std::string& fragment) {
    auto result = test::run_dself(args);
    EXPECT_EQ(result.exit_code, 1) << result.output;
    EXPECT_NE(result.output.find(fragment), std::string::npos) << result.output;
  };
  const std::string avatar = avatar_.string();
  expect_error({"--avatar", avatar, "train", "persona"}, "train persona needs --base DIR");
  expect_error({"--avatar", avatar, "train", "persona", "--base", base_.string(), "--lora-targets", "q_proj,qkv"},
               "unknown target module \"qkv\"");
  // An adapter for another base shape, and one with a file missing.
  std::ofstream(dir_ / "lines.txt") << "hello there, how are you today\n";
  auto model = llm::Model::load(base_);
  llm::LoraConfig config;
  config.rank = 4;
  auto adapter = llm::new_adapter(model, config, 1);
  for (auto& [name, t] : adapter.tensors) {
    if (name.find("lora_A") != std::string::npos) t = torch::zeros({4, 16});  // another hidden size
  }
  llm::save_adapter(dir_ / "wrong", adapter);
  expect_error({"eval", "persona", "--perplexity", (dir_ / "lines.txt").string(), "--model", base_.string(),
                "--adapter", (dir_ / "wrong").string()},
               (dir_ / "wrong" / "adapter_model.safetensors").string());
  fs::remove(dir_ / "wrong" / "adapter_config.json");
  expect_error({"eval", "persona", "--perplexity", (dir_ / "lines.txt").string(), "--model", base_.string(),
                "--adapter", (dir_ / "wrong").string()},
               "no adapter_config.json");
}
