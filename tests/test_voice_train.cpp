// The trained voice: safetensors files, the training data (held-out speech never trained on), the
// training loop (loss falls, the same seed gives the same weights, a stopped run resumes to the
// same weights), and the voice it makes (phones covering the audio, emoji skipped, bad models).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <map>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "speech/speech.h"
#include "support.h"
#include "voice/detail/voice_data.h"
#include "voice/voice.h"

namespace dself::voice {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// safetensors

safetensors::File sample_file() {
  safetensors::File f;
  const std::vector<float> values = {0.0f, -1.5f, 3.14159f, 1e-8f, 65504.0f, -0.1f};
  f.tensors["a.weight"] = safetensors::from_floats(values, {2, 3});
  f.tensors["b.half"] = safetensors::from_floats(values, {6}, safetensors::DType::F16);
  f.tensors["c.bf16"] = safetensors::from_floats(values, {3, 2}, safetensors::DType::BF16);
  const std::vector<int64_t> ints = {1, -2, 1LL << 40};
  f.tensors["d.ids"] = safetensors::from_ints(ints, {3});
  f.tensors["e.empty"] = safetensors::from_floats({}, {0, 4});
  f.metadata["format"] = "test";
  return f;
}

TEST(Safetensors, RoundTripIsBitIdentical) {
  test::TempDir dir;
  const auto file = sample_file();
  safetensors::write(dir / "x.safetensors", file);
  const auto back = safetensors::read(dir / "x.safetensors");
  EXPECT_EQ(back.metadata, file.metadata);
  ASSERT_EQ(back.tensors.size(), file.tensors.size());
  for (const auto& [name, t] : file.tensors) {
    const auto& b = back.tensors.at(name);
    EXPECT_EQ(b.dtype, t.dtype) << name;
    EXPECT_EQ(b.shape, t.shape) << name;
    EXPECT_EQ(b.bytes, t.bytes) << name;
  }
  EXPECT_EQ(safetensors::to_bytes(back), read_file(dir / "x.safetensors"));
  // The layout: 8-byte little-endian header length, JSON, data 8-byte aligned.
  const std::string bytes = read_file(dir / "x.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  const auto header = nlohmann::json::parse(bytes.substr(8, n));
  EXPECT_EQ(header["a.weight"]["dtype"], "F32");
  EXPECT_EQ(header["a.weight"]["shape"], nlohmann::json({2, 3}));
  EXPECT_EQ(header["__metadata__"]["format"], "test");
  EXPECT_EQ(safetensors::to_ints(back.tensors.at("d.ids")), (std::vector<int64_t>{1, -2, 1LL << 40}));
}

TEST(Safetensors, HalfPrecisionMatchesIeeeEncodings) {
  // Known binary16 / bfloat16 bit patterns, computed by hand from IEEE 754.
  auto half_bits = [](float v, safetensors::DType d) {
    const auto t = safetensors::from_floats(std::vector<float>{v}, {1}, d);
    uint16_t h;
    std::memcpy(&h, t.bytes.data(), 2);
    return h;
  };
  EXPECT_EQ(half_bits(1.0f, safetensors::DType::F16), 0x3c00);
  EXPECT_EQ(half_bits(-2.0f, safetensors::DType::F16), 0xc000);
  EXPECT_EQ(half_bits(65504.0f, safetensors::DType::F16), 0x7bff);
  EXPECT_EQ(half_bits(0.1f, safetensors::DType::F16), 0x2e66);
  EXPECT_EQ(half_bits(5.960464477539063e-08f, safetensors::DType::F16), 0x0001);  // smallest subnormal
  EXPECT_EQ(half_bits(1e6f, safetensors::DType::F16), 0x7c00);                    // overflow: infinity
  EXPECT_EQ(half_bits(1.0f, safetensors::DType::BF16), 0x3f80);
  EXPECT_EQ(half_bits(3.14159f, safetensors::DType::BF16), 0x4049);
  const auto back = safetensors::to_floats(sample_file().tensors.at("b.half"));
  EXPECT_FLOAT_EQ(back[1], -1.5f);
  EXPECT_EQ(back[4], 65504.0f);
  EXPECT_NEAR(back[2], 3.14159f, 2e-3);
}

TEST(Safetensors, BrokenFilesAreInputErrorsNamingTheFile) {
  test::TempDir dir;
  const std::string bytes = safetensors::to_bytes(sample_file());
  auto expect_error = [&](const std::string& name, const std::string& content, const std::string& says) {
    const fs::path path = dir / name;
    write_file_atomic(path, content);
    try {
      safetensors::read(path);
      ADD_FAILURE() << name << " was read";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  expect_error("short.safetensors", bytes.substr(0, 5), "truncated");
  expect_error("cut.safetensors", bytes.substr(0, bytes.size() - 3), "truncated");
  std::string bad_json = bytes;
  bad_json[9] = '#';
  expect_error("json.safetensors", bad_json, "bad safetensors header");
  std::string huge = bytes;
  const uint64_t n = uint64_t(1) << 40;
  std::memcpy(huge.data(), &n, 8);
  expect_error("huge.safetensors", huge, "header of");
  expect_error("missing.safetensors", "", "truncated");
  EXPECT_THROW(safetensors::read(dir / "does-not-exist.safetensors"), InputError);
  try {
    safetensors::expect(sample_file(), "a.weight", {3, 2}, "model.safetensors");
    ADD_FAILURE();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("model.safetensors: tensor \"a.weight\" has shape [2, 3] where [3, 2]"),
              std::string::npos)
        << e.what();
  }
}

// Found by fuzz/fuzz_safetensors: a shape whose product overflows int64 used to wrap to 0 elements
// and pass as a tensor of 0 bytes (and was undefined behaviour).
TEST(Safetensors, AShapeLargerThanTheFileIsAnInputError) {
  auto file_with_shape = [](const std::string& shape) {
    const std::string header = R"({"x":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,0]}})";
    std::string bytes(8, '\0');
    const uint64_t n = header.size();
    std::memcpy(bytes.data(), &n, 8);
    return bytes + header;
  };
  try {
    safetensors::from_bytes(file_with_shape("[4294967296,4294967296,4]"), "forged.safetensors");
    ADD_FAILURE() << "a shape of 2^66 elements was read from an empty data section";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("forged.safetensors: tensor x of shape [4294967296, 4294967296, 4] is larger"),
              std::string::npos)
        << e.what();
  }
  // A 0 anywhere holds nothing, however large the other dimensions.
  const auto empty = safetensors::from_bytes(file_with_shape("[4611686018427387904,4611686018427387904,0]"), "empty");
  EXPECT_EQ(empty.tensors.at("x").element_count(), 0);
}

// ---------------------------------------------------------------------------------------------
// Training on the prepared sample avatar (about a minute of speech): tiny models, few steps.

VoiceTrainOptions tiny(const fs::path& avatar, int steps) {
  VoiceTrainOptions o;
  o.avatar = avatar;
  o.steps = steps;
  o.threads = 1;
  o.seed = 3;
  o.model_dim = 32;
  o.min_speech_s = 10;
  o.checkpoint_every_s = 0;
  return o;
}

// Analysed features shared by this file's tests (beside the prepared avatar, keyed by its clips),
// so that each test does not analyse the same speech again.
fs::path shared_features() { return test::prepared_avatar_dir().string() + "-voice-features"; }

void share_features(const fs::path& avatar) {
  const fs::path mine = avatar / "models/voice/features";
  if (!fs::is_directory(mine)) return;
  fs::create_directories(shared_features());
  for (const auto& f : fs::directory_iterator(mine))
    if (!fs::exists(shared_features() / f.path().filename()))
      write_file_atomic(shared_features() / f.path().filename(), read_file(f.path()));
}

// A copy of the prepared avatar under `dir`/avatar (`dir` made first), with the shared features.
fs::path avatar_in(const fs::path& dir) {
  fs::create_directories(dir);
  const fs::path avatar = test::copy_avatar(dir);
  if (fs::is_directory(shared_features())) {
    fs::create_directories(avatar / "models/voice/features");
    for (const auto& f : fs::directory_iterator(shared_features()))
      fs::copy_file(f.path(), avatar / "models/voice/features" / f.path().filename());
  }
  return avatar;
}

VoiceTrainResult train_and_share(const VoiceTrainOptions& options) {
  VoiceTrainResult r = train_voice(options);
  share_features(options.avatar);
  return r;
}

std::string weights_of(const fs::path& avatar) { return read_file(avatar / "models/voice/model.safetensors"); }

TEST(VoiceTrain, TooLittleSpeechSaysHowMuch) {
  test::TempDir dir;
  const fs::path avatar = avatar_in(dir / "x");
  VoiceTrainOptions o = tiny(avatar, 5);
  o.min_speech_s = kMinVoiceSpeechS;
  try {
    train_voice(o);
    ADD_FAILURE() << "trained on too little speech";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("minutes of train-split speech"), std::string::npos) << what;
    EXPECT_NE(what.find("at least 2.0"), std::string::npos) << what;
  }
  EXPECT_THROW(train_voice(tiny(dir / "no-avatar", 5)), InputError);
}

TEST(VoiceTrain, HeldOutUtterancesNeverEnterTraining) {
  test::TempDir dir;
  const fs::path avatar = avatar_in(dir / "x");
  // The sample avatar is small (two utterances, both train): hold one out here.
  {
    const fs::path json_path = speech_source_dirs(avatar).front() / "utterances.json";
    auto dataset = nlohmann::json::parse(read_file(json_path));
    dataset["utterances"][0]["split"] = "held_out";
    write_file_atomic(json_path, dataset.dump());
  }
  std::set<std::string> train_ids, held_out_ids;
  for (const auto& source : speech_source_dirs(avatar))
    for (const auto& u : speech::read_dataset(source).utterances)
      (u.split == speech::Split::train ? train_ids : held_out_ids).insert(source.filename().string() + "/" + u.id);
  ASSERT_FALSE(held_out_ids.empty());
  ASSERT_FALSE(train_ids.empty());
  const VoiceData data = load_voice_data(avatar, avatar / "models/voice/features");
  share_features(avatar);
  std::set<std::string> trained;
  for (const auto& e : data.train) trained.insert(e.id);
  EXPECT_EQ(trained, train_ids);
  for (const auto& e : data.held_out) EXPECT_TRUE(held_out_ids.contains(e.id)) << e.id;
  // Every example's phones are the aligned ones, in order (pauses apart), and cover its frames exactly.
  std::map<std::string, std::vector<std::string>> aligned;
  for (const auto& source : speech_source_dirs(avatar))
    for (const auto& u : speech::read_dataset(source).utterances)
      for (const auto& p : u.alignment.phones)
        if (p.phone != "sil") aligned[source.filename().string() + "/" + u.id].push_back(p.phone);
  for (const auto& e : data.train) {
    std::vector<std::string> spoken;
    for (int64_t id : e.phones)
      if (id > 1) spoken.push_back(phone_names()[size_t(id)]);
    EXPECT_EQ(spoken, aligned[e.id]) << e.id;
  }
  for (const auto& e : data.train) {
    int64_t frames = 0;
    for (int64_t d : e.durations) frames += d;
    EXPECT_EQ(frames, e.frame_count) << e.id;
    EXPECT_EQ(e.phones.size(), e.context.size());
    EXPECT_EQ(e.frames.size(), size_t(e.frame_count) * kFrameDims);
  }
  // The features are cached: a second load reads them back identically.
  const VoiceData again = load_voice_data(avatar, avatar / "models/voice/features");
  ASSERT_EQ(again.train.size(), data.train.size());
  EXPECT_EQ(again.train[0].frames, data.train[0].frames);
}

TEST(VoiceTrain, StepsLowerTheLossAndTheSameSeedGivesTheSameWeights) {
  test::TempDir dir;
  const fs::path a = avatar_in(dir / "a");
  const fs::path b = avatar_in(dir / "b");
  const VoiceTrainResult ra = train_and_share(tiny(a, 50));
  EXPECT_TRUE(ra.complete);
  EXPECT_EQ(ra.steps_done, 50);
  const auto curve = nlohmann::json::parse(read_file(a / "models/voice/curve.json"))["points"];
  ASSERT_GE(curve.size(), 2u);
  EXPECT_LT(curve.back()["train_loss"].get<double>(), 0.8 * curve.front()["train_loss"].get<double>()) << curve.dump();
  EXPECT_FALSE(fs::exists(a / "models/voice/checkpoint"));
  for (const char* f : {"config.json", "model.safetensors", "normalization.json", "curve.json"})
    EXPECT_TRUE(fs::exists(a / "models/voice" / f)) << f;

  train_and_share(tiny(b, 50));
  EXPECT_TRUE(weights_of(a) == weights_of(b)) << "same seed, data and threads gave different weights";
}

TEST(VoiceTrain, AStoppedRunResumesToTheSameWeights) {
  test::TempDir dir;
  const fs::path whole = avatar_in(dir / "whole");
  const fs::path broken = avatar_in(dir / "broken");
  train_and_share(tiny(whole, 30));

  VoiceTrainOptions first = tiny(broken, 30);
  int asked = 0;
  // Asked between utterances while analysing and before each step: stops part way through.
  first.should_stop = [&] { return ++asked > 15; };
  const VoiceTrainResult stopped = train_voice(first);
  EXPECT_FALSE(stopped.complete);
  EXPECT_GT(stopped.steps_done, 5);
  EXPECT_LT(stopped.steps_done, 30);
  EXPECT_TRUE(fs::exists(broken / "models/voice/checkpoint/state.json"));
  EXPECT_FALSE(fs::exists(broken / "models/voice/config.json"));

  const VoiceTrainResult resumed = train_and_share(tiny(broken, 30));
  EXPECT_TRUE(resumed.complete);
  EXPECT_TRUE(weights_of(whole) == weights_of(broken)) << "the resumed run's weights differ from the unbroken run's";

  // A checkpoint of another seed is not resumed: that run starts afresh and still completes.
  VoiceTrainOptions other = tiny(broken, 5);
  other.seed = 4;
  EXPECT_TRUE(train_voice(other).complete);
}

TEST(VoiceTrain, TheTrainedVoiceSaysSentences) {
  test::TempDir dir;
  const fs::path avatar = avatar_in(dir / "x");
  train_and_share(tiny(avatar, 30));
  auto voice = make_trained_voice(avatar / "models/voice");
  EXPECT_FALSE(voice->is_fallback());
  EXPECT_NE(voice->name().find("trained voice"), std::string::npos);

  const Utterance u = voice->say("Hello world, this is a test.");
  ASSERT_FALSE(u.samples.empty());
  ASSERT_FALSE(u.phones.empty());
  EXPECT_EQ(u.phones.front().start_s, 0.0);
  EXPECT_DOUBLE_EQ(u.phones.back().end_s, u.duration_s());
  std::string said;
  for (size_t i = 0; i < u.phones.size(); ++i) {
    EXPECT_LT(u.phones[i].start_s, u.phones[i].end_s) << i;
    if (i > 0) EXPECT_EQ(u.phones[i].start_s, u.phones[i - 1].end_s) << i;
    said += u.phones[i].phone + " ";
  }
  EXPECT_NE(said.find("hh ah l ow w er l d"), std::string::npos) << said;
  for (float s : u.samples) ASSERT_LE(std::abs(s), 1.0f);

  const Utterance longer = voice->say("Hello world, this is a test, and then a much longer sentence follows it here.");
  EXPECT_GT(longer.duration_s(), u.duration_s() * 1.5);

  // Emoji have no phones: skipped, the words around them said.
  const Utterance emoji = voice->say("Hello \xf0\x9f\x98\x80 world, this is a test.");
  std::string emoji_said;
  for (const auto& p : emoji.phones) emoji_said += p.phone + " ";
  EXPECT_EQ(emoji_said, said);
  EXPECT_THROW(voice->say("\xf0\x9f\x98\x80 !"), InputError);
  EXPECT_THROW(voice->say(""), InputError);
}

TEST(VoiceTrain, ACorruptModelIsAnInputErrorNamingTheFile) {
  test::TempDir dir;
  const fs::path avatar = avatar_in(dir / "x");
  train_and_share(tiny(avatar, 3));
  const fs::path model = avatar / "models/voice";
  EXPECT_NO_THROW(make_trained_voice(model));
  auto expect_names = [&](const std::string& file) {
    try {
      make_trained_voice(model);
      ADD_FAILURE() << "loaded with a broken " << file;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  };
  const std::string weights = read_file(model / "model.safetensors");
  write_file_atomic(model / "model.safetensors", weights.substr(0, weights.size() / 2));
  expect_names("model.safetensors");
  write_file_atomic(model / "model.safetensors", weights);
  const std::string norm = read_file(model / "normalization.json");
  write_file_atomic(model / "normalization.json", "{\"mcep_mean\": [1, 2]}");
  expect_names("normalization.json");
  write_file_atomic(model / "normalization.json", norm);
  auto config = nlohmann::json::parse(read_file(model / "config.json"));
  config["model"]["dim"] = 48;  // weights of another shape
  write_file_atomic(model / "config.json", config.dump());
  expect_names("model.safetensors");
  fs::remove(model / "config.json");
  expect_names("config.json");
  expect_names("config.json");
  EXPECT_THROW(make_trained_voice(dir / "nowhere"), InputError);
}

}  // namespace
}  // namespace dself::voice
