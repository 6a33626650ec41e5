// The server (`dself serve`): the REST API, server-sent job events, the live conversation over a
// WebSocket and the built web UI, for one avatar. The API is docs/API.md. Models never run on the
// I/O threads: a job worker owns ingest/prepare/report, and every live session has a thread of
// its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "persona/persona.h"
#include "whisper/whisper.h"

namespace dself {
class Catalog;
}

namespace dself::server {

struct ServeOptions {
  std::filesystem::path avatar = "avatar";
  std::string host = "127.0.0.1";   // address to bind; any but loopback needs a token
  uint16_t port = 8080;
  std::string token;                // required on every /api/ call and the WebSocket when set
  std::filesystem::path web_root;   // the built web UI; empty: default_web_root()
  size_t max_upload_mb = 1024;      // largest upload (POST /api/uploads), MiB; it arrives in parts of at most
                                    // 8 MiB (all a request may hold in memory), written to a temporary file
  size_t max_body_kb = 256;         // largest JSON request body, KiB
  size_t max_message_kb = 8192;     // largest WebSocket message (a voice message in base64), KiB
  int max_live_sessions = 4;        // concurrent WebSocket conversations; more get 429
  int io_threads = 2;               // threads serving HTTP (never running models)
  std::string engine = "extractive";  // chat engine: "extractive", "openai" or "llm"
  persona::LlmOptions llm;            // llm engine: the local model (--model DIR) and its sampling
  std::string llm_url;              // openai engine: base URL of an OpenAI-compatible server
  std::string llm_model;            // openai engine: model name
  std::string llm_api_key;          // openai engine: bearer key ($DSELF_LLM_API_KEY)
  std::string yt_dlp = "yt-dlp";    // ingest jobs: the yt-dlp program
  // Voice messages: "pocketsphinx" or "whisper"; "": the avatar's `dself config stt` when it is
  // whisper, else pocketsphinx.
  std::string stt;
  std::filesystem::path whisper_model;  // --whisper-model; empty: whisper::find_model's choice
  // Filled by serve() before it listens: the Whisper checkpoint voice messages are transcribed
  // with (loaded once, shared by the live sessions), when the engine is whisper.
  std::shared_ptr<const whisper::Model> loaded_whisper;
};

// Where `make web` puts the web UI in this source tree (a build-time path).
std::filesystem::path default_web_root();

// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_host(const std::string& host);

// Checks the options (a non-loopback host without a token, limits out of range) and throws
// InputError saying which flag to fix.
void check_options(const ServeOptions& options);

// Serves until SIGINT or SIGTERM. Throws InputError for bad options, EnvironmentError when the
// address cannot be bound (naming it, e.g. a port in use).
void serve(const ServeOptions& options);

// The status document (`dself status --json`, GET /api/status); shape in docs/FORMATS.md.
nlohmann::json status_document(const std::filesystem::path& avatar, const Catalog& catalog);

// The status document's "stt": the avatar's configured engine and the Whisper checkpoint
// find_model chooses: {"engine": "auto", "whisper_model": DIR | null, "whisper_model_from":
// "trained" | "config" | null}; a malformed config.json adds "error".
nlohmann::json stt_status(const std::filesystem::path& avatar);

// Resolves the voice messages' engine and loads the Whisper checkpoint when it is whisper (filling
// options.stt and options.loaded_whisper). Throws InputError (exit 1) for an unknown engine, no model, or
// a checkpoint that does not load, naming the file.
void load_stt(ServeOptions& options);

// Every model's metrics: {"<kind>": <models/<kind>/metrics.json>} (unreadable files skipped).
nlohmann::json model_metrics(const std::filesystem::path& avatar);

}  // namespace dself::server
