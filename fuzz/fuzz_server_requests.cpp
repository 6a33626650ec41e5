// Fuzzes what clients send `dself serve`: the JSON bodies of POST /api/sources, /api/jobs and
// /api/say, and the live session's WebSocket messages. Any text either parses or throws
// InputError (answered 400, or an "error" message on the WebSocket).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/error.h"
#include "server/detail/requests.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace d = dself::server::detail;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    d::parse_live_message(text);
  } catch (const dself::InputError&) {
  }
  nlohmann::json body;
  try {
    body = d::parse_json_object(text);
  } catch (const dself::InputError&) {
    return 0;
  }
  try {
    d::parse_source_request(body);
  } catch (const dself::InputError&) {
  }
  try {
    d::parse_job_request(body);
  } catch (const dself::InputError&) {
  }
  try {
    d::parse_say_request(body);
  } catch (const dself::InputError&) {
  }
  return 0;
}
