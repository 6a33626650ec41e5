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

// LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"): a frozen weight W
// [out, in] of a target projection gains a low-rank update, y = x Wᵀ + (alpha/r) · x Aᵀ Bᵀ with
// A [r, in] and B [out, r]; B starts at zero, so a new adapter changes nothing. Saved in the
// layout of Hugging Face PEFT (adapter_config.json, adapter_model.safetensors), so an adapter made
// here loads in PEFT and one made by PEFT (LoRA on these projections, bias "none") loads here.
//
// adapter_config.json (the fields written; on reading, those that change the arithmetic are checked):
// {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 8, "lora_alpha": 16, "lora_dropout": 0.05,
//  "target_modules": ["q_proj", "v_proj"], "bias": "none", "base_model_name_or_path": "...",
//  "fan_in_fan_out": false, "use_rslora": false, "inference_mode": true, "modules_to_save": null}
struct LoraConfig {
  int64_t rank = 8;                                          // r
  double alpha = 16;                                         // lora_alpha; the update is scaled by alpha / r
  double dropout = 0.05;                                     // lora_dropout, on the adapter's input while training
  std::vector<std::string> target_modules = {"q_proj", "v_proj"};  // of lora_target_modules()
  std::string base_model;                                    // base_model_name_or_path (informative)
  double scale() const { return alpha / double(rank); }
};

// The projections an adapter may target: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj.
const std::vector<std::string>& lora_target_modules();

// Checks a LoRA config (rank ≥ 1, alpha > 0, 0 ≤ dropout < 1, known and non-empty targets);
// throws InputError naming `where` (a flag or a file) and what is allowed.
void check_lora_config(const LoraConfig& config, const std::string& where);

// LoRA weights for one base model: tensors by PEFT name
// ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", "...lora_B.weight").
struct Adapter {
  LoraConfig config;
  std::map<std::string, torch::Tensor> tensors;  // float32
};

// A new adapter for `model`: A drawn as PEFT draws it (kaiming_uniform with a = sqrt(5): uniform
// in ±1/sqrt(in)), B zero. The same seed gives the same adapter.
Adapter new_adapter(const Model& model, const LoraConfig& config, uint64_t seed);

// Writes <dir>/adapter_config.json and <dir>/adapter_model.safetensors (F32), each atomically.
void save_adapter(const std::filesystem::path& dir, const Adapter& adapter);

// Reads an adapter saved in the PEFT layout and checks it against `model`: every tensor named for
// a layer and target it has, of the shape the base implies. Throws InputError naming the file for
// a missing file, a config that is not a LoRA this code applies (another peft_type, bias, rank
// pattern, fan_in_fan_out), an unknown target module, a missing tensor, or a tensor of another
// shape (an adapter for another base model).
Adapter load_adapter(const std::filesystem::path& dir, const Model& model);

// Attaches the adapter to the model's projections (its tensors shared, not copied: training them
// changes the model's output); replaces any adapter attached before. Throws InputError when the
// adapter does not fit the model.
void apply_adapter(Model& model, const Adapter& adapter);
// Detaches any adapter: the base model again.
void remove_adapter(Model& model);
// Adds scale · B A into the targeted weights (W' = W + (alpha/r) · B A) and detaches: the model
// then computes as with the adapter applied, at no cost per token. Saving it writes the merged
// weights (as float32 where the base was stored so).
void merge_adapter(Model& model, const Adapter& adapter);

// What identifies a base checkpoint for its adapters (recorded when one is trained, compared when
// one would be applied): a hash of its config.json and the names and sizes of its weights files.
std::string base_fingerprint(const std::filesystem::path& base_dir);

// Training (LoRA only: the base weights stay frozen).
//
// One training example: tokens and, for each, whether it is predicted (the assistant's tokens)
// or context only (the system and the user's turn, the template's markers).
struct TrainingExample {
  std::vector<int64_t> tokens;
  std::vector<uint8_t> predicted;  // 1: the loss counts this token (as a target of the one before)
};

// The mean cross-entropy (natural log) of the predicted tokens given those before them, over a
// forward pass without a cache; with dropout > 0 and a generator, the adapter's input dropout
// of training is drawn from it. Differentiable with respect to the attached adapter.
torch::Tensor training_loss(const Model& model, const TrainingExample& example, double dropout = 0,
                            at::Generator* generator = nullptr);

// AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization", Algorithm 2) over the
// adapter's tensors; its state is plain tensors (first and second moments) and a step count, so a
// checkpoint holds it exactly.
struct AdamW {
  double learning_rate = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  int64_t step = 0;                             // updates made
  std::map<std::string, torch::Tensor> m, v;    // by tensor name, as the adapter's
  // One update of every tensor of `params` that has a gradient, at this learning rate; clears the gradients.
  void update(std::map<std::string, torch::Tensor>& params, double lr);
};

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
