// What the server's clients send, parsed and checked apart from the sockets (so that each parser
// can be fuzzed alone, fuzz/fuzz_server_requests.cpp): the JSON bodies of the routes and the live
// session's WebSocket messages (docs/API.md). Every function throws InputError (answered 400, or
// an "error" message on the WebSocket) saying what is wrong, and nothing else for any input.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dself::server::detail {

// A request body as a JSON object.
nlohmann::json parse_json_object(std::string_view body);

// POST /api/sources: {"url": "https://..."} (http or https).
std::string parse_source_request(const nlohmann::json& body);

// POST /api/jobs: {"kind": "...", "sources": [...], "model": "...", "steps": N, "time_budget_s": S}.
struct JobRequest {
  std::string kind;
  std::vector<std::string> sources;
  std::optional<std::string> model;          // train: "voice" or "all" (checked by the job runner)
  std::optional<int> steps;                  // train: 1..10000000
  std::optional<double> time_budget_s;       // train: (0, a week]
};
JobRequest parse_job_request(const nlohmann::json& body);

// POST /api/say: {"text": "..."} (its length is checked by the say itself).
std::string parse_say_request(const nlohmann::json& body);

// A live session's message (a JSON text frame): {"type": "message", "text"},
// {"type": "voice", "audio_base64", "mime"} or {"type": "resume", "conversation_id"}.
struct LiveMessage {
  enum class Type { message, voice, resume } type = Type::message;
  std::string text;              // message
  std::string audio_base64;      // voice
  std::string mime;              // voice; may be empty
  int64_t conversation_id = 0;   // resume: a conversation in the catalog, > 0
};
LiveMessage parse_live_message(std::string_view raw);

}  // namespace dself::server::detail
