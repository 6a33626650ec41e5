// LoRA on tiny random Llama-family models: a new adapter changes nothing, training lowers the
// loss, a saved adapter (PEFT layout) reproduces the trained model's logits bit for bit, merging
// equals applying, and bad adapters are refused naming the file.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <torch/types.h>
#include <torch/utils.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "llm/detail/model_impl.h"
#include "llm/llm.h"
#include "support.h"

namespace fs = std::filesystem;
using namespace dself;
using namespace dself::llm;

namespace {

Config tiny_config(bool gqa = true, int64_t hidden = 32) {
  Config c;
  c.model_type = gqa ? "llama" : "qwen2";
  c.hidden_size = hidden, c.intermediate_size = 48, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = gqa ? 2 : 4;
  c.head_dim = hidden / 4;
  c.vocab_size = 64, c.max_position_embeddings = 256, c.tie_word_embeddings = gqa;
  c.attention_bias = !gqa;
  c.rms_norm_eps = 1e-5;
  c.eos_token_ids = {2};
  return c;
}

TrainingExample example(int shift) {
  TrainingExample e;
  for (int i = 0; i < 24; ++i) {
    e.tokens.push_back((i * 7 + shift) % 60 + 3);
    e.predicted.push_back(i >= 8 ? 1 : 0);  // the last 16 tokens are the "assistant's"
  }
  return e;
}

// A few AdamW steps on two examples; returns the adapter (attached to the model).
Adapter train_a_little(Model& model, const LoraConfig& config, int steps) {
  torch::set_num_threads(1);
  Adapter adapter = new_adapter(model, config, 7);
  for (auto& [name, t] : adapter.tensors) t.set_requires_grad(true);
  apply_adapter(model, adapter);
  AdamW adam;
  auto gen = at::detail::createCPUGenerator(11);
  for (int s = 0; s < steps; ++s) {
    auto loss = training_loss(model, example(s % 2), config.dropout, &gen);
    loss.backward();
    adam.update(adapter.tensors, 1e-2);
  }
  for (auto& [name, t] : adapter.tensors) t.set_requires_grad(false);
  return adapter;
}

const std::vector<int64_t> kTokens = {1, 5, 9, 12, 40, 33, 7};

}  // namespace

TEST(Lora, ANewAdapterChangesNothing) {
  for (bool gqa : {true, false}) {
    auto model = random_model(tiny_config(gqa), 1, 256);
    auto before = model.forward(kTokens, nullptr, true);
    LoraConfig config;
    config.target_modules = lora_target_modules();
    apply_adapter(model, new_adapter(model, config, 3));
    EXPECT_TRUE(torch::equal(model.forward(kTokens, nullptr, true), before));
  }
}

TEST(Lora, TrainingLowersTheLossAndOnlyTheAdapterMoves) {
  auto model = random_model(tiny_config(), 1, 256);
  std::vector<torch::Tensor> base;
  for (const auto& [name, t] : model.named_parameters()) base.push_back(t.clone());
  double before = 0;
  {
    torch::NoGradGuard no_grad;
    before = training_loss(model, example(0)).item<double>();
  }
  LoraConfig config;
  config.target_modules = {"q_proj", "v_proj", "down_proj"};
  train_a_little(model, config, 30);
  torch::NoGradGuard no_grad;
  const double after = training_loss(model, example(0)).item<double>();
  EXPECT_LT(after, before - 0.2) << before << " -> " << after;
  auto params = model.named_parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i].second, base[i])) << params[i].first;
}

TEST(Lora, ASavedAdapterReproducesTheTrainedModel) {
  test::TempDir dir;
  auto trained = random_model(tiny_config(false), 2, 256);
  LoraConfig config;
  config.rank = 4;
  config.alpha = 8;
  config.target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"};
  config.base_model = "tiny";
  auto adapter = train_a_little(trained, config, 6);
  torch::NoGradGuard no_grad;
  auto want = trained.forward(kTokens, nullptr, true);
  save_adapter(dir / "a", adapter);

  auto json = nlohmann::json::parse(read_file(dir / "a" / "adapter_config.json"));
  EXPECT_EQ(json["peft_type"], "LORA");
  EXPECT_EQ(json["task_type"], "CAUSAL_LM");
  EXPECT_EQ(json["r"], 4);
  EXPECT_EQ(json["bias"], "none");
  auto file = safetensors::read(dir / "a" / "adapter_model.safetensors");
  EXPECT_TRUE(file.tensors.count("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"));
  EXPECT_TRUE(file.tensors.count("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"));
  EXPECT_EQ(file.tensors.size(), 2u * 7u * 2u);

  auto fresh = random_model(tiny_config(false), 2, 256);
  auto loaded = load_adapter(dir / "a", fresh);
  EXPECT_EQ(loaded.config.target_modules, config.target_modules);
  apply_adapter(fresh, loaded);
  EXPECT_TRUE(torch::equal(fresh.forward(kTokens, nullptr, true), want));
  // load → save → load: the same bytes.
  save_adapter(dir / "b", loaded);
  EXPECT_EQ(read_file(dir / "a" / "adapter_model.safetensors"), read_file(dir / "b" / "adapter_model.safetensors"));
  EXPECT_EQ(read_file(dir / "a" / "adapter_config.json"), read_file(dir / "b" / "adapter_config.json"));

  // Merged into the weights: the same logits to rounding, and without the adapter, the base's.
  auto merged = random_model(tiny_config(false), 2, 256);
  auto base_logits = merged.forward(kTokens, nullptr, true);
  merge_adapter(merged, loaded);
  auto merged_logits = merged.forward(kTokens, nullptr, true);
  EXPECT_TRUE(torch::allclose(merged_logits, want, 1e-4, 1e-5)) << (merged_logits - want).abs().max().item<float>();
  EXPECT_FALSE(torch::allclose(base_logits, want, 1e-4, 1e-5));  // the adapter did change the model
  remove_adapter(fresh);
  EXPECT_TRUE(torch::equal(fresh.forward(kTokens, nullptr, true), base_logits));
  // A merged model saved and loaded is the merged model.
  merged.save(dir / "merged");
  auto reloaded = Model::load(dir / "merged");
  EXPECT_TRUE(torch::equal(reloaded.forward(kTokens, nullptr, true), merged_logits));
}

TEST(Lora, BadAdaptersAreRefusedNamingTheFile) {
  test::TempDir dir;
  auto model = random_model(tiny_config(), 1, 256);
  LoraConfig config;
  save_adapter(dir / "good", new_adapter(model, config, 1));
  auto expect_error = [&](const fs::path& adapter_dir, const std::string& fragment, const Model& m) {
    try {
      load_adapter(adapter_dir, m);
      ADD_FAILURE() << "loaded " << adapter_dir;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  expect_error(dir / "none", "not a directory", model);
  auto copy = [&](const std::string& to) {
    fs::copy(dir / "good", dir / to, fs::copy_options::recursive);
    return dir / to;
  };
  auto no_weights = copy("no_weights");
  fs::remove(no_weights / "adapter_model.safetensors");
  expect_error(no_weights, (no_weights / "adapter_model.safetensors").string() + ": the adapter weights are missing",
               model);
  auto no_config = copy("no_config");
  fs::remove(no_config / "adapter_config.json");
  expect_error(no_config, "no adapter_config.json", model);

  auto unknown = copy("unknown");
  auto json = nlohmann::json::parse(read_file(unknown / "adapter_config.json"));
  json["target_modules"] = {"q_proj", "c_attn"};
  write_file_atomic(unknown / "adapter_config.json", json.dump());
  expect_error(unknown, (unknown / "adapter_config.json").string() + ": unknown target module \"c_attn\"", model);

  auto prefix = copy("prefix");
  json = nlohmann::json::parse(read_file(prefix / "adapter_config.json"));
  json["peft_type"] = "PREFIX_TUNING";
  write_file_atomic(prefix / "adapter_config.json", json.dump());
  expect_error(prefix, "peft_type is \"PREFIX_TUNING\", not \"LORA\"", model);

  // An adapter for a wider model.
  auto wide = random_model(tiny_config(true, 64), 1, 256);
  expect_error(dir / "good", (dir / "good" / "adapter_model.safetensors").string() + ": the tensor", wide);
  expect_error(dir / "good", "an adapter for another base model", wide);

  LoraConfig bad;
  bad.target_modules = {"qkv"};
  EXPECT_THROW(new_adapter(model, bad, 1), InputError);
}
