// The Llama-family decoder: embeddings, n × (RMSNorm → attention with rotary positions and
// grouped-query heads → residual, RMSNorm → SwiGLU MLP → residual), RMSNorm, LM head.
// ref: Touvron et al. 2023 (LLaMA, §2.2: pre-normalisation with RMSNorm, SwiGLU, RoPE);
// Zhang & Sennrich 2019 (RMSNorm); Su et al. 2021 (RoFormer, RoPE); Ainslie et al. 2023 (GQA);
// transformers' modeling_llama.py for the checkpoint's conventions: rotate_half over the two
// halves of a head (not interleaved pairs), repeat_kv giving query head h the key/value head
// h / (n_heads / n_kv_heads), RMSNorm computed in float32 as weight * x / sqrt(mean(x²) + eps).
// Weights are plain tensors named as in the checkpoint, so loading, saving and LoRA address them
// by the checkpoint's own names.
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "llm/detail/model_impl.h"
#include "llm/llm.h"

namespace dself::llm {

namespace {

// ref: transformers' modeling_rope_utils.py (_compute_default_rope_parameters,
// _compute_llama3_parameters): inv_freq_i = theta^(-2i/d); for llama3 scaling, wavelengths
// longer than original/low_freq_factor are divided by factor, shorter than
// original/high_freq_factor kept, and those between interpolated smoothly.
torch::Tensor rope_inverse_frequencies(const Config& c) {
  auto inv_freq = 1.0 / torch::pow(torch::tensor(c.rope_theta, torch::kDouble),
                                   torch::arange(0, c.head_dim, 2, torch::kDouble) / double(c.head_dim));
  if (c.rope_scaling.type == "llama3") {
    const auto& s = c.rope_scaling;
    const double old_len = double(s.original_max_position_embeddings);
    const double low_freq_wavelen = old_len / s.low_freq_factor;
    const double high_freq_wavelen = old_len / s.high_freq_factor;
    auto wavelen = 2 * M_PI / inv_freq;
    auto scaled = torch::where(wavelen > low_freq_wavelen, inv_freq / s.factor, inv_freq);
    auto smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
    auto smoothed = (1 - smooth) * scaled / s.factor + smooth * scaled;
    auto medium = (wavelen >= high_freq_wavelen).logical_and(wavelen <= low_freq_wavelen);
    inv_freq = torch::where(medium, smoothed, scaled);
  }
  return inv_freq.to(torch::kFloat);
}

}  // namespace

// ref: PEFT's lora.Linear.forward: result + lora_B(lora_A(dropout(x))) * scaling.
torch::Tensor Linear::operator()(const torch::Tensor& x, const LoraDropout* dropout) const {
  auto y = matmul_nt(x, weight);
  if (bias.defined()) y = y + bias;
  if (lora_a.defined()) {
    auto in = x;
    if (dropout && dropout->p > 0) {
      auto keep = at::bernoulli(torch::full_like(x, 1 - dropout->p), dropout->generator ? *dropout->generator
                                                                                      : c10::optional<at::Generator>());
      in = x * keep / (1 - dropout->p);
    }
    y = y + matmul_nt(matmul_nt(in, lora_a), lora_b) * lora_scale;
  }
  return y;
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  return weight * (x * torch::rsqrt(x.pow(2).mean(-1, true) + eps));
}

// ref: modeling_llama.py rotate_half/apply_rotary_pos_emb: x·cos + rotate_half(x)·sin, with
// cos/sin of cat(freqs, freqs) and rotate_half(x) = cat(-x2, x1).
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) {
  const int64_t half = x.size(-1) / 2;
  auto x1 = x.narrow(-1, 0, half), x2 = x.narrow(-1, half, half);
  return x * cos + torch::cat({-x2, x1}, -1) * sin;
}

Model::Model(Config config, const std::map<std::string, torch::Tensor>& weights, int64_t context_length,
             const std::string& where)
    : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.config = std::move(config);
  const Config& c = m.config;
  m.context_length = context_length > 0 ? context_length : std::min<int64_t>(c.max_position_embeddings, 4096);
  auto take = [&](const std::string& name, std::vector<int64_t> shape) {
    auto it = weights.find(name);
    if (it == weights.end()) {
      throw InputError(fmt::format("{}: the tensor \"{}\" is missing (a checkpoint of another architecture, or an "
                                   "incomplete download)", where, name));
    }
    if (it->second.sizes() != torch::IntArrayRef(shape)) {
      throw InputError(fmt::format("{}: the tensor \"{}\" has shape {} but config.json implies {}", where, name,
                                   fmt::format("[{}]", fmt::join(it->second.sizes(), ", ")),
                                   fmt::format("[{}]", fmt::join(shape, ", "))));
    }
    auto t = it->second.to(torch::kFloat).contiguous();
    m.names.emplace_back(name, t);
    return t;
  };
  auto linear = [&](const std::string& name, int64_t out, int64_t in, bool bias) {
    Linear l;
    l.weight = take(name + ".weight", {out, in});
    if (bias) l.bias = take(name + ".bias", {out});
    return l;
  };
  const int64_t h = c.hidden_size, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim;
  m.embed_tokens = take("model.embed_tokens.weight", {c.vocab_size, h});
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    Layer l;
    l.input_layernorm = take(p + "input_layernorm.weight", {h});
    l.q_proj = linear(p + "self_attn.q_proj", q, h, c.attention_bias);
    l.k_proj = linear(p + "self_attn.k_proj", kv, h, c.attention_bias);
    l.v_proj = linear(p + "self_attn.v_proj", kv, h, c.attention_bias);
    l.o_proj = linear(p + "self_attn.o_proj", h, q, c.model_type == "llama" && c.attention_bias);
    l.post_attention_layernorm = take(p + "post_attention_layernorm.weight", {h});
    l.gate_proj = linear(p + "mlp.gate_proj", c.intermediate_size, h, c.mlp_bias);
    l.up_proj = linear(p + "mlp.up_proj", c.intermediate_size, h, c.mlp_bias);
    l.down_proj = linear(p + "mlp.down_proj", h, c.intermediate_size, c.mlp_bias);
    m.layers.push_back(std::move(l));
  }
  m.norm = take("model.norm.weight", {h});
  if (c.tie_word_embeddings) {
    m.lm_head = m.embed_tokens;
  } else {
    m.lm_head = take("lm_head.weight", {c.vocab_size, h});
  }
  m.inv_freq = rope_inverse_frequencies(c);
}

Model::~Model() = default;
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

const Config& Model::config() const { return impl_->config; }
int64_t Model::context_length() const { return impl_->context_length; }

std::vector<std::pair<std::string, torch::Tensor>> Model::named_parameters() const { return impl_->names; }

KvCache::KvCache(const Model& model) {
  const Config& c = model.config();
  capacity = model.context_length();
  for (int64_t i = 0; i < c.n_layers; ++i) {
    keys.push_back(torch::zeros({c.n_kv_heads, capacity, c.head_dim}));
    values.push_back(torch::zeros({c.n_kv_heads, capacity, c.head_dim}));
  }
}

torch::Tensor Model::forward(const std::vector<int64_t>& tokens, KvCache* cache, bool all_positions) const {
  return forward_tokens(*impl_, tokens, cache, all_positions, nullptr);
}

torch::Tensor forward_tokens(const Model::Impl& m, const std::vector<int64_t>& tokens, KvCache* cache,
                             bool all_positions, const LoraDropout* dropout) {
  const Config& c = m.config;
  const int64_t n = int64_t(tokens.size());
  if (n == 0) throw InputError("the model was given no tokens");
  const int64_t start = cache ? cache->length : 0;
  const int64_t limit = cache ? cache->capacity : m.context_length;
  if (start + n > limit) {
    throw InputError(fmt::format("{} tokens after {} exceed the context length of {} tokens", n, start, limit));
  }
  for (int64_t t : tokens) {
    if (t < 0 || t >= c.vocab_size) {
      throw InputError(fmt::format("token id {} is outside the vocabulary (0..{})", t, c.vocab_size - 1));
    }
  }
  auto ids = torch::tensor(tokens, torch::kLong);
  auto x = m.embed_tokens.index_select(0, ids);  // [n, hidden]

  auto positions = torch::arange(start, start + n, torch::kFloat);
  auto freqs = torch::outer(positions, m.inv_freq);
  auto emb = torch::cat({freqs, freqs}, -1);
  auto cos = emb.cos(), sin = emb.sin();  // [n, head_dim], broadcast over heads

  const int64_t total = start + n;
  const int64_t n_rep = c.n_heads / c.n_kv_heads;
  // Query i (at start + i) sees keys 0..start + i.
  auto mask = torch::ones({n, total}, torch::kBool).triu(start + 1);
  const double scale = 1.0 / std::sqrt(double(c.head_dim));

  for (size_t li = 0; li < m.layers.size(); ++li) {
    const Layer& l = m.layers[li];
    auto hn = rms_norm(x, l.input_layernorm, c.rms_norm_eps);
    auto q = l.q_proj(hn, dropout).view({n, c.n_heads, c.head_dim}).transpose(0, 1);      // [H, n, d]
    auto k = l.k_proj(hn, dropout).view({n, c.n_kv_heads, c.head_dim}).transpose(0, 1);   // [KV, n, d]
    auto v = l.v_proj(hn, dropout).view({n, c.n_kv_heads, c.head_dim}).transpose(0, 1);
    q = apply_rope(q, cos, sin);
    k = apply_rope(k, cos, sin);
    torch::Tensor keys = k, values = v;
    if (cache) {
      cache->keys[li].narrow(1, start, n).copy_(k);
      cache->values[li].narrow(1, start, n).copy_(v);
      keys = cache->keys[li].narrow(1, 0, total);
      values = cache->values[li].narrow(1, 0, total);
    }
    // Grouped heads: the n_rep query heads of one key/value head attend together.
    auto qg = q.reshape({c.n_kv_heads, n_rep * n, c.head_dim});
    std::vector<torch::Tensor> heads;
    for (int64_t g = 0; g < c.n_kv_heads; ++g) {
      auto scores = (matmul_nt(qg[g], keys[g]) * scale).view({n_rep, n, total});
      scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
      auto probs = torch::softmax(scores, -1).view({n_rep * n, total});
      heads.push_back(matmul_nt(probs, values[g].t()));  // [n_rep * n, d]
    }
    auto att = torch::stack(heads).view({c.n_heads, n, c.head_dim}).transpose(0, 1).reshape({n, -1});
    x = x + l.o_proj(att, dropout);
    auto h2 = rms_norm(x, l.post_attention_layernorm, c.rms_norm_eps);
    x = x + l.down_proj(torch::silu(l.gate_proj(h2, dropout)) * l.up_proj(h2, dropout), dropout);
  }
  if (cache) {
    cache->length = total;
    cache->tokens.insert(cache->tokens.end(), tokens.begin(), tokens.end());
  }
  if (!all_positions) x = x.narrow(0, n - 1, 1);
  x = rms_norm(x, m.norm, c.rms_norm_eps);
  return matmul_nt(x, m.lm_head);
}

}  // namespace dself::llm

namespace dself::llm {

Model random_model(const Config& c, uint64_t seed, int64_t context_length) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto normal = [&](std::vector<int64_t> shape) { return at::normal(0.0, 0.02, shape, gen); };
  const int64_t h = c.hidden_size, q = c.n_heads * c.head_dim, kv = c.n_kv_heads * c.head_dim, f = c.intermediate_size;
  std::map<std::string, torch::Tensor> w;
  w["model.embed_tokens.weight"] = normal({c.vocab_size, h});
  for (int64_t i = 0; i < c.n_layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    w[p + "input_layernorm.weight"] = torch::ones({h});
    w[p + "post_attention_layernorm.weight"] = torch::ones({h});
    w[p + "self_attn.q_proj.weight"] = normal({q, h});
    w[p + "self_attn.k_proj.weight"] = normal({kv, h});
    w[p + "self_attn.v_proj.weight"] = normal({kv, h});
    w[p + "self_attn.o_proj.weight"] = normal({h, q});
    if (c.attention_bias) {
      w[p + "self_attn.q_proj.bias"] = normal({q});
      w[p + "self_attn.k_proj.bias"] = normal({kv});
      w[p + "self_attn.v_proj.bias"] = normal({kv});
      if (c.model_type == "llama") w[p + "self_attn.o_proj.bias"] = normal({h});
    }
    w[p + "mlp.gate_proj.weight"] = normal({f, h});
    w[p + "mlp.up_proj.weight"] = normal({f, h});
    w[p + "mlp.down_proj.weight"] = normal({h, f});
    if (c.mlp_bias) {
      w[p + "mlp.gate_proj.bias"] = normal({f});
      w[p + "mlp.up_proj.bias"] = normal({f});
      w[p + "mlp.down_proj.bias"] = normal({h});
    }
  }
  w["model.norm.weight"] = torch::ones({h});
  if (!c.tie_word_embeddings) w["lm_head.weight"] = normal({c.vocab_size, h});
  return Model(c, w, context_length, "random model");
}

}  // namespace dself::llm
