// The avatar's settings, set once with `dself config` and read by the commands that use them:
// <avatar>/config.json (docs/FORMATS.md), mirrored by AvatarConfig.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace dself {

// <avatar>/config.json; a key absent from the file is unset (the command's own default applies):
//   {"format": "dself-config", "version": 1,
//    "stt": "auto" | "captions" | "pocketsphinx" | "whisper",   (prepare's and the server's engine)
//    "whisper_model": "/abs/path/to/a/whisper/checkpoint"}
struct AvatarConfig {
  std::optional<std::string> stt;                      // the default STT engine of prepare and serve
  std::optional<std::filesystem::path> whisper_model;  // a Hugging Face Whisper checkpoint directory (absolute)
};

// The keys, in the order `dself config` lists them.
const std::vector<std::string>& avatar_config_keys();
// The values `stt` may take.
const std::vector<std::string>& stt_engine_names();

// Reads <avatar>/config.json; no file: every key unset. Throws InputError naming the file when it
// is not a dself config (malformed JSON, an unknown key, a value of the wrong kind).
AvatarConfig read_avatar_config(const std::filesystem::path& avatar);

// Writes <avatar>/config.json atomically (the avatar directory must exist). Throws EnvironmentError.
void write_avatar_config(const std::filesystem::path& avatar, const AvatarConfig& config);

// A key's value as text ("" when unset). Throws InputError listing the keys for an unknown one.
std::string avatar_config_value(const AvatarConfig& config, const std::string& key);

}  // namespace dself
