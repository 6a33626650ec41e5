#include "hf/checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "core/error.h"
#include "core/fs.h"

namespace dself::hf {

namespace fs = std::filesystem;

nlohmann::json read_json(const fs::path& path, const std::string& what) {
  if (!fs::exists(path)) throw InputError(fmt::format("{}: missing ({} expected there)", path.string(), what));
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: not valid JSON: {}", path.string(), e.what()));
  }
}


nlohmann::json read_config(const fs::path& dir) {
  if (!fs::is_directory(dir))
    throw InputError(
        fmt::format("{}: not a directory (give a Hugging Face checkpoint directory: config.json, "
                    "model.safetensors, tokenizer files)",
                    dir.string()));
  auto config = read_json(dir / "config.json", "the model's configuration");
  if (!config.is_object()) throw InputError(fmt::format("{}: not a JSON object", (dir / "config.json").string()));
  return config;
}

Checkpoint Checkpoint::open(const fs::path& dir) {
  Checkpoint c;
  c.dir_ = dir;
  c.config_ = read_config(dir);
  const fs::path single = dir / "model.safetensors";
  const fs::path index = dir / "model.safetensors.index.json";
  if (fs::exists(single)) {
    c.weights_path_ = single;
    c.shard_paths_.push_back(single);
    auto file = safetensors::read(single);
    for (auto& [name, t] : file.tensors) c.tensors_.emplace(name, std::make_pair(size_t(0), std::move(t)));
    return c;
  }
  if (!fs::exists(index))
    throw InputError(
        fmt::format("{}: no weights: neither model.safetensors nor model.safetensors.index.json is there "
                    "(dself reads safetensors checkpoints; convert a pytorch_model.bin with Hugging Face's "
                    "tools first)",
                    dir.string()));
  c.weights_path_ = index;
  const auto json = read_json(index, "the index of the weight shards");
  if (!json.is_object() || !json.contains("weight_map") || !json["weight_map"].is_object())
    throw InputError(fmt::format("{}: no \"weight_map\" object", index.string()));
  std::map<std::string, std::vector<std::string>> by_shard;  // shard file -> tensor names
  for (const auto& [name, shard] : json["weight_map"].items()) {
    if (!shard.is_string())
      throw InputError(fmt::format("{}: weight_map[\"{}\"] is not a file name", index.string(), name));
    const auto file = shard.get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos || file.find("..") != std::string::npos)
      throw InputError(
          fmt::format("{}: weight_map[\"{}\"] names \"{}\", not a file in the directory", index.string(), name, file));
    by_shard[file].push_back(name);
  }
  for (const auto& [shard, names] : by_shard) {
    const fs::path path = dir / shard;
    if (!fs::exists(path))
      throw InputError(
          fmt::format("{}: missing (the shard {} names for {} tensors)", path.string(), index.string(), names.size()));
    auto file = safetensors::read(path);
    const size_t k = c.shard_paths_.size();
    c.shard_paths_.push_back(path);
    for (const auto& name : names) {
      auto it = file.tensors.find(name);
      if (it == file.tensors.end())
        throw InputError(fmt::format("{}: lacks tensor {} that {} places there", path.string(), name, index.string()));
      c.tensors_.emplace(name, std::make_pair(k, std::move(it->second)));
    }
  }
  return c;
}

bool Checkpoint::has(const std::string& name) const { return tensors_.count(name) > 0; }

const safetensors::Tensor& Checkpoint::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end())
    throw InputError(
        fmt::format("{}: no tensor {} (a checkpoint of another architecture?)", weights_path_.string(), name));
  return it->second.second;
}

const safetensors::Tensor& Checkpoint::expect(const std::string& name, const std::vector<int64_t>& shape) const {
  const auto& t = tensor(name);
  if (t.shape != shape)
    throw InputError(fmt::format("{}: tensor {} has shape [{}] where {} says [{}] (weights and config do not match)",
                                 file_of(name).string(), name, fmt::join(t.shape, ", "),
                                 (dir_ / "config.json").string(), fmt::join(shape, ", ")));
  return t;
}

fs::path Checkpoint::file_of(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? weights_path_ : shard_paths_[it->second.first];
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : tensors_) out.push_back(name);
  return out;
}

void write_checkpoint(const fs::path& dir, const nlohmann::json& config, const safetensors::File& weights,
                      uint64_t max_shard_bytes) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw EnvironmentError(fmt::format("{}: cannot create the directory: {}", dir.string(), ec.message()));
  write_file_atomic(dir / "config.json", config.dump(2) + "\n");
  uint64_t total = 0;
  for (const auto& [name, t] : weights.tensors) total += t.bytes.size();
  if (max_shard_bytes == 0 || total <= max_shard_bytes) {
    safetensors::write(dir / "model.safetensors", weights);
    return;
  }
  std::vector<safetensors::File> shards(1);
  uint64_t in_shard = 0;
  for (const auto& [name, t] : weights.tensors) {
    if (in_shard > 0 && in_shard + t.bytes.size() > max_shard_bytes) {
      shards.emplace_back();
      in_shard = 0;
    }
    shards.back().tensors[name] = t;
    shards.back().metadata = weights.metadata;
    in_shard += t.bytes.size();
  }
  nlohmann::json index = {{"metadata", {{"total_size", total}}}, {"weight_map", nlohmann::json::object()}};
  for (size_t k = 0; k < shards.size(); ++k) {
    const auto file = fmt::format("model-{:05d}-of-{:05d}.safetensors", k + 1, shards.size());
    safetensors::write(dir / file, shards[k]);
    for (const auto& [name, t] : shards[k].tensors) index["weight_map"][name] = file;
  }
  write_file_atomic(dir / "model.safetensors.index.json", index.dump(2) + "\n");
}

}  // namespace dself::hf
