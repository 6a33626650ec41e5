// A Hugging Face checkpoint directory: config.json and the weights in model.safetensors, or in
// shards listed by model.safetensors.index.json. Torch-free (hf/torch.h converts a tensor).
// ref: https://huggingface.co/docs/safetensors (format); transformers' modeling_utils
// (the "weight_map" of model.safetensors.index.json).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace dself::hf {

// A JSON file of a checkpoint; `what` says what it holds. Throws InputError naming the file when
// it is missing or not valid JSON.
nlohmann::json read_json(const std::filesystem::path& path, const std::string& what);

// The checkpoint's config.json. Throws InputError naming the file when it is missing or not a
// JSON object, or when `dir` is not a directory.
nlohmann::json read_config(const std::filesystem::path& dir);

// Every tensor of a checkpoint, with the file each one came from (for errors).
class Checkpoint {
 public:
  // Reads config.json and the weights. Throws InputError naming the file: a missing directory,
  // config or weights file, a truncated or malformed safetensors file, an index naming a shard
  // that is missing or that lacks the tensor it should hold.
  static Checkpoint open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const nlohmann::json& config() const { return config_; }

  bool has(const std::string& name) const;
  // The tensor `name`; throws InputError naming the weights file when it is absent.
  const safetensors::Tensor& tensor(const std::string& name) const;
  // The tensor `name` with exactly `shape`; throws InputError naming the file, the tensor and both
  // shapes otherwise (a checkpoint of another size or architecture).
  const safetensors::Tensor& expect(const std::string& name, const std::vector<int64_t>& shape) const;
  // The file (model.safetensors or a shard) that holds `name` (the weights file if it is absent).
  std::filesystem::path file_of(const std::string& name) const;
  std::vector<std::string> names() const;

 private:
  std::filesystem::path dir_;
  nlohmann::json config_;
  std::filesystem::path weights_path_;  // model.safetensors, or the index
  std::vector<std::filesystem::path> shard_paths_;
  std::map<std::string, std::pair<size_t, safetensors::Tensor>> tensors_;  // name -> (shard, tensor)
};

// Writes a checkpoint directory: config.json and model.safetensors (or, when max_shard_bytes > 0
// and the tensors exceed it, model-0000K-of-0000N.safetensors shards and their index), each file
// atomically. Throws EnvironmentError.
void write_checkpoint(const std::filesystem::path& dir, const nlohmann::json& config, const safetensors::File& weights,
                      uint64_t max_shard_bytes = 0);

}  // namespace dself::hf
