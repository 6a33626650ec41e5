// Hugging Face checkpoints and the byte-level BPE tokenizer. The tokenizer's expected ids come
// from OpenAI's GPT-2 encoder.py run on the same small tokenizer (tests/data/hf/make_bpe.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "hf/checkpoint.h"
#include "hf/tokenizer.h"
#include "hf/torch.h"
#include "support.h"

namespace fs = std::filesystem;
using dself::InputError;
using dself::hf::Checkpoint;
using dself::hf::Tokenizer;

namespace {

const fs::path kBpe = fs::path(DSELF_TESTS_DIR) / "data/hf/bpe";

nlohmann::json expected() { return nlohmann::json::parse(dself::read_file(kBpe / "expected.json")); }

// The message of the InputError that `f` throws ("" when it throws none).
template <class F>
std::string input_error(F f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

void check_encodes(const Tokenizer& tok, const std::string& pattern) {
  int n = 0;
  const auto all = expected();
  for (const auto& c : all["encode"]) {
    if (c["pattern"] != pattern) continue;
    const auto text = c["text"].get<std::string>();
    const auto ids = tok.encode(text, c["allow_special"].get<bool>());
    EXPECT_EQ(ids, c["ids"].get<std::vector<int32_t>>())
        << "text \"" << text << "\" allow_special " << c["allow_special"];
    EXPECT_EQ(tok.decode(ids), text);
    ++n;
  }
  EXPECT_GT(n, 10);
}

}  // namespace

TEST(HfTokenizer, VocabMergesLayoutMatchesGpt2Encoder) {
  check_encodes(Tokenizer::load(kBpe), "gpt2");  // vocab.json + merges.txt + added_tokens.json
}

TEST(HfTokenizer, TokenizerJsonMatchesGpt2Encoder) { check_encodes(Tokenizer::load(kBpe / "json"), "gpt2"); }

TEST(HfTokenizer, Llama3SplitPatternAndPairMergesMatchReference) {
  check_encodes(Tokenizer::load(kBpe / "llama3"), "llama3");
}

TEST(HfTokenizer, DecodeReplacesInvalidUtf8AsPythonDoes) {
  const auto tok = Tokenizer::load(kBpe);
  const auto all = expected();
  for (const auto& c : all["decode"])
    EXPECT_EQ(tok.decode(c["ids"].get<std::vector<int32_t>>()), c["text"].get<std::string>()) << c["ids"].dump();
}

TEST(HfTokenizer, SpecialTokensOnlyWhenAsked) {
  const auto tok = Tokenizer::load(kBpe / "json");
  const int32_t eot = tok.id("<|endoftext|>");
  EXPECT_TRUE(tok.is_special(eot));
  EXPECT_FALSE(tok.is_special(tok.id("a")));
  EXPECT_EQ(tok.id_to_token(eot), "<|endoftext|>");
  EXPECT_EQ(tok.encode("<|endoftext|>", true), std::vector<int32_t>{eot});
  const auto as_text = tok.encode("<|endoftext|>", false);
  EXPECT_GT(as_text.size(), 1u);
  EXPECT_EQ(tok.decode(as_text), "<|endoftext|>");
  const std::vector<int32_t> ids{eot, tok.id("a")};
  EXPECT_EQ(tok.decode(ids), "<|endoftext|>a");
  EXPECT_EQ(tok.decode(ids, true), "a");
  EXPECT_EQ(tok.vocab_size(), 491 + 6);
  EXPECT_NE(input_error([&] { tok.id("<|nope|>"); }).find("tokenizer.json"), std::string::npos);
}

TEST(HfTokenizer, ByteLevelPrefixSpace) {
  dself::test::TempDir dir;
  auto json = nlohmann::json::parse(dself::read_file(kBpe / "json/tokenizer.json"));
  json["pre_tokenizer"]["add_prefix_space"] = true;
  dself::write_file_atomic(dir / "tokenizer.json", json.dump());
  const auto with = Tokenizer::load(dir.path());
  const auto without = Tokenizer::load(kBpe / "json");
  EXPECT_EQ(with.encode("Hello world"), without.encode(" Hello world"));
  EXPECT_EQ(with.encode(" Hello"), without.encode(" Hello"));  // already spaced
  // Each stretch between special tokens gets its space.
  EXPECT_EQ(with.encode("<|en|>Hello", true), without.encode("<|en|> Hello", true));
}

TEST(HfTokenizer, BadFilesAreNamed) {
  dself::test::TempDir dir;
  EXPECT_NE(input_error([&] { Tokenizer::load(dir / "absent"); }).find("absent"), std::string::npos);
  EXPECT_NE(input_error([&] { Tokenizer::load(dir.path()); }).find("no tokenizer"), std::string::npos);
  auto json = nlohmann::json::parse(dself::read_file(kBpe / "json/tokenizer.json"));
  json["pre_tokenizer"] = {{"type", "Metaspace"}};
  json["model"]["byte_fallback"] = true;
  dself::write_file_atomic(dir / "tokenizer.json", json.dump());
  EXPECT_NE(input_error([&] { Tokenizer::load(dir.path()); }).find("byte_fallback"), std::string::npos);
  dself::write_file_atomic(dir / "tokenizer.json", "{\"model\": ");
  EXPECT_NE(input_error([&] { Tokenizer::load(dir.path()); }).find("tokenizer.json: not valid JSON"),
            std::string::npos);
  // Two tokens with one id (found by fuzz_tokenizer: "e" given "m"'s id decoded "The" as "Thm").
  auto twice = nlohmann::json::parse(dself::read_file(kBpe / "json/tokenizer.json"));
  twice["model"]["vocab"]["e"] = twice["model"]["vocab"]["m"];
  dself::write_file_atomic(dir / "tokenizer.json", twice.dump());
  EXPECT_NE(input_error([&] { Tokenizer::load(dir.path()); }).find("share the id"), std::string::npos);
  // An id that is no whole number, or out of range (a float to int conversion was undefined).
  for (const nlohmann::json bad : {nlohmann::json(6.6e47), nlohmann::json(-3), nlohmann::json(4294967296LL)}) {
    auto odd = nlohmann::json::parse(dself::read_file(kBpe / "json/tokenizer.json"));
    odd["model"]["vocab"]["e"] = bad;
    dself::write_file_atomic(dir / "tokenizer.json", odd.dump());
    EXPECT_NE(input_error([&] { Tokenizer::load(dir.path()); }).find("a token id must be a whole number"),
              std::string::npos)
        << bad.dump();
  }
}

namespace {

dself::safetensors::File random_weights() {
  dself::safetensors::File f;
  torch::manual_seed(1);
  f.tensors["model.a.weight"] = dself::hf::from_torch(torch::randn({4, 3}));
  f.tensors["model.b.weight"] = dself::hf::from_torch(torch::randn({5}), dself::safetensors::DType::F16);
  f.tensors["model.c.weight"] = dself::hf::from_torch(torch::randn({2, 2}), dself::safetensors::DType::BF16);
  return f;
}

}  // namespace

TEST(HfCheckpoint, SingleAndShardedLoadTheSameTensors) {
  dself::test::TempDir dir;
  const auto weights = random_weights();
  dself::hf::write_checkpoint(dir / "one", {{"d_model", 4}}, weights);
  dself::hf::write_checkpoint(dir / "sharded", {{"d_model", 4}}, weights, 12);
  EXPECT_TRUE(fs::exists(dir / "sharded/model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(dir / "sharded/model-00002-of-00003.safetensors"));
  for (const auto* name : {"one", "sharded"}) {
    const auto c = Checkpoint::open(dir / name);
    EXPECT_EQ(c.config()["d_model"], 4);
    EXPECT_EQ(c.names().size(), 3u);
    for (const auto& [n, t] : weights.tensors) {
      EXPECT_EQ(c.tensor(n).bytes, t.bytes) << name << " " << n;
      EXPECT_TRUE(torch::equal(dself::hf::to_torch(c.tensor(n)), dself::hf::to_torch(t)));
    }
  }
  EXPECT_EQ(Checkpoint::open(dir / "sharded").file_of("model.c.weight").filename(), "model-00003-of-00003.safetensors");
}

TEST(HfCheckpoint, ToTorchConvertsHalfAndBfloat) {
  const std::vector<float> values{1.0f, -2.5f, 0.333333f, 65504.0f};
  for (auto dtype : {dself::safetensors::DType::F32, dself::safetensors::DType::F16, dself::safetensors::DType::BF16}) {
    const auto t = dself::hf::to_torch(dself::safetensors::from_floats(values, {2, 2}, dtype));
    EXPECT_EQ(t.sizes(), (std::vector<int64_t>{2, 2}));
    EXPECT_EQ(t.dtype(), torch::kFloat);
    const float tolerance = dtype == dself::safetensors::DType::F32   ? 0
                            : dtype == dself::safetensors::DType::F16 ? 1e-3
                                                                      : 1e-2;
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(t.flatten()[i].item<float>() / values[i], 1.0f, tolerance);
  }
  EXPECT_NE(input_error([] {
              dself::hf::to_torch(dself::safetensors::from_ints(std::vector<int64_t>{1}, {1}), "ids");
            }).find("ids"),
            std::string::npos);
}

TEST(HfCheckpoint, BadCheckpointsNameTheFile) {
  dself::test::TempDir dir;
  EXPECT_NE(input_error([&] { Checkpoint::open(dir / "absent"); }).find("not a directory"), std::string::npos);
  EXPECT_NE(input_error([&] { Checkpoint::open(dir.path()); }).find("config.json: missing"), std::string::npos);
  const auto weights = random_weights();
  dself::hf::write_checkpoint(dir / "one", {{"d_model", 4}}, weights);
  const auto c = Checkpoint::open(dir / "one");
  auto message = input_error([&] { c.expect("model.a.weight", {4, 4}); });
  EXPECT_NE(message.find("model.safetensors: tensor model.a.weight has shape [4, 3] where"), std::string::npos)
      << message;
  EXPECT_NE(input_error([&] { c.tensor("model.z"); }).find("no tensor model.z"), std::string::npos);
  // Truncated: the last bytes cut off.
  auto bytes = dself::read_file(dir / "one/model.safetensors");
  dself::write_file_atomic(dir / "one/model.safetensors", bytes.substr(0, bytes.size() - 3));
  message = input_error([&] { Checkpoint::open(dir / "one"); });
  EXPECT_NE(message.find("model.safetensors: truncated"), std::string::npos) << message;
  // No weights at all.
  fs::remove(dir / "one/model.safetensors");
  EXPECT_NE(input_error([&] { Checkpoint::open(dir / "one"); }).find("no weights"), std::string::npos);
  // A shard missing, and a shard lacking a tensor the index places there.
  dself::hf::write_checkpoint(dir / "sharded", {{"d_model", 4}}, weights, 12);
  fs::remove(dir / "sharded/model-00002-of-00003.safetensors");
  message = input_error([&] { Checkpoint::open(dir / "sharded"); });
  EXPECT_NE(message.find("model-00002-of-00003.safetensors: missing"), std::string::npos) << message;
  dself::hf::write_checkpoint(dir / "sharded", {{"d_model", 4}}, weights, 12);
  auto index = nlohmann::json::parse(dself::read_file(dir / "sharded/model.safetensors.index.json"));
  index["weight_map"]["model.a.weight"] = "model-00003-of-00003.safetensors";
  dself::write_file_atomic(dir / "sharded/model.safetensors.index.json", index.dump());
  message = input_error([&] { Checkpoint::open(dir / "sharded"); });
  EXPECT_NE(message.find("model-00003-of-00003.safetensors: lacks tensor model.a.weight"), std::string::npos)
      << message;
}
