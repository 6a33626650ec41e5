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
#include "hf/checkpoint.h"
#include "hf/torch.h"
#include "llm/detail/model_impl.h"
#include "llm/llm.h"

namespace dself::llm {

namespace {

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
  // src/hf reads model.safetensors or the shards of model.safetensors.index.json, naming the file
  // of any problem.
  auto checkpoint = hf::Checkpoint::open(dir);
  std::map<std::string, torch::Tensor> weights;
  for (const auto& name : checkpoint.names()) {
    const auto& t = checkpoint.tensor(name);
    if (t.dtype != safetensors::DType::F32 && t.dtype != safetensors::DType::F16 &&
        t.dtype != safetensors::DType::BF16) {
      throw InputError(fmt::format("{}: tensor \"{}\" is {}, not a float type (F32, F16, BF16)",
                                   checkpoint.file_of(name).string(), name, safetensors::dtype_name(t.dtype)));
    }
    weights[name] = hf::to_torch(t, checkpoint.file_of(name).string() + ": " + name).to(torch::kFloat);
    if (dtypes) (*dtypes)[name] = t.dtype;
  }
  return weights;
}

Model Model::load(const std::filesystem::path& dir, const LoadOptions& options) {
  if (!std::filesystem::is_directory(dir)) {
    throw InputError(fmt::format("{}: not a directory (--model must be a Hugging Face checkpoint directory)",
                                 dir.string()));
  }
  Config config = read_config(dir);
  const int64_t context = std::min<int64_t>(config.max_position_embeddings,
                                            options.context_length > 0 ? options.context_length : 4096);
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
