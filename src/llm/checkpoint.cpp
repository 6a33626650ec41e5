// A Hugging Face checkpoint directory in and out: config.json and safetensors weights (one
// model.safetensors, or shards listed by model.safetensors.index.json), F32/F16/BF16.
// ref: transformers' sharded checkpoints: {"metadata": {...}, "weight_map": {"name": "shard file"}}.
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "core/safetensors.h"
#include "llm/detail/model_impl.h"
#include "llm/llm.h"

namespace dself::llm {

namespace {

torch::Tensor to_torch(const safetensors::Tensor& t, const std::string& name) {
  auto values = safetensors::to_floats(t, name);
  return torch::from_blob(values.data(), t.shape, torch::kFloat).clone();
}

int64_t available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  int64_t value = 0;
  std::string unit;
  while (in >> key >> value >> unit) {
    if (key == "MemAvailable:") return value * 1024;
  }
  return 0;  // unknown: no check
}

}  // namespace

int64_t memory_needed_bytes(const Config& c, int64_t context_length) {
  const int64_t weights = c.parameter_count() * int64_t(sizeof(float));
  const int64_t cache = 2 * c.n_layers * c.n_kv_heads * context_length * c.head_dim * int64_t(sizeof(float));
  // Activations of a prefill of the whole context: the attention scores of one layer dominate.
  const int64_t scores = c.n_heads * context_length * context_length * int64_t(sizeof(float));
  return weights + cache + scores;
}

std::map<std::string, torch::Tensor> read_weights(const std::filesystem::path& dir,
                                                  std::map<std::string, safetensors::DType>* dtypes) {
  std::vector<std::filesystem::path> files;
  const auto index = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(dir / "model.safetensors")) {
    files.push_back(dir / "model.safetensors");
  } else if (std::filesystem::exists(index)) {
    nlohmann::json json;
    try {
      json = nlohmann::json::parse(read_file(index));
    } catch (const nlohmann::json::exception& e) {
      throw InputError(fmt::format("{}: not valid JSON ({})", index.string(), e.what()));
    }
    if (!json.contains("weight_map") || !json["weight_map"].is_object()) {
      throw InputError(index.string() + ": no \"weight_map\" object (a sharded checkpoint's index names each "
                                        "tensor's shard)");
    }
    std::set<std::string> shards;
    for (const auto& [name, file] : json["weight_map"].items()) {
      const std::string f = file.is_string() ? file.get<std::string>() : "";
      if (f.empty() || f.find('/') != std::string::npos || f.find("..") != std::string::npos) {
        throw InputError(fmt::format("{}: the shard of \"{}\" must be a file name in the same directory", index.string(),
                                     name));
      }
      shards.insert(f);
    }
    for (const auto& f : shards) {
      if (!std::filesystem::exists(dir / f)) {
        throw InputError(fmt::format("{}: the shard {} listed in model.safetensors.index.json is missing",
                                     dir.string(), f));
      }
      files.push_back(dir / f);
    }
  } else {
    throw InputError(fmt::format("{}: no model.safetensors nor model.safetensors.index.json (dself reads "
                                 "safetensors weights; convert a .bin checkpoint first)", dir.string()));
  }
  std::map<std::string, torch::Tensor> weights;
  for (const auto& path : files) {
    auto file = safetensors::read(path);
    for (auto& [name, t] : file.tensors) {
      if (t.dtype != safetensors::DType::F32 && t.dtype != safetensors::DType::F16 &&
          t.dtype != safetensors::DType::BF16) {
        throw InputError(fmt::format("{}: tensor \"{}\" is {}, not a float type (F32, F16, BF16)", path.string(), name,
                                     safetensors::dtype_name(t.dtype)));
      }
      weights[name] = to_torch(t, path.string() + ": " + name);
      if (dtypes) (*dtypes)[name] = t.dtype;
      t.bytes.clear();
      t.bytes.shrink_to_fit();
    }
  }
  return weights;
}

Model Model::load(const std::filesystem::path& dir, const LoadOptions& options) {
  if (!std::filesystem::is_directory(dir)) {
    throw InputError(fmt::format("{}: not a directory (--model must be a Hugging Face checkpoint directory)",
                                 dir.string()));
  }
  Config config = read_config(dir);
  const int64_t context =
      options.context_length > 0 ? options.context_length : std::min<int64_t>(config.max_position_embeddings, 4096);
  const int64_t needed = memory_needed_bytes(config, context);
  const int64_t limit = options.memory_limit_bytes > 0 ? options.memory_limit_bytes : available_memory_bytes();
  if (limit > 0 && needed > limit) {
    throw InputError(fmt::format(
        "{}: the model needs {:.2f} GB of memory ({:.0f}M parameters as float32 plus a {}-token cache) but {:.2f} GB "
        "are available; choose a smaller checkpoint or a shorter context",
        dir.string(), needed / 1e9, config.parameter_count() / 1e6, context, limit / 1e9));
  }
  std::map<std::string, safetensors::DType> dtypes;
  auto weights = read_weights(dir, &dtypes);
  Model model(std::move(config), weights, context, dir.string());
  model.impl_->dtypes = std::move(dtypes);
  return model;
}

void Model::save(const std::filesystem::path& dir) const {
  std::filesystem::create_directories(dir);
  safetensors::File file;
  file.metadata["format"] = "pt";
  for (const auto& [name, tensor] : impl_->names) {
    auto it = impl_->dtypes.find(name);
    const auto dtype = it == impl_->dtypes.end() ? safetensors::DType::F32 : it->second;
    auto t = tensor.detach().contiguous();
    file.tensors[name] = safetensors::from_floats(
        std::span<const float>(t.data_ptr<float>(), size_t(t.numel())),
        std::vector<int64_t>(t.sizes().begin(), t.sizes().end()), dtype);
  }
  safetensors::write(dir / "model.safetensors", file);
  write_file_atomic(dir / "config.json", to_json(impl_->config).dump(2) + "\n");
}

}  // namespace dself::llm
