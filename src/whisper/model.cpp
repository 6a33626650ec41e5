#include "whisper/detail/model.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "hf/checkpoint.h"
#include "hf/torch.h"

namespace dself::whisper {

namespace {
// A Linear layer's forward through hf's fast product (inference); torch's own when training.
torch::Tensor linear(const torch::nn::Linear& layer, const torch::Tensor& x) {
  return hf::linear(x, layer->weight, layer->bias);
}
}  // namespace

namespace F = torch::nn::functional;

WhisperConfig WhisperConfig::from_json(const nlohmann::json& json, const std::string& where) {
  const auto type = json.value("model_type", std::string());
  if (type != "whisper")
    throw InputError(
        fmt::format("{}: model_type \"{}\" is not \"whisper\" (a checkpoint of another architecture; give a "
                    "Hugging Face Whisper directory such as openai/whisper-tiny.en)",
                    where, type));
  WhisperConfig c;
  c.json = json;
  auto get = [&](const char* key, int& field) {
    if (!json.contains(key) || !json[key].is_number_integer() || json[key].get<int64_t>() <= 0 ||
        json[key].get<int64_t>() > 1'000'000)
      throw InputError(fmt::format("{}: \"{}\" is missing or not a positive integer", where, key));
    field = json[key].get<int>();
  };
  get("num_mel_bins", c.n_mels);
  get("d_model", c.d_model);
  get("encoder_layers", c.encoder_layers);
  get("encoder_attention_heads", c.encoder_heads);
  get("decoder_layers", c.decoder_layers);
  get("decoder_attention_heads", c.decoder_heads);
  get("encoder_ffn_dim", c.encoder_ffn);
  get("decoder_ffn_dim", c.decoder_ffn);
  get("vocab_size", c.vocab_size);
  get("max_source_positions", c.max_source_positions);
  get("max_target_positions", c.max_target_positions);
  if (c.d_model % c.encoder_heads || c.d_model % c.decoder_heads)
    throw InputError(fmt::format("{}: d_model {} is not a multiple of the attention heads", where, c.d_model));
  const auto activation = json.value("activation_function", std::string("gelu"));
  if (activation != "gelu")
    throw InputError(fmt::format("{}: activation_function \"{}\" (Whisper's is gelu)", where, activation));
  if (json.value("scale_embedding", false))
    throw InputError(fmt::format("{}: scale_embedding is true (Whisper's checkpoints do not scale)", where));
  return c;
}

AttentionImpl::AttentionImpl(int d_model, int n_heads_) : n_heads(n_heads_) {
  q_proj = register_module("q_proj", torch::nn::Linear(d_model, d_model));
  k_proj = register_module("k_proj", torch::nn::Linear(torch::nn::LinearOptions(d_model, d_model).bias(false)));
  v_proj = register_module("v_proj", torch::nn::Linear(d_model, d_model));
  out_proj = register_module("out_proj", torch::nn::Linear(d_model, d_model));
}

torch::Tensor AttentionImpl::attend(const torch::Tensor& x, const torch::Tensor& k, const torch::Tensor& v,
                                    const torch::Tensor& mask) {
  // ref: whisper/model.py MultiHeadAttention.qkv_attention (scores scaled by head_dim^-1/2).
  const auto B = x.size(0), T = x.size(1), S = k.size(1), d = x.size(2), hd = d / n_heads;
  auto q = linear(q_proj, x).view({B, T, n_heads, hd}).transpose(1, 2);
  auto kh = k.view({B, S, n_heads, hd}).transpose(1, 2);
  auto vh = v.view({B, S, n_heads, hd}).transpose(1, 2);
  const double scale = 1.0 / std::sqrt(double(hd));
  torch::Tensor out;
  if (torch::GradMode::is_enabled()) {
    auto scores = torch::matmul(q, kh.transpose(-1, -2)) * scale;
    if (mask.defined()) scores = scores + mask;
    out = torch::matmul(torch::softmax(scores, -1), vh).transpose(1, 2).reshape({B, T, d});
  } else {
    // Inference: head by head through hf::matmul_nt (oneDNN), not the reference BLAS's bmm.
    std::vector<torch::Tensor> heads;
    heads.reserve(size_t(B * n_heads));
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t h = 0; h < n_heads; ++h) {
        auto scores = hf::matmul_nt(q[b][h].contiguous(), kh[b][h].contiguous()) * scale;
        if (mask.defined()) scores = scores + mask;
        heads.push_back(hf::matmul_nt(torch::softmax(scores, -1), vh[b][h].t().contiguous()));
      }
    }
    out = torch::stack(heads).view({B, n_heads, T, hd}).transpose(1, 2).reshape({B, T, d});
  }
  return linear(out_proj, out);
}

EncoderLayerImpl::EncoderLayerImpl(int d, int h, int ffn) {
  self_attn = register_module("self_attn", Attention(d, h));
  self_attn_layer_norm =
      register_module("self_attn_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  fc1 = register_module("fc1", torch::nn::Linear(d, ffn));
  fc2 = register_module("fc2", torch::nn::Linear(ffn, d));
  final_layer_norm = register_module("final_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
}

torch::Tensor EncoderLayerImpl::forward(torch::Tensor x) {
  // ref: whisper/model.py ResidualAttentionBlock.forward (pre-norm residual blocks).
  auto h = self_attn_layer_norm->forward(x);
  x = x + self_attn->attend(h, linear(self_attn->k_proj, h), linear(self_attn->v_proj, h), {});
  return x + linear(fc2, F::gelu(linear(fc1, final_layer_norm->forward(x))));
}

DecoderLayerImpl::DecoderLayerImpl(int d, int h, int ffn) {
  self_attn = register_module("self_attn", Attention(d, h));
  self_attn_layer_norm =
      register_module("self_attn_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  encoder_attn = register_module("encoder_attn", Attention(d, h));
  encoder_attn_layer_norm =
      register_module("encoder_attn_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
  fc1 = register_module("fc1", torch::nn::Linear(d, ffn));
  fc2 = register_module("fc2", torch::nn::Linear(ffn, d));
  final_layer_norm = register_module("final_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d})));
}

EncoderImpl::EncoderImpl(const WhisperConfig& c) {
  conv1 = register_module("conv1", torch::nn::Conv1d(torch::nn::Conv1dOptions(c.n_mels, c.d_model, 3).padding(1)));
  conv2 = register_module("conv2",
                          torch::nn::Conv1d(torch::nn::Conv1dOptions(c.d_model, c.d_model, 3).stride(2).padding(1)));
  embed_positions = register_module("embed_positions", torch::nn::Embedding(c.max_source_positions, c.d_model));
  for (int i = 0; i < c.encoder_layers; ++i) layers->push_back(EncoderLayer(c.d_model, c.encoder_heads, c.encoder_ffn));
  register_module("layers", layers);
  layer_norm = register_module("layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.d_model})));
}

torch::Tensor EncoderImpl::forward(const torch::Tensor& mel) {
  // ref: whisper/model.py AudioEncoder.forward
  auto x = F::gelu(conv1->forward(mel));
  x = F::gelu(conv2->forward(x)).permute({0, 2, 1});
  x = x + embed_positions->weight.narrow(0, 0, x.size(1));
  for (auto& layer : *layers) x = layer->as<EncoderLayer>()->forward(x);
  return layer_norm->forward(x);
}

void DecoderCache::select(const torch::Tensor& rows) {
  for (auto* v : {&self_k, &self_v, &cross_k, &cross_v})
    for (auto& t : *v) t = t.index_select(0, rows);
}

DecoderImpl::DecoderImpl(const WhisperConfig& c) : max_positions(c.max_target_positions) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(c.vocab_size, c.d_model));
  embed_positions = register_module("embed_positions", torch::nn::Embedding(c.max_target_positions, c.d_model));
  for (int i = 0; i < c.decoder_layers; ++i) layers->push_back(DecoderLayer(c.d_model, c.decoder_heads, c.decoder_ffn));
  register_module("layers", layers);
  layer_norm = register_module("layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.d_model})));
}

DecoderCache DecoderImpl::start(const torch::Tensor& audio) {
  DecoderCache cache;
  for (const auto& m : *layers) {
    auto* layer = m->as<DecoderLayer>();
    cache.cross_k.push_back(linear(layer->encoder_attn->k_proj, audio));
    cache.cross_v.push_back(linear(layer->encoder_attn->v_proj, audio));
    cache.self_k.emplace_back();
    cache.self_v.emplace_back();
  }
  return cache;
}

torch::Tensor DecoderImpl::forward(const torch::Tensor& tokens, DecoderCache& cache) {
  // ref: whisper/model.py TextDecoder.forward (learned positions from the cache's offset, causal
  // self-attention, cross-attention on the audio, logits against the token embedding).
  const int64_t T = tokens.size(1), offset = cache.length;
  if (offset + T > max_positions)
    throw std::logic_error(fmt::format("whisper decoder: {} tokens past its {} positions", offset + T, max_positions));
  auto x = embed_tokens->forward(tokens) + embed_positions->weight.narrow(0, offset, T);
  torch::Tensor mask;
  if (T > 1)  // query i (at offset + i) sees keys 0 .. offset + i
    mask = torch::full({T, offset + T}, -INFINITY).triu(offset + 1);
  size_t i = 0;
  for (auto& m : *layers) {
    auto* layer = m->as<DecoderLayer>();
    auto h = layer->self_attn_layer_norm->forward(x);
    auto k = linear(layer->self_attn->k_proj, h), v = linear(layer->self_attn->v_proj, h);
    if (cache.self_k[i].defined()) {
      k = torch::cat({cache.self_k[i], k}, 1);
      v = torch::cat({cache.self_v[i], v}, 1);
    }
    cache.self_k[i] = k;
    cache.self_v[i] = v;
    x = x + layer->self_attn->attend(h, k, v, mask);
    h = layer->encoder_attn_layer_norm->forward(x);
    x = x + layer->encoder_attn->attend(h, cache.cross_k[i], cache.cross_v[i], {});
    x = x + linear(layer->fc2, F::gelu(linear(layer->fc1, layer->final_layer_norm->forward(x))));
    ++i;
  }
  cache.length += T;
  return hf::matmul_nt(layer_norm->forward(x), embed_tokens->weight);
}

WhisperImpl::WhisperImpl(const WhisperConfig& c) : config(c) {
  encoder = register_module("encoder", Encoder(c));
  decoder = register_module("decoder", Decoder(c));
}

Whisper load_whisper(const std::filesystem::path& dir, std::map<std::string, safetensors::DType>* dtypes) {
  const auto checkpoint = hf::Checkpoint::open(dir);
  const auto config = WhisperConfig::from_json(checkpoint.config(), (dir / "config.json").string());
  Whisper model(config);
  torch::NoGradGuard no_grad;
  for (auto& p : model->named_parameters()) {
    const auto name = "model." + p.key();
    std::vector<int64_t> shape(p.value().sizes().begin(), p.value().sizes().end());
    const auto& t = checkpoint.expect(name, shape);
    p.value().copy_(hf::to_torch(t, checkpoint.file_of(name).string() + ": " + name));
    if (dtypes) (*dtypes)[name] = t.dtype;
  }
  model->eval();
  return model;
}

safetensors::File whisper_tensors(Whisper& model, const std::map<std::string, safetensors::DType>& dtypes) {
  safetensors::File file;
  file.metadata["format"] = "pt";
  for (const auto& p : model->named_parameters()) {
    const auto name = "model." + p.key();
    auto it = dtypes.find(name);
    file.tensors[name] = hf::from_torch(p.value(), it == dtypes.end() ? safetensors::DType::F32 : it->second);
  }
  return file;
}

}  // namespace dself::whisper
