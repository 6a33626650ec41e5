// The model's weights, for the stage's own files and tests (LoRA, training).
#pragma once

#include "hf/torch.h"

#include <map>
#include <string>
#include <utility>
#include <vector>

#include <torch/types.h>

#include "core/safetensors.h"
#include "llm/llm.h"

namespace dself::llm {

// The adapter's input dropout while training (PEFT's lora_dropout): each input element kept with
// probability 1 - p and scaled by 1/(1 - p), drawn from `generator` (so a run repeats exactly).
struct LoraDropout {
  double p = 0;
  at::Generator* generator = nullptr;
};

// y = x Wᵀ + b, plus a LoRA update (x Aᵀ Bᵀ · alpha/r) when an adapter is attached.
struct Linear {
  torch::Tensor weight;  // [out, in]
  torch::Tensor bias;    // [out] or undefined
  torch::Tensor lora_a;  // [r, in] or undefined
  torch::Tensor lora_b;  // [out, r]
  double lora_scale = 0;
  torch::Tensor operator()(const torch::Tensor& x, const LoraDropout* dropout = nullptr) const;
};

struct Layer {
  torch::Tensor input_layernorm;
  Linear q_proj, k_proj, v_proj, o_proj;
  torch::Tensor post_attention_layernorm;
  Linear gate_proj, up_proj, down_proj;
};

struct Model::Impl {
  Config config;
  int64_t context_length = 0;
  torch::Tensor embed_tokens;  // [vocab, hidden]
  std::vector<Layer> layers;
  torch::Tensor norm;
  torch::Tensor lm_head;       // the same tensor as embed_tokens when tied
  torch::Tensor inv_freq;      // [head_dim / 2], RoPE inverse frequencies (after scaling)
  std::vector<std::pair<std::string, torch::Tensor>> names;     // checkpoint name → tensor
  std::map<std::string, safetensors::DType> dtypes;              // as read, for save()
};

// a · bᵀ for a [..., k], b [n, k] (float32): the fastest way Debian's CPU libtorch has, with or
// without gradients (src/hf/matmul.cpp; LoRA training takes its backward).
using hf::matmul_nt;

// The forward pass of Model::forward, with the adapter's training dropout when given.
torch::Tensor forward_tokens(const Model::Impl& m, const std::vector<int64_t>& tokens, KvCache* cache,
                             bool all_positions, const LoraDropout* dropout);

// The projection of a layer by target module name (q_proj ... down_proj); nullptr for another name.
Linear* target_linear(Layer& layer, const std::string& module);

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin);

// Every tensor of a checkpoint directory as float32, by name, with the dtype each was stored in:
// model.safetensors, or the shards that model.safetensors.index.json's weight_map lists.
std::map<std::string, torch::Tensor> read_weights(const std::filesystem::path& dir,
                                                  std::map<std::string, safetensors::DType>* dtypes);

}  // namespace dself::llm

namespace dself::llm {

// A model of this config with random weights (normal, std 0.02; norms 1), for benchmarks at real
// shapes and tests of training; the same seed gives the same weights.
Model random_model(const Config& config, uint64_t seed, int64_t context_length);

}  // namespace dself::llm
