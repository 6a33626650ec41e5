// config.json of a Llama-family checkpoint (the struct in llm.h mirrors it).
// ref: transformers' LlamaConfig and Qwen2Config defaults (configuration_llama.py,
// configuration_qwen2.py): num_key_value_heads defaults to num_attention_heads, head_dim to
// hidden_size / num_attention_heads, tie_word_embeddings to false; Qwen2 always has q/k/v biases.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "hf/checkpoint.h"
#include "llm/llm.h"

namespace dself::llm {

namespace {

int64_t positive_int(const nlohmann::json& json, const char* key, const std::string& where,
                     std::optional<int64_t> fallback = std::nullopt) {
  if (!json.contains(key) || json[key].is_null()) {
    if (fallback) return *fallback;
    throw InputError(fmt::format("{}: \"{}\" is missing (a Hugging Face config.json of a Llama-family model has it)",
                                 where, key));
  }
  if (!json[key].is_number_integer() || json[key].get<int64_t>() <= 0) {
    throw InputError(fmt::format("{}: \"{}\" must be a positive integer, not {}", where, key, json[key].dump()));
  }
  return json[key].get<int64_t>();
}

double positive_number(const nlohmann::json& json, const char* key, const std::string& where, double fallback) {
  if (!json.contains(key) || json[key].is_null()) return fallback;
  if (!json[key].is_number() || !(json[key].get<double>() > 0)) {
    throw InputError(fmt::format("{}: \"{}\" must be a positive number, not {}", where, key, json[key].dump()));
  }
  return json[key].get<double>();
}

bool flag(const nlohmann::json& json, const char* key, const std::string& where, bool fallback) {
  if (!json.contains(key) || json[key].is_null()) return fallback;
  if (!json[key].is_boolean()) throw InputError(fmt::format("{}: \"{}\" must be true or false", where, key));
  return json[key].get<bool>();
}

}  // namespace

int64_t Config::parameter_count() const {
  const int64_t q = n_heads * head_dim, kv = n_kv_heads * head_dim;
  int64_t attention = hidden_size * q + 2 * hidden_size * kv + q * hidden_size;
  if (attention_bias) attention += q + 2 * kv;
  int64_t mlp = 3 * hidden_size * intermediate_size;
  if (mlp_bias) mlp += 2 * intermediate_size + hidden_size;
  const int64_t layer = attention + mlp + 2 * hidden_size;
  const int64_t embeddings = vocab_size * hidden_size * (tie_word_embeddings ? 1 : 2);
  return n_layers * layer + embeddings + hidden_size;
}

Config config_from_json(const nlohmann::json& json, const std::string& where) {
  if (!json.is_object()) throw InputError(where + ": not a JSON object");
  Config c;
  c.model_type = json.value("model_type", "");
  if (c.model_type != "llama" && c.model_type != "qwen2") {
    throw InputError(fmt::format(
        "{}: model_type \"{}\" is not supported (dself runs the Llama family: \"llama\" — Llama, SmolLM — and "
        "\"qwen2\"); point --model at such a checkpoint",
        where, c.model_type));
  }
  const std::string act = json.value("hidden_act", "silu");
  if (act != "silu") throw InputError(fmt::format("{}: hidden_act \"{}\" is not supported (only silu)", where, act));
  c.hidden_size = positive_int(json, "hidden_size", where);
  c.intermediate_size = positive_int(json, "intermediate_size", where);
  c.n_layers = positive_int(json, "num_hidden_layers", where);
  c.n_heads = positive_int(json, "num_attention_heads", where);
  c.n_kv_heads = positive_int(json, "num_key_value_heads", where, c.n_heads);
  if (c.n_heads % c.n_kv_heads != 0) {
    throw InputError(fmt::format("{}: num_attention_heads ({}) is not a multiple of num_key_value_heads ({})", where,
                                 c.n_heads, c.n_kv_heads));
  }
  if (c.hidden_size % c.n_heads != 0 && !json.contains("head_dim")) {
    throw InputError(fmt::format("{}: hidden_size ({}) is not a multiple of num_attention_heads ({}) and there is no "
                                 "head_dim", where, c.hidden_size, c.n_heads));
  }
  c.head_dim = positive_int(json, "head_dim", where, c.hidden_size / c.n_heads);
  if (c.head_dim % 2 != 0) throw InputError(fmt::format("{}: head_dim ({}) must be even for rotary positions", where, c.head_dim));
  c.rms_norm_eps = positive_number(json, "rms_norm_eps", where, 1e-6);
  c.rope_theta = positive_number(json, "rope_theta", where, 10000);
  c.max_position_embeddings = positive_int(json, "max_position_embeddings", where, 2048);
  c.vocab_size = positive_int(json, "vocab_size", where);
  c.tie_word_embeddings = flag(json, "tie_word_embeddings", where, false);
  c.attention_bias = c.model_type == "qwen2" ? true : flag(json, "attention_bias", where, false);
  c.mlp_bias = flag(json, "mlp_bias", where, false);

  if (json.contains("rope_scaling") && !json["rope_scaling"].is_null()) {
    const auto& s = json["rope_scaling"];
    if (!s.is_object()) throw InputError(where + ": \"rope_scaling\" must be an object or null");
    // Older configs name the kind "type", newer ones "rope_type".
    std::string type = s.value("rope_type", s.value("type", ""));
    if (type == "llama3") {
      c.rope_scaling.type = type;
      c.rope_scaling.factor = positive_number(s, "factor", where + ": rope_scaling", 8);
      c.rope_scaling.low_freq_factor = positive_number(s, "low_freq_factor", where + ": rope_scaling", 1);
      c.rope_scaling.high_freq_factor = positive_number(s, "high_freq_factor", where + ": rope_scaling", 4);
      c.rope_scaling.original_max_position_embeddings =
          positive_int(s, "original_max_position_embeddings", where + ": rope_scaling", 8192);
      if (!(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor)) {
        throw InputError(where + ": rope_scaling: high_freq_factor must be greater than low_freq_factor");
      }
    } else if (type != "default" && !type.empty()) {
      throw InputError(fmt::format("{}: rope_scaling type \"{}\" is not supported (none, \"default\" or \"llama3\")",
                                   where, type));
    }
  }

  if (json.contains("bos_token_id") && json["bos_token_id"].is_number_integer()) {
    c.bos_token_id = json["bos_token_id"].get<int64_t>();
  }
  if (json.contains("eos_token_id")) {
    const auto& e = json["eos_token_id"];
    if (e.is_number_integer()) c.eos_token_ids.push_back(e.get<int64_t>());
    if (e.is_array()) {
      for (const auto& v : e) {
        if (v.is_number_integer()) c.eos_token_ids.push_back(v.get<int64_t>());
      }
    }
  }
  return c;
}

Config read_config(const std::filesystem::path& model_dir) {
  const auto path = model_dir / "config.json";
  if (!std::filesystem::exists(path)) {
    throw InputError(fmt::format("{}: no config.json (--model must be a Hugging Face checkpoint directory: "
                                 "config.json, model.safetensors, tokenizer.json, tokenizer_config.json)",
                                 model_dir.string()));
  }
  return config_from_json(hf::read_json(path, "the model's configuration"), path.string());
}

nlohmann::json to_json(const Config& c) {
  nlohmann::json j = {{"model_type", c.model_type},
                      {"architectures", {c.model_type == "qwen2" ? "Qwen2ForCausalLM" : "LlamaForCausalLM"}},
                      {"hidden_size", c.hidden_size},
                      {"intermediate_size", c.intermediate_size},
                      {"num_hidden_layers", c.n_layers},
                      {"num_attention_heads", c.n_heads},
                      {"num_key_value_heads", c.n_kv_heads},
                      {"head_dim", c.head_dim},
                      {"rms_norm_eps", c.rms_norm_eps},
                      {"rope_theta", c.rope_theta},
                      {"max_position_embeddings", c.max_position_embeddings},
                      {"vocab_size", c.vocab_size},
                      {"tie_word_embeddings", c.tie_word_embeddings},
                      {"attention_bias", c.attention_bias},
                      {"mlp_bias", c.mlp_bias},
                      {"hidden_act", "silu"}};
  if (c.rope_scaling.type.empty()) {
    j["rope_scaling"] = nullptr;
  } else {
    j["rope_scaling"] = {{"rope_type", c.rope_scaling.type},
                         {"factor", c.rope_scaling.factor},
                         {"low_freq_factor", c.rope_scaling.low_freq_factor},
                         {"high_freq_factor", c.rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", c.rope_scaling.original_max_position_embeddings}};
  }
  if (c.bos_token_id) j["bos_token_id"] = *c.bos_token_id;
  if (c.eos_token_ids.size() == 1) j["eos_token_id"] = c.eos_token_ids[0];
  if (c.eos_token_ids.size() > 1) j["eos_token_id"] = c.eos_token_ids;
  return j;
}

}  // namespace dself::llm
