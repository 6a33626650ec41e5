// LoRA adapters: made, saved and read in Hugging Face PEFT's layout, attached to the model's
// projections or merged into them; the masked causal-LM loss and AdamW that train them.
// ref: Hu et al. 2021 (LoRA, §4.1: h = W0 x + B A x, B = 0 at the start, ΔW scaled by alpha/r);
// PEFT's tuners/lora/layer.py (reset_lora_parameters: kaiming_uniform_(A, a=sqrt(5)), zeros_(B);
// scaling = lora_alpha / r, or lora_alpha / sqrt(r) with use_rslora; get_delta_weight = B @ A *
// scaling) and its save_pretrained (tensor names without the adapter name, "adapter_model.safetensors").
#include <fmt/format.h>
#include <torch/nn/functional/loss.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/safetensors.h"
#include "hf/checkpoint.h"
#include "hf/torch.h"
#include "llm/detail/model_impl.h"
#include "llm/llm.h"

namespace dself::llm {

namespace {

namespace fs = std::filesystem;

const std::string kPrefix = "base_model.model.";  // PEFT's PeftModelForCausalLM → LoraModel → the model

std::string tensor_name(int64_t layer, const std::string& module, char ab) {
  const bool attention = module == "q_proj" || module == "k_proj" || module == "v_proj" || module == "o_proj";
  return fmt::format("{}model.layers.{}.{}.{}.lora_{}.weight", kPrefix, layer, attention ? "self_attn" : "mlp", module,
                     ab);
}

std::string shape_text(torch::IntArrayRef shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// The adapter's tensors checked against the model: every (layer, target) has A [r, in] and B [out, r].
void check_fits(const Model& model, const Adapter& adapter, const std::string& where) {
  auto& m = model.impl();
  const int64_t r = adapter.config.rank;
  std::set<std::string> expected;
  for (size_t li = 0; li < m.layers.size(); ++li) {
    for (const auto& module : adapter.config.target_modules) {
      Linear* l = target_linear(m.layers[li], module);
      const int64_t out = l->weight.size(0), in = l->weight.size(1);
      for (auto [ab, shape] :
           {std::pair{'A', std::vector<int64_t>{r, in}}, std::pair{'B', std::vector<int64_t>{out, r}}}) {
        const std::string name = tensor_name(int64_t(li), module, ab);
        expected.insert(name);
        auto it = adapter.tensors.find(name);
        if (it == adapter.tensors.end()) {
          throw InputError(fmt::format("{}: the tensor \"{}\" is missing (target_modules names {} for every layer)",
                                       where, name, module));
        }
        if (it->second.sizes() != torch::IntArrayRef(shape)) {
          throw InputError(
              fmt::format("{}: the tensor \"{}\" has shape {} but the base model implies {}: an adapter "
                          "for another base model (or another rank)",
                          where, name, shape_text(it->second.sizes()), shape_text(shape)));
        }
      }
    }
  }
  for (const auto& [name, t] : adapter.tensors) {
    if (!expected.count(name)) {
      throw InputError(
          fmt::format("{}: the tensor \"{}\" is not a LoRA weight of this base model's layers and "
                      "target modules (an adapter for another base model, or of another kind)",
                      where, name));
    }
  }
}

}  // namespace

Linear* target_linear(Layer& layer, const std::string& module) {
  if (module == "q_proj") return &layer.q_proj;
  if (module == "k_proj") return &layer.k_proj;
  if (module == "v_proj") return &layer.v_proj;
  if (module == "o_proj") return &layer.o_proj;
  if (module == "gate_proj") return &layer.gate_proj;
  if (module == "up_proj") return &layer.up_proj;
  if (module == "down_proj") return &layer.down_proj;
  return nullptr;
}

const std::vector<std::string>& lora_target_modules() {
  static const std::vector<std::string> modules = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                   "gate_proj", "up_proj", "down_proj"};
  return modules;
}

void check_lora_config(const LoraConfig& c, const std::string& where) {
  if (c.rank < 1) throw InputError(fmt::format("{}: the LoRA rank must be at least 1 (it is {})", where, c.rank));
  if (!(c.alpha > 0))
    throw InputError(fmt::format("{}: lora_alpha must be a positive number (it is {})", where, c.alpha));
  if (!(c.dropout >= 0 && c.dropout < 1)) {
    throw InputError(fmt::format("{}: lora_dropout must be in [0, 1) (it is {})", where, c.dropout));
  }
  if (c.target_modules.empty()) throw InputError(fmt::format("{}: no target modules", where));
  const auto& known = lora_target_modules();
  std::set<std::string> seen;
  for (const auto& t : c.target_modules) {
    if (std::find(known.begin(), known.end(), t) == known.end()) {
      throw InputError(fmt::format("{}: unknown target module \"{}\" (known: {})", where, t, fmt::join(known, ", ")));
    }
    if (!seen.insert(t).second) throw InputError(fmt::format("{}: target module \"{}\" named twice", where, t));
  }
}

Adapter new_adapter(const Model& model, const LoraConfig& config, uint64_t seed) {
  check_lora_config(config, "LoRA config");
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  Adapter adapter;
  adapter.config = config;
  auto& m = model.impl();
  for (size_t li = 0; li < m.layers.size(); ++li) {
    for (const auto& module : config.target_modules) {
      Linear* l = target_linear(m.layers[li], module);
      const int64_t out = l->weight.size(0), in = l->weight.size(1);
      // kaiming_uniform_(a=sqrt(5)): gain sqrt(2 / (1 + 5)), bound gain · sqrt(3 / fan_in) = 1 / sqrt(fan_in).
      const double bound = 1.0 / std::sqrt(double(in));
      adapter.tensors[tensor_name(int64_t(li), module, 'A')] =
          at::empty({config.rank, in}).uniform_(-bound, bound, gen);
      adapter.tensors[tensor_name(int64_t(li), module, 'B')] = torch::zeros({out, config.rank});
    }
  }
  return adapter;
}

void save_adapter(const fs::path& dir, const Adapter& adapter) {
  fs::create_directories(dir);
  const auto& c = adapter.config;
  nlohmann::json config = {{"peft_type", "LORA"},
                           {"task_type", "CAUSAL_LM"},
                           {"r", c.rank},
                           {"lora_alpha", c.alpha},
                           {"lora_dropout", c.dropout},
                           {"target_modules", c.target_modules},
                           {"bias", "none"},
                           {"base_model_name_or_path", c.base_model},
                           {"fan_in_fan_out", false},
                           {"use_rslora", false},
                           {"inference_mode", true},
                           {"modules_to_save", nullptr}};
  safetensors::File file;
  file.metadata["format"] = "pt";
  for (const auto& [name, tensor] : adapter.tensors) file.tensors[name] = hf::from_torch(tensor.detach().contiguous());
  safetensors::write(dir / "adapter_model.safetensors", file);
  write_file_atomic(dir / "adapter_config.json", config.dump(2) + "\n");
}

Adapter load_adapter(const fs::path& dir, const Model& model) {
  if (!fs::is_directory(dir)) {
    throw InputError(
        fmt::format("{}: not a directory (an adapter is a directory with adapter_config.json and "
                    "adapter_model.safetensors)",
                    dir.string()));
  }
  const fs::path config_path = dir / "adapter_config.json";
  const fs::path weights_path = dir / "adapter_model.safetensors";
  if (!fs::is_regular_file(config_path)) {
    throw InputError(fmt::format("{}: no adapter_config.json (not a PEFT adapter directory)", dir.string()));
  }
  if (!fs::is_regular_file(weights_path)) {
    throw InputError(
        fmt::format("{}: the adapter weights are missing (adapter_model.safetensors; a PEFT adapter "
                    "saved with safe_serialization=False is not read)",
                    weights_path.string()));
  }
  const auto json = hf::read_json(config_path, "the adapter's config");
  const std::string where = config_path.string();
  Adapter adapter;
  auto& c = adapter.config;
  try {
    const std::string type = json.value("peft_type", "");
    if (type != "LORA") throw InputError(fmt::format("{}: peft_type is \"{}\", not \"LORA\"", where, type));
    c.rank = json.at("r").get<int64_t>();
    c.alpha = json.at("lora_alpha").get<double>();
    c.dropout = json.value("lora_dropout", 0.0);
    const auto& targets = json.at("target_modules");
    c.target_modules.clear();
    if (targets.is_string()) {
      throw InputError(fmt::format("{}: target_modules is a pattern (\"{}\"); dself reads a list of module names",
                                   where, targets.get<std::string>()));
    }
    for (const auto& t : targets) c.target_modules.push_back(t.get<std::string>());
    // PEFT saves target_modules as a set: the order is not meaningful; keep dself's own order.
    std::vector<std::string> ordered;
    for (const auto& known : lora_target_modules()) {
      if (std::find(c.target_modules.begin(), c.target_modules.end(), known) != c.target_modules.end()) {
        ordered.push_back(known);
      }
    }
    check_lora_config(c, where);
    c.target_modules = ordered;
    if (json.contains("base_model_name_or_path") && json["base_model_name_or_path"].is_string()) {
      c.base_model = json["base_model_name_or_path"].get<std::string>();
    }
    const std::string bias = json.value("bias", "none");
    if (bias != "none")
      throw InputError(fmt::format("{}: bias \"{}\": dself applies LoRA with bias \"none\" only", where, bias));
    if (json.value("fan_in_fan_out", false))
      throw InputError(fmt::format("{}: fan_in_fan_out is for GPT-2's Conv1D, not these models", where));
    if (json.value("use_dora", false)) {
      throw InputError(fmt::format("{}: use_dora (weight-decomposed LoRA) is not supported", where));
    }
    if (json.value("use_rslora", false))
      throw InputError(fmt::format("{}: use_rslora (scale alpha/sqrt(r)) is not supported", where));
    for (const char* key : {"rank_pattern", "alpha_pattern"}) {
      if (json.contains(key) && !json[key].is_null() && !json[key].empty()) {
        throw InputError(fmt::format("{}: a {} (per-layer ranks or alphas) is not supported", where, key));
      }
    }
    if (json.contains("modules_to_save") && !json["modules_to_save"].is_null() && !json["modules_to_save"].empty()) {
      throw InputError(fmt::format("{}: modules_to_save (fully trained extra modules) is not supported", where));
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not a LoRA adapter config ({})", where, e.what()));
  }
  const auto file = safetensors::read(weights_path);
  for (const auto& [name, t] : file.tensors) {
    adapter.tensors[name] = hf::to_torch(t, weights_path.string() + ": " + name).to(torch::kFloat);
  }
  check_fits(model, adapter, weights_path.string());
  return adapter;
}

void apply_adapter(Model& model, const Adapter& adapter) {
  check_fits(model, adapter, "the adapter");
  remove_adapter(model);
  auto& m = model.impl();
  for (size_t li = 0; li < m.layers.size(); ++li) {
    for (const auto& module : adapter.config.target_modules) {
      Linear* l = target_linear(m.layers[li], module);
      l->lora_a = adapter.tensors.at(tensor_name(int64_t(li), module, 'A'));
      l->lora_b = adapter.tensors.at(tensor_name(int64_t(li), module, 'B'));
      l->lora_scale = adapter.config.scale();
    }
  }
}

void remove_adapter(Model& model) {
  for (auto& layer : model.impl().layers) {
    for (const auto& module : lora_target_modules()) {
      Linear* l = target_linear(layer, module);
      l->lora_a = torch::Tensor();
      l->lora_b = torch::Tensor();
      l->lora_scale = 0;
    }
  }
}

void merge_adapter(Model& model, const Adapter& adapter) {
  check_fits(model, adapter, "the adapter");
  remove_adapter(model);
  torch::NoGradGuard no_grad;
  auto& m = model.impl();
  for (size_t li = 0; li < m.layers.size(); ++li) {
    for (const auto& module : adapter.config.target_modules) {
      Linear* l = target_linear(m.layers[li], module);
      const auto& a = adapter.tensors.at(tensor_name(int64_t(li), module, 'A'));
      const auto& b = adapter.tensors.at(tensor_name(int64_t(li), module, 'B'));
      // In place: the checkpoint's name table (for save) holds the same tensor.
      l->weight.add_(torch::matmul(b, a) * adapter.config.scale());
    }
  }
  // A merged model is saved as float32: the update would be lost to a 16-bit rounding.
  m.dtypes.clear();
}

std::string base_fingerprint(const fs::path& base_dir) {
  // Cheap (no weight is read): config.json's bytes and the name and size of every weights file.
  std::string text = read_file(base_dir / "config.json");
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(base_dir)) {
    if (entry.path().extension() == ".safetensors" && entry.is_regular_file()) {
      files.push_back(fmt::format("{} {}", entry.path().filename().string(), entry.file_size()));
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) text += "\n" + f;
  return hash_bytes(text);
}

torch::Tensor training_loss(const Model& model, const TrainingExample& example, double dropout,
                            at::Generator* generator) {
  const auto& tokens = example.tokens;
  if (tokens.size() < 2 || example.predicted.size() != tokens.size()) {
    throw InputError("a training example needs two tokens or more, each marked predicted or not");
  }
  LoraDropout d{dropout, generator};
  auto logits = forward_tokens(model.impl(), tokens, nullptr, /*all_positions=*/true, dropout > 0 ? &d : nullptr);
  std::vector<int64_t> rows, targets;
  for (size_t i = 1; i < tokens.size(); ++i) {
    if (example.predicted[i]) {
      rows.push_back(int64_t(i) - 1);
      targets.push_back(tokens[i]);
    }
  }
  if (rows.empty()) throw InputError("a training example with no predicted token");
  auto selected = logits.index_select(0, torch::tensor(rows, torch::kLong));
  return torch::nn::functional::cross_entropy(selected, torch::tensor(targets, torch::kLong));
}

// ref: Loshchilov & Hutter 2019, Algorithm 2 (AdamW), as torch.optim.AdamW computes it:
// θ ← θ − lr·λ·θ; m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
// θ ← θ − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + ε).
void AdamW::update(std::map<std::string, torch::Tensor>& params, double lr) {
  torch::NoGradGuard no_grad;
  ++step;
  const double bias1 = 1 - std::pow(beta1, double(step));
  const double bias2 = 1 - std::pow(beta2, double(step));
  for (auto& [name, p] : params) {
    if (!p.grad().defined()) continue;
    auto g = p.grad();
    auto& mt = m[name];
    auto& vt = v[name];
    if (!mt.defined()) mt = torch::zeros_like(p);
    if (!vt.defined()) vt = torch::zeros_like(p);
    if (weight_decay > 0) p.mul_(1 - lr * weight_decay);
    mt.mul_(beta1).add_(g, 1 - beta1);
    vt.mul_(beta2).addcmul_(g, g, 1 - beta2);
    auto denom = (vt / bias2).sqrt_().add_(eps);
    p.addcdiv_(mt, denom, -lr / bias1);
    p.mutable_grad() = torch::Tensor();
  }
}

}  // namespace dself::llm
