// Whisper: the front end against a direct computation of its formulas, one forward pass of small
// random checkpoints against OpenAI's model.py (tests/data/whisper/make_*.py say how the expected
// values were made), the key/value cache, decoding and the command.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "hf/checkpoint.h"
#include "support.h"
#include "whisper/detail/frontend.h"
#include "whisper/detail/model.h"

namespace fs = std::filesystem;
using namespace dself::whisper;

namespace {

const fs::path kData = fs::path(DSELF_TESTS_DIR) / "data/whisper";

std::vector<float> read_f32(const fs::path& path) {
  const auto bytes = dself::read_file(path);
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

// make_frontend.py's test_signal: 1 s, computed in double, stored as float.
std::vector<float> test_signal() {
  std::vector<float> x(16000);
  for (size_t n = 0; n < x.size(); ++n) {
    const double t = double(n) / 16000;
    x[n] = float(0.5 * std::sin(2 * M_PI * 440 * t) + 0.25 * std::sin(2 * M_PI * (300 + 2000 * t) * t) +
                 0.05 * std::sin(2 * M_PI * 5500 * t) * (t > 0.5 ? 1 : 0));
  }
  return x;
}

// make_model.py's mel_input.
torch::Tensor mel_input(int n_mels, int n_frames) {
  auto mel = torch::empty({1, n_mels, n_frames});
  auto a = mel.accessor<float, 3>();
  for (int c = 0; c < n_mels; ++c)
    for (int t = 0; t < n_frames; ++t)
      a[0][c][t] = float(0.8 * std::sin(0.1 * c + 0.37 * t) + 0.2 * std::cos(0.05 * c * t));
  return mel;
}

torch::Tensor to_tensor(const nlohmann::json& rows) {
  std::vector<float> values;
  int64_t n_rows = 0;
  for (const auto& row : rows) {
    for (float v : row.get<std::vector<float>>()) values.push_back(v);
    ++n_rows;
  }
  return torch::from_blob(values.data(), {n_rows, int64_t(values.size()) / n_rows}).clone();
}

}  // namespace

TEST(WhisperFrontEnd, LogMelMatchesDirectComputation) {
  for (int n_mels : {80, 128}) {
    const auto expected = read_f32(kData / fmt::format("frontend_{}.f32", n_mels));
    const auto mel = log_mel(test_signal(), n_mels, 150);
    ASSERT_EQ(mel.sizes(), (std::vector<int64_t>{n_mels, 150}));
    const auto want = torch::from_blob(const_cast<float*>(expected.data()), {int64_t(n_mels), 150});
    const float max_error = (mel - want).abs().max().item<float>();
    EXPECT_LT(max_error, 1e-5) << n_mels << " mels";
    // The silence after the signal sits at the max - 8 floor: the clamp is exercised.
    EXPECT_NEAR(mel.index({0, 149}).item<float>(), (mel.max().item<float>() * 4 - 4 - 8 + 4) / 4, 1e-5);
  }
}

TEST(WhisperModel, ForwardMatchesOpenAiReference) {
  torch::NoGradGuard no_grad;
  const auto all = nlohmann::json::parse(dself::read_file(kData / "expected_forward.json"));
  for (const auto* name : {"tiny", "multilingual", "mels128"}) {
    SCOPED_TRACE(name);
    auto model = load_whisper(kData / name);
    const auto& c = model->config;
    const auto& want = all[name];
    const auto audio = model->encoder->forward(mel_input(c.n_mels, c.n_frames()));
    ASSERT_EQ(audio.sizes(), (std::vector<int64_t>{1, c.max_source_positions, c.d_model}));
    EXPECT_TRUE(
        torch::allclose(audio[0][0], torch::tensor(want["encoder_first_row"].get<std::vector<float>>()), 1e-4, 1e-4));
    EXPECT_TRUE(
        torch::allclose(audio[0][-1], torch::tensor(want["encoder_last_row"].get<std::vector<float>>()), 1e-4, 1e-4));
    const auto tokens = torch::tensor(want["tokens"].get<std::vector<int64_t>>()).unsqueeze(0);
    auto cache = model->decoder->start(audio);
    const auto logits = model->decoder->forward(tokens, cache)[0];
    const auto expected = to_tensor(want["logits"]);
    ASSERT_EQ(logits.sizes(), expected.sizes());
    EXPECT_LT((logits - expected).abs().max().item<float>(), 1e-4);
  }
}

TEST(WhisperModel, CachedDecodingEqualsUncached) {
  torch::NoGradGuard no_grad;
  auto model = load_whisper(kData / "tiny");
  const auto audio = model->encoder->forward(mel_input(80, model->config.n_frames()));
  const auto tokens = torch::tensor(std::vector<int64_t>{3, 50, 7, 99, 12, 1, 127}).unsqueeze(0);
  auto full_cache = model->decoder->start(audio);
  const auto full = model->decoder->forward(tokens, full_cache);
  auto cache = model->decoder->start(audio);
  // Two tokens, then one at a time.
  std::vector<torch::Tensor> steps{model->decoder->forward(tokens.narrow(1, 0, 2), cache)};
  for (int64_t t = 2; t < tokens.size(1); ++t) steps.push_back(model->decoder->forward(tokens.narrow(1, t, 1), cache));
  EXPECT_EQ(cache.length, tokens.size(1));
  EXPECT_LT((torch::cat(steps, 1) - full).abs().max().item<float>(), 1e-5);
}

TEST(WhisperModel, LoadSaveLoadIsBitIdentical) {
  dself::test::TempDir dir;
  for (const auto* name : {"tiny", "multilingual", "mels128"}) {
    std::map<std::string, dself::safetensors::DType> dtypes;
    auto model = load_whisper(kData / name, &dtypes);
    dself::hf::write_checkpoint(dir / name, model->config.json, whisper_tensors(model, dtypes));
    const auto original = dself::safetensors::read(kData / name / "model.safetensors");
    const auto saved = dself::safetensors::read(dir / name / "model.safetensors");
    ASSERT_EQ(saved.tensors.size(), original.tensors.size()) << name;
    for (const auto& [n, t] : original.tensors) {
      EXPECT_EQ(saved.tensors.at(n).bytes, t.bytes) << name << " " << n;
      EXPECT_EQ(saved.tensors.at(n).dtype, t.dtype) << name << " " << n;
    }
    auto again = load_whisper(dir / name);
    for (const auto& p : again->named_parameters())
      EXPECT_TRUE(torch::equal(p.value(), model->named_parameters()[p.key()])) << name << " " << p.key();
  }
}

TEST(WhisperModel, BadCheckpointsNameTheFileAndTheProblem) {
  dself::test::TempDir dir;
  auto message = [](const fs::path& path) {
    try {
      load_whisper(path);
    } catch (const dself::InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  fs::copy(kData / "tiny", dir / "m");
  auto config = nlohmann::json::parse(dself::read_file(dir / "m/config.json"));
  config["model_type"] = "llama";
  dself::write_file_atomic(dir / "m/config.json", config.dump());
  EXPECT_NE(message(dir / "m").find("config.json: model_type \"llama\" is not \"whisper\""), std::string::npos);
  config["model_type"] = "whisper";
  config["d_model"] = 48;
  dself::write_file_atomic(dir / "m/config.json", config.dump());
  EXPECT_NE(message(dir / "m").find("model.safetensors: tensor model.encoder.conv1.weight has shape [24, 80, 3] where"),
            std::string::npos)
      << message(dir / "m");
  config.erase("d_model");
  dself::write_file_atomic(dir / "m/config.json", config.dump());
  EXPECT_NE(message(dir / "m").find("\"d_model\" is missing"), std::string::npos);
}
