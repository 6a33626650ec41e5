// dself config: the avatar's settings (<avatar>/config.json), set once and used by prepare, serve,
// transcribe and status.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdio>
#include <memory>

#include "app/commands.h"
#include "core/avatar_config.h"
#include "core/error.h"
#include "core/workspace.h"
#include "whisper/whisper.h"

namespace dself {
namespace {

namespace fs = std::filesystem;

struct ConfigOptions {
  std::string key;
  std::string value;
  std::string unset;  // --unset KEY
};

// Sets key to value after checking it: an engine name, or a directory that holds a Whisper checkpoint.
void set_value(AvatarConfig& config, const std::string& key, const std::string& value) {
  avatar_config_value(config, key);  // an unknown key throws, listing the keys
  if (key == "stt") {
    const auto& names = stt_engine_names();
    if (std::find(names.begin(), names.end(), value) == names.end()) {
      throw InputError(fmt::format("stt \"{}\": give one of {}", value, fmt::join(names, ", ")));
    }
    config.stt = value;
    return;
  }
  const fs::path dir = fs::absolute(value).lexically_normal();
  whisper::check_checkpoint(dir);
  config.whisper_model = dir;
}

}  // namespace

void add_config_command(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<ConfigOptions>();
  auto* command = app.add_subcommand("config", "Show or change the avatar's settings (KEY [VALUE])");
  command->add_option("key", options->key, fmt::format("The setting: {}", fmt::join(avatar_config_keys(), ", ")));
  command->add_option("value", options->value, "Its new value");
  command->add_option("--unset", options->unset, "Remove a setting (its default applies again)");
  command->footer(
      "Settings (stored in <avatar>/config.json):\n"
      "  stt            the default transcript engine of `prepare` and of the server's voice messages:\n"
      "                 auto (default: captions when a source has them, else PocketSphinx), captions,\n"
      "                 pocketsphinx or whisper\n"
      "  whisper_model  a Hugging Face Whisper checkpoint directory (config.json, model.safetensors,\n"
      "                 tokenizer files); checked when set. The person's fine-tuned model\n"
      "                 (models/whisper, `dself train stt --whisper`) comes before it, a --model flag\n"
      "                 before both.\n"
      "Without arguments: every setting; with KEY: its value (empty when unset); with KEY VALUE: set it.\n"
      "Exit status: 0 done; 1 an unknown key, a bad value or a malformed config file.");
  command->callback([options, &globals] {
    const fs::path& avatar = globals.avatar;
    AvatarConfig config = read_avatar_config(avatar);
    if (!options->unset.empty()) {
      if (!options->key.empty()) throw InputError("--unset KEY takes no other KEY or VALUE");
      avatar_config_value(config, options->unset);  // an unknown key throws
      if (options->unset == "stt") config.stt.reset();
      if (options->unset == "whisper_model") config.whisper_model.reset();
      if (fs::exists(avatar)) write_avatar_config(avatar, config);
      return;
    }
    if (options->key.empty()) {
      for (const auto& key : avatar_config_keys()) {
        const std::string value = avatar_config_value(config, key);
        std::printf("%s = %s\n", key.c_str(), value.empty() ? "(unset)" : value.c_str());
      }
      return;
    }
    if (options->value.empty()) {
      std::printf("%s\n", avatar_config_value(config, options->key).c_str());
      return;
    }
    set_value(config, options->key, options->value);
    fs::create_directories(avatar);
    write_avatar_config(avatar, config);
    std::printf("%s = %s\n", options->key.c_str(), avatar_config_value(config, options->key).c_str());
  });
}

}  // namespace dself
