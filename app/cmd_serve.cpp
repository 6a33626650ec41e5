// dself serve: the API (docs/API.md), the live avatar over a WebSocket, and the web UI.
#include <fmt/format.h>

#include <cstdlib>
#include <memory>

#include "app/commands.h"
#include "core/error.h"
#include "server/server.h"

namespace dself {

void add_serve_command(CLI::App& app, const GlobalOptions& globals) {
  auto options = std::make_shared<server::ServeOptions>();
  options->web_root = server::default_web_root();
  auto* command = app.add_subcommand("serve", "Serve the API, the live avatar (WebSocket) and the web UI");
  command->add_option("--host", options->host, "Address to bind; any but loopback needs --token")->capture_default_str();
  command->add_option("--port", options->port, "TCP port (0: one the system picks, printed when listening)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  command->add_option("--token", options->token,
                      "Access token every /api/ call and the WebSocket must carry (Authorization: Bearer T, or ?token=T)")
      ->envname("DSELF_TOKEN");
  command->add_option("--web-root", options->web_root, "The built web UI (`make web`)")->capture_default_str();
  command->add_option("--max-upload-mb", options->max_upload_mb, "Largest video upload, MiB")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  command->add_option("--max-body-kb", options->max_body_kb, "Largest JSON request body, KiB")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  command->add_option("--max-message-kb", options->max_message_kb, "Largest WebSocket message (voice messages), KiB")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  command->add_option("--max-live-sessions", options->max_live_sessions, "Live conversations at once")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command->add_option("--io-threads", options->io_threads, "Threads serving HTTP (models run elsewhere)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  command->add_option("--engine", options->engine,
                      "Chat engine: extractive (the person's own sentences), openai (a server), llm (a local model)")
      ->check(CLI::IsMember({"extractive", "openai", "llm"}))
      ->capture_default_str();
  add_llm_options(*command, options->llm);
  command->add_option("--llm-url", options->llm_url,
                      "openai engine: the server's base URL, e.g. http://127.0.0.1:8000/v1 (key: $DSELF_LLM_API_KEY)");
  command->add_option("--llm-model", options->llm_model, "openai engine: the model name");
  command->add_option("--yt-dlp", options->yt_dlp, "Ingest jobs: the yt-dlp program")
      ->envname("DSELF_YTDLP")
      ->capture_default_str();
  command->add_option("--stt", options->stt,
                      "Engine of the live avatar's voice messages: pocketsphinx or whisper (default: whisper when "
                      "`dself config stt` says so, else pocketsphinx)")
      ->check(CLI::IsMember({"pocketsphinx", "whisper"}));
  command->add_option("--whisper-model", options->whisper_model,
                      "--stt whisper: a Hugging Face Whisper checkpoint directory (--model is the llm engine's "
                      "chat model); default: the person's fine-tuned models/whisper, else `dself config "
                      "whisper_model`. Loaded once at start: one that does not load stops serve (exit 1)");
  command->footer(
      "Prints `dself serve: listening on http://HOST:PORT/` when ready; stops on Ctrl-C or SIGTERM.\n"
      "The API and the live protocol: docs/API.md.");
  command->callback([options, command, &globals] {
    // A web root the user named must exist; the default one may not (the UI not built yet).
    std::error_code ec;
    if (command->count("--web-root") > 0 && !std::filesystem::is_directory(options->web_root, ec)) {
      throw InputError(fmt::format("--web-root {}: no such directory; give the directory `make web` builds "
                                   "(web/dist of the source tree)",
                                   options->web_root.string()));
    }
    // Absolute, so that paths the jobs hand on (uploads/NAME) mean the same from every thread.
    options->avatar = std::filesystem::absolute(globals.avatar);
    if (const char* key = std::getenv("DSELF_LLM_API_KEY")) options->llm_api_key = key;
    server::serve(*options);
  });
}

}  // namespace dself
