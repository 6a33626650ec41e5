// Which Whisper checkpoint an avatar uses, the checks on one a user names, and its identity for
// prepare's input hashes.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "core/avatar_config.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/workspace.h"
#include "hf/checkpoint.h"
#include "hf/tokenizer.h"
#include "whisper/detail/model.h"
#include "whisper/whisper.h"

namespace dself::whisper {

namespace fs = std::filesystem;

const char* model_source_name(ModelSource source) {
  switch (source) {
    case ModelSource::flag:
      return "flag";
    case ModelSource::trained:
      return "trained";
    case ModelSource::config:
      return "config";
  }
  return "?";
}

std::optional<ModelChoice> find_model(const fs::path& avatar, const fs::path& flag_dir) {
  if (!flag_dir.empty()) return ModelChoice{flag_dir, ModelSource::flag};
  const fs::path trained = workspace::model_dir(avatar, "whisper");
  if (fs::exists(trained / "config.json")) return ModelChoice{trained, ModelSource::trained};
  const AvatarConfig config = read_avatar_config(avatar);
  if (config.whisper_model) return ModelChoice{*config.whisper_model, ModelSource::config};
  return std::nullopt;
}

ModelChoice resolve_model(const fs::path& avatar, const fs::path& flag_dir, const std::string& flag_name) {
  if (auto choice = find_model(avatar, flag_dir)) return *choice;
  throw InputError(
      fmt::format("no Whisper model: give {} DIR (a Hugging Face Whisper checkpoint: config.json, model.safetensors, "
                  "tokenizer files), or set one for the avatar with `dself --avatar {} config whisper_model DIR`, or "
                  "fine-tune one with `dself train stt --whisper DIR`",
                  flag_name, avatar.string()));
}

void check_checkpoint(const fs::path& dir) {
  const nlohmann::json config = hf::read_config(dir);
  WhisperConfig::from_json(config, (dir / "config.json").string());
  if (!fs::exists(dir / "model.safetensors") && !fs::exists(dir / "model.safetensors.index.json")) {
    throw InputError(
        fmt::format("{}: missing (no weights: neither model.safetensors nor "
                    "model.safetensors.index.json is in {})",
                    (dir / "model.safetensors").string(), dir.string()));
  }
  hf::Tokenizer::load(dir);
}

std::string model_identity(const fs::path& dir) {
  const fs::path config = dir / "config.json";
  if (!fs::exists(config)) throw InputError(fmt::format("{}: missing (the model's configuration)", config.string()));
  std::string identity = fs::absolute(dir).lexically_normal().string() + "|config " + hash_file(config);
  for (const char* name :
       {"tokenizer.json", "vocab.json", "merges.txt", "added_tokens.json", "generation_config.json"}) {
    if (fs::exists(dir / name)) identity += fmt::format("|{} {}", name, hash_file(dir / name));
  }
  // Weights: every safetensors file and the index, by size and time (a fine-tune rewrites them).
  std::vector<fs::path> weights;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".safetensors" || name == "model.safetensors.index.json")
      weights.push_back(entry.path());
  }
  std::sort(weights.begin(), weights.end());
  for (const auto& w : weights) {
    const auto mtime = fs::last_write_time(w).time_since_epoch();
    identity += fmt::format("|{} {} {}", w.filename().string(), fs::file_size(w),
                            std::chrono::duration_cast<std::chrono::nanoseconds>(mtime).count());
  }
  return hash_bytes(identity);
}

}  // namespace dself::whisper
