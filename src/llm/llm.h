// The llm stage: a local chat language model of the Llama family (Llama, Qwen2, SmolLM), loaded
// from a Hugging Face checkpoint directory the user has, run with libtorch on the CPU (or CUDA
// where built so). Loaded weights (Model) are kept apart from per-request state (KvCache), so one
// loaded model serves many conversations. docs/LLM.md says what is supported and how it is checked.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

// The API names only the tensor type; <torch/torch.h> would cost every includer ~15 s of compile.
#include <ATen/core/Tensor.h>

namespace torch {
using at::Tensor;
}  // namespace torch

namespace dself::llm {

// config.json of a Llama-family checkpoint. JSON shape (the fields read; others are ignored):
// {"model_type": "llama"|"qwen2", "architectures": [...], "hidden_size": 576,
//  "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9,
//  "num_key_value_heads": 3, "head_dim": 64 (optional), "rms_norm_eps": 1e-5,
//  "rope_theta": 10000.0, "rope_scaling": null | {"rope_type": "llama3", "factor": 8.0,
//  "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
//  "max_position_embeddings": 2048, "vocab_size": 49152, "tie_word_embeddings": true,
//  "attention_bias": false, "mlp_bias": false, "hidden_act": "silu",
//  "bos_token_id": 1, "eos_token_id": 2 | [2, 3]}
struct RopeScaling {
  std::string type;                             // "" (none) or "llama3"
  double factor = 1;                            // how much longer the context than in training
  double low_freq_factor = 1;
  double high_freq_factor = 4;
  int64_t original_max_position_embeddings = 8192;
};

struct Config {
  std::string model_type;        // "llama" or "qwen2"
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;        // < n_heads: grouped-query attention
  int64_t head_dim = 0;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000;
  RopeScaling rope_scaling;
  int64_t max_position_embeddings = 2048;  // the context length
  int64_t vocab_size = 0;
  bool tie_word_embeddings = false;  // lm_head shares embed_tokens
  bool attention_bias = false;       // q/k/v projections have biases (always for qwen2)
  bool mlp_bias = false;
  std::vector<int64_t> eos_token_ids;
  std::optional<int64_t> bos_token_id;

  int64_t parameter_count() const;  // weights, counting tied embeddings once
};

// Parses config.json's JSON (where: the file, for errors). Throws InputError naming the file and
// the field for a missing or bad field, an unknown architecture or activation, or a RoPE scaling
// other than none/default/llama3.
Config config_from_json(const nlohmann::json& json, const std::string& where);
Config read_config(const std::filesystem::path& model_dir);
nlohmann::json to_json(const Config& config);

struct LoadOptions {
  int64_t context_length = 0;  // tokens the cache holds; 0: the config's max_position_embeddings, at most 4096
  // Refuse to load when the weights and cache need more than this many bytes; 0: the memory
  // available now (/proc/meminfo's MemAvailable).
  int64_t memory_limit_bytes = 0;
};

// Bytes a model of this config needs in memory as float32 weights plus a cache of
// context_length tokens (what load() checks before it reads any weight).
int64_t memory_needed_bytes(const Config& config, int64_t context_length);

struct KvCache;

// Loaded weights; forward passes are const and thread-compatible (one KvCache per request).
class Model {
 public:
  // A model with these weights (named as in the checkpoint, float32); throws InputError naming
  // `where` for a missing tensor or a tensor of the wrong shape.
  Model(Config config, const std::map<std::string, torch::Tensor>& weights, int64_t context_length,
        const std::string& where);
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;

  // Reads <dir>/config.json and the weights (model.safetensors, or the shards listed in
  // model.safetensors.index.json; F32/F16/BF16). Throws InputError for missing or mismatched
  // files and a model too big for memory (with the bytes it needs), before reading weights.
  static Model load(const std::filesystem::path& dir, const LoadOptions& options = {});

  // Writes config.json and model.safetensors to dir, each tensor in the dtype it was read as
  // (F32 for weights made here): load → save → load gives the same bytes.
  void save(const std::filesystem::path& dir) const;

  const Config& config() const;
  int64_t context_length() const;  // the most tokens one KvCache holds

  // Logits (float32, [n, vocab]) for tokens placed after what `cache` holds (none: positions from
  // 0, no cache). all_positions: one row per token, else only the last token's row. Throws
  // InputError when the cache would overflow the context length.
  torch::Tensor forward(const std::vector<int64_t>& tokens, KvCache* cache, bool all_positions = false) const;

  // The parameters, named as in the checkpoint ("model.layers.0.self_attn.q_proj.weight").
  std::vector<std::pair<std::string, torch::Tensor>> named_parameters() const;

  struct Impl;
  Impl& impl() const { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// Per-request state: the keys and values of the tokens seen so far, for every layer, in a
// buffer of the model's context length allocated once (memory does not grow with a conversation).
struct KvCache {
  explicit KvCache(const Model& model);
  int64_t length = 0;                 // tokens held
  int64_t capacity = 0;               // the most tokens it can hold
  std::vector<torch::Tensor> keys;    // per layer [n_kv_heads, capacity, head_dim]
  std::vector<torch::Tensor> values;  // the same
  std::vector<int64_t> tokens;        // the tokens held, in order
  void clear() { length = 0; tokens.clear(); }
};

// Sampling of the next token. temperature 0: greedy (the most likely token).
struct SamplingParams {
  double temperature = 0.7;         // logits divided by this; 0: greedy
  int top_k = 40;                   // keep the k most likely tokens; 0: all
  double top_p = 0.9;               // keep the smallest set whose probability reaches this; 1: all
  double repetition_penalty = 1.1;  // >1 makes tokens already in the context less likely (1: off)
  uint64_t seed = 1;                // same seed, same model, same prompt: same tokens
};

// Picks a token from one row of logits, given the tokens so far (for the repetition penalty).
// ref: repetition penalty as in CTRL (Keskar et al. 2019, §4.1) and HF's
// RepetitionPenaltyLogitsProcessor: a positive logit is divided by the penalty, a negative one
// multiplied; top-p as in Holtzman et al. 2019 ("nucleus sampling").
int64_t sample_token(const torch::Tensor& logits, const std::vector<int64_t>& context, const SamplingParams& params,
                     std::mt19937_64& rng);

// The probability distribution sample_token draws from (after the penalty, temperature, top-k
// and top-p), as float32 [vocab]; for tests.
torch::Tensor sampling_distribution(const torch::Tensor& logits, const std::vector<int64_t>& context,
                                    const SamplingParams& params);

// Generating a reply.
struct GenerateParams {
  SamplingParams sampling;
  int max_new_tokens = 256;  // longest reply, tokens
};
struct Generation {
  std::vector<int64_t> tokens;    // generated, without the stop token
  std::string stop_reason;        // "stop_token", "max_tokens", "context", "callback"
  int64_t prompt_tokens = 0;      // tokens of the prompt
  int64_t reused_tokens = 0;      // of those, already in the cache from the previous turn (not recomputed)
};
// Generates after `prompt`: the cache keeps what it holds of a common prefix with the prompt (the
// earlier turns of a conversation) and computes only the rest, then samples token by token until
// a stop token, max_new_tokens, a full context, or on_token returning false. Repetition penalty
// over the whole context, as in HF generation.
Generation generate(const Model& model, KvCache& cache, const std::vector<int64_t>& prompt,
                    const std::vector<int64_t>& stop_tokens, const GenerateParams& params,
                    const std::function<bool(int64_t token)>& on_token);

// How likely the model finds a text: the natural-log probability of each token given the ones
// before it (the first token is context only, so token_count = tokens - 1). Throws InputError
// for fewer than 2 tokens or more than the context length.
struct TextScore {
  double log_probability = 0;  // sum over the scored tokens, natural log
  int64_t token_count = 0;     // tokens scored
};
TextScore score_tokens(const Model& model, const std::vector<int64_t>& tokens);

// Chat templates: the checkpoint's tokenizer_config.json "chat_template", recognised by family.
enum class TemplateFamily { chatml, llama3 };
struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};
struct ChatTemplate {
  TemplateFamily family = TemplateFamily::chatml;
  std::string bos_token;            // llama3: "<|begin_of_text|>"
  std::vector<std::string> stop_strings;  // "<|im_end|>" / "<|eot_id|>", "<|end_of_text|>"
  std::string default_system;       // the template's system message when none is given ("" none)
  std::string date_string;          // llama3.1+: "Today Date: ..." line ("" when the template has none)
  bool llama3_knowledge_header = false;  // llama3.1+: "Cutting Knowledge Date: December 2023"
};

// Recognises a chat template's family from its Jinja text. Throws InputError naming `where` for a
// template of a family dself does not format (it says which are supported).
ChatTemplate recognise_template(const std::string& jinja, const std::string& where);
// Reads <dir>/tokenizer_config.json's chat_template and recognises it.
ChatTemplate read_chat_template(const std::filesystem::path& model_dir);

// The text the template makes of these messages, with the assistant's turn opened at the end
// (add_generation_prompt), exactly as the checkpoint's template renders it.
std::string format_chat(const ChatTemplate& tmpl, const std::vector<ChatMessage>& messages);

// A message's text with every "<|" written "< |", so that what a visitor types (or a passage
// holds) can never be read as a special token (<|im_end|>, <|eot_id|>) when the formatted
// prompt is encoded with the template's special tokens recognised.
std::string without_special_tokens(std::string_view text);

}  // namespace dself::llm
