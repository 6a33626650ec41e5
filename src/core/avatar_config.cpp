#include "core/avatar_config.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"
#include "core/workspace.h"

namespace dself {
namespace {

constexpr const char* kFormat = "dself-config";
constexpr int kVersion = 1;

void check_key(const std::string& key) {
  const auto& keys = avatar_config_keys();
  if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
    throw InputError(fmt::format("unknown setting \"{}\": the settings are {}", key, fmt::join(keys, ", ")));
  }
}

}  // namespace

const std::vector<std::string>& avatar_config_keys() {
  static const std::vector<std::string> keys = {"stt", "whisper_model"};
  return keys;
}

const std::vector<std::string>& stt_engine_names() {
  static const std::vector<std::string> names = {"auto", "captions", "pocketsphinx", "whisper"};
  return names;
}

AvatarConfig read_avatar_config(const std::filesystem::path& avatar) {
  const std::filesystem::path path = workspace::config_path(avatar);
  AvatarConfig config;
  if (!std::filesystem::exists(path)) return config;
  const nlohmann::json json = nlohmann::json::parse(read_file(path), nullptr, false);
  const std::string fix = "fix it with `dself config`, or remove the file";
  if (json.is_discarded() || !json.is_object() || json.value("format", nlohmann::json()) != kFormat) {
    throw InputError(fmt::format("{}: not a dself config (expected a JSON object with \"format\": \"{}\"); {}",
                                 path.string(), kFormat, fix));
  }
  for (const auto& [key, value] : json.items()) {
    if (key == "format" || key == "version") continue;
    try {
      check_key(key);
    } catch (const InputError& e) {
      throw InputError(fmt::format("{}: {}; {}", path.string(), e.what(), fix));
    }
    if (!value.is_string() || value.get<std::string>().empty()) {
      throw InputError(
          fmt::format("{}: \"{}\" is {}, not a non-empty string; {}", path.string(), key, value.dump(), fix));
    }
  }
  if (json.contains("stt")) {
    const std::string stt = json["stt"].get<std::string>();
    const auto& names = stt_engine_names();
    if (std::find(names.begin(), names.end(), stt) == names.end()) {
      throw InputError(
          fmt::format("{}: \"stt\" is \"{}\", not one of {}; {}", path.string(), stt, fmt::join(names, ", "), fix));
    }
    config.stt = stt;
  }
  if (json.contains("whisper_model"))
    config.whisper_model = std::filesystem::path(json["whisper_model"].get<std::string>());
  return config;
}

void write_avatar_config(const std::filesystem::path& avatar, const AvatarConfig& config) {
  nlohmann::json json = {{"format", kFormat}, {"version", kVersion}};
  if (config.stt) json["stt"] = *config.stt;
  if (config.whisper_model) json["whisper_model"] = config.whisper_model->string();
  write_file_atomic(workspace::config_path(avatar), json.dump(2) + "\n");
}

std::string avatar_config_value(const AvatarConfig& config, const std::string& key) {
  check_key(key);
  if (key == "stt") return config.stt.value_or("");
  return config.whisper_model ? config.whisper_model->string() : "";
}

}  // namespace dself
