// Whisper's network: the audio encoder and the text decoder with its key/value cache.
// ref: Radford et al. 2022, "Robust Speech Recognition via Large-Scale Weak Supervision", §2.2;
// openai/whisper whisper/model.py (AudioEncoder, TextDecoder, ResidualAttentionBlock); the
// parameter names are Hugging Face's (transformers' modeling_whisper.py), so a checkpoint's
// tensors load by name.
#pragma once

#include <torch/nn.h>  // not <torch/torch.h>: a third less compile time per includer

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace dself::whisper {

// Mirrors the checkpoint's config.json (Hugging Face's WhisperConfig), e.g. tiny.en:
// {"model_type": "whisper", "num_mel_bins": 80, "d_model": 384, "encoder_layers": 4,
//  "encoder_attention_heads": 6, "decoder_layers": 4, "decoder_attention_heads": 6,
//  "encoder_ffn_dim": 1536, "decoder_ffn_dim": 1536, "vocab_size": 51864,
//  "max_source_positions": 1500, "max_target_positions": 448, "activation_function": "gelu"}
struct WhisperConfig {
  int n_mels = 80;
  int d_model = 384;
  int encoder_layers = 4;
  int encoder_heads = 6;
  int decoder_layers = 4;
  int decoder_heads = 6;
  int encoder_ffn = 1536;
  int decoder_ffn = 1536;
  int vocab_size = 51864;
  int max_source_positions = 1500;  // audio positions after the stride-2 convolution (30 s)
  int max_target_positions = 448;   // text positions
  nlohmann::json json;              // the whole file, written back unchanged on save

  // Throws InputError naming `where` for another architecture or a missing/bad field.
  static WhisperConfig from_json(const nlohmann::json& json, const std::string& where);
  int n_frames() const { return 2 * max_source_positions; }  // mel frames per window
};

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int d_model, int n_heads);
  // Multi-head attention of the queries of x [B, T, d] over keys/values [B, S, d] (already
  // projected), with `mask` [T, S] added to the scores when defined.
  torch::Tensor attend(const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor& v,
                       const torch::Tensor& mask);
  int n_heads;
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(Attention);

struct EncoderLayerImpl : torch::nn::Module {
  EncoderLayerImpl(int d_model, int n_heads, int ffn);
  torch::Tensor forward(torch::Tensor x);
  Attention self_attn{nullptr};
  torch::nn::LayerNorm self_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(EncoderLayer);

struct DecoderLayerImpl : torch::nn::Module {
  DecoderLayerImpl(int d_model, int n_heads, int ffn);
  Attention self_attn{nullptr}, encoder_attn{nullptr};
  torch::nn::LayerNorm self_attn_layer_norm{nullptr}, encoder_attn_layer_norm{nullptr}, final_layer_norm{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(DecoderLayer);

struct EncoderImpl : torch::nn::Module {
  explicit EncoderImpl(const WhisperConfig& c);
  // mel [B, n_mels, 2 * max_source_positions] -> audio features [B, max_source_positions, d].
  torch::Tensor forward(const torch::Tensor& mel);
  torch::nn::Conv1d conv1{nullptr}, conv2{nullptr};
  torch::nn::Embedding embed_positions{nullptr};
  torch::nn::ModuleList layers;
  torch::nn::LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(Encoder);

// Per-request decoder state (the loaded weights stay shared): the keys and values of the tokens
// seen so far, and of the audio (computed once per window).
struct DecoderCache {
  std::vector<torch::Tensor> self_k, self_v;    // per layer, [B, length, d]
  std::vector<torch::Tensor> cross_k, cross_v;  // per layer, [B, S, d]
  int64_t length = 0;
  // Keeps only the batch rows `rows` (beam search), in that order.
  void select(const torch::Tensor& rows);
};

struct DecoderImpl : torch::nn::Module {
  explicit DecoderImpl(const WhisperConfig& c);
  // A fresh cache for these audio features [B, S, d].
  DecoderCache start(const torch::Tensor& audio);
  // Logits [B, T, vocab] of the next token after each of `tokens` [B, T] (int64), which follow
  // the cache's tokens; the cache grows by T. The output projection is the token embedding.
  torch::Tensor forward(const torch::Tensor& tokens, DecoderCache& cache);
  int max_positions;
  torch::nn::Embedding embed_tokens{nullptr}, embed_positions{nullptr};
  torch::nn::ModuleList layers;
  torch::nn::LayerNorm layer_norm{nullptr};
};
TORCH_MODULE(Decoder);

struct WhisperImpl : torch::nn::Module {
  explicit WhisperImpl(const WhisperConfig& c);
  WhisperConfig config;
  Encoder encoder{nullptr};
  Decoder decoder{nullptr};
};
TORCH_MODULE(Whisper);

// Loads config.json and the weights of a Hugging Face Whisper checkpoint directory (every tensor
// checked against the config's shapes). `dtypes` receives each tensor's stored dtype (so that a
// save writes the same bytes). Throws InputError naming the file.
Whisper load_whisper(const std::filesystem::path& dir, std::map<std::string, safetensors::DType>* dtypes = nullptr);
// The weights under their Hugging Face names, each in `dtypes`' dtype (F32 where absent).
safetensors::File whisper_tensors(Whisper& model, const std::map<std::string, safetensors::DType>& dtypes = {});

}  // namespace dself::whisper
