// The dself CLI's commands; each file app/cmd_<name>.cpp registers one.
#pragma once

#include <filesystem>

#include <CLI/CLI.hpp>

#include "core/log.h"
#include "core/progress.h"
#include "persona/persona.h"

namespace dself {

// Options every command sees, filled by the global flags before a command's callback runs.
struct GlobalOptions {
  std::filesystem::path avatar = "avatar";  // --avatar, or $DSELF_AVATAR
  Verbosity verbosity = Verbosity::normal;
};

// From now on, SIGINT (Ctrl-C) and SIGTERM ask the running work to stop instead of killing the
// process: the returned StopRequested says yes once one came. A second signal kills at once.
// Work that stops throws Stopped, and main says so on stderr and exits 130.
StopRequested stop_on_interrupt();

void add_sample_command(CLI::App& app, const GlobalOptions& globals);
void add_ingest_command(CLI::App& app, const GlobalOptions& globals);
void add_prepare_command(CLI::App& app, const GlobalOptions& globals);
void add_status_command(CLI::App& app, const GlobalOptions& globals);
void add_eval_command(CLI::App& app, const GlobalOptions& globals);
void add_eval_persona_command(CLI::App& eval, const GlobalOptions& globals);  // `dself eval persona`
void add_report_command(CLI::App& app, const GlobalOptions& globals);
void add_chat_command(CLI::App& app, const GlobalOptions& globals);
// The llm engine's flags (--model DIR, --llm-*), shared by chat and serve; defaults from LlmOptions.
void add_llm_options(CLI::App& command, persona::LlmOptions& options);
void add_say_command(CLI::App& app, const GlobalOptions& globals);
void add_eval_say_command(CLI::App& eval, const GlobalOptions& globals);  // `dself eval say`
void add_eval_voice_command(CLI::App& eval, const GlobalOptions& globals);  // `dself eval voice`
void add_eval_stt_command(CLI::App& eval, const GlobalOptions& globals);  // `dself eval stt`
void add_train_command(CLI::App& app, const GlobalOptions& globals);
void add_transcribe_command(CLI::App& app, const GlobalOptions& globals);
void add_serve_command(CLI::App& app, const GlobalOptions& globals);
void add_config_command(CLI::App& app, const GlobalOptions& globals);

}  // namespace dself
