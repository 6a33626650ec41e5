#include "server/detail/requests.h"

#include <fmt/format.h>

#include "core/error.h"

namespace dself::server::detail {

nlohmann::json parse_json_object(std::string_view body) {
  nlohmann::json json = nlohmann::json::parse(body, nullptr, false);
  if (json.is_discarded() || !json.is_object()) throw InputError("the body is not a JSON object");
  return json;
}

std::string parse_source_request(const nlohmann::json& body) {
  if (!body.is_object() || !body.contains("url") || !body["url"].is_string()) {
    throw InputError("give {\"url\": \"https://...\"}");
  }
  std::string url = body["url"].get<std::string>();
  if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0) {
    throw InputError(fmt::format("{}: give an http(s) URL of a video or a playlist", url.substr(0, 300)));
  }
  return url;
}

JobRequest parse_job_request(const nlohmann::json& body) {
  if (!body.is_object() || !body.contains("kind") || !body["kind"].is_string()) {
    throw InputError("give {\"kind\": \"ingest\" | \"prepare\" | \"report\" | \"train\"}");
  }
  JobRequest job;
  job.kind = body["kind"].get<std::string>();
  if (body.contains("model")) {
    if (!body["model"].is_string()) throw InputError("\"model\" is \"voice\" or \"all\"");
    job.model = body["model"].get<std::string>();
  }
  if (body.contains("steps")) {
    // An unsigned number beyond int64 is not a step count either (get<int64_t> would wrap it).
    const nlohmann::json& steps = body["steps"];
    if (!steps.is_number_integer() || (steps.is_number_unsigned() && steps.get<uint64_t>() > 10000000) ||
        steps.get<int64_t>() < 1 || steps.get<int64_t>() > 10000000) {
      throw InputError("\"steps\" is a whole number of training steps from 1 to 10000000");
    }
    job.steps = static_cast<int>(steps.get<int64_t>());
  }
  if (body.contains("time_budget_s")) {
    const nlohmann::json& budget = body["time_budget_s"];
    if (!budget.is_number() || !(budget.get<double>() > 0) || budget.get<double>() > 7 * 86400) {
      throw InputError("\"time_budget_s\" is the seconds training may take, above 0 and at most a week");
    }
    job.time_budget_s = budget.get<double>();
  }
  if (body.contains("sources")) {
    if (!body["sources"].is_array()) throw InputError("\"sources\" is a list of URLs or uploaded files");
    for (const auto& s : body["sources"]) {
      if (!s.is_string()) throw InputError("\"sources\" is a list of URLs or uploaded files");
      job.sources.push_back(s.get<std::string>());
    }
  }
  return job;
}

std::string parse_say_request(const nlohmann::json& body) {
  if (!body.is_object() || !body.contains("text") || !body["text"].is_string()) {
    throw InputError("give {\"text\": \"...\"}");
  }
  return body["text"].get<std::string>();
}

LiveMessage parse_live_message(std::string_view raw) {
  nlohmann::json message = nlohmann::json::parse(raw, nullptr, false);
  if (message.is_discarded() || !message.is_object() || !message.contains("type") || !message["type"].is_string()) {
    throw InputError("a message is a JSON object with a \"type\" (docs/API.md)");
  }
  const std::string type = message["type"].get<std::string>();
  LiveMessage parsed;
  if (type == "message") {
    if (!message.contains("text") || !message["text"].is_string()) throw InputError("a \"message\" needs \"text\"");
    parsed.type = LiveMessage::Type::message;
    parsed.text = message["text"].get<std::string>();
  } else if (type == "voice") {
    if (!message.contains("audio_base64") || !message["audio_base64"].is_string()) {
      throw InputError("a \"voice\" message needs \"audio_base64\"");
    }
    parsed.type = LiveMessage::Type::voice;
    parsed.audio_base64 = message["audio_base64"].get<std::string>();
    if (message.contains("mime") && message["mime"].is_string()) parsed.mime = message["mime"].get<std::string>();
  } else if (type == "resume") {
    if (!message.contains("conversation_id") || !message["conversation_id"].is_number_integer() ||
        message["conversation_id"].get<int64_t>() <= 0) {
      throw InputError("a \"resume\" message needs \"conversation_id\", a conversation's id (a whole number above 0)");
    }
    parsed.type = LiveMessage::Type::resume;
    parsed.conversation_id = message["conversation_id"].get<int64_t>();
  } else {
    throw InputError(fmt::format("unknown message type \"{}\": send \"message\", \"voice\" or \"resume\"",
                                 type.substr(0, 100)));
  }
  return parsed;
}

}  // namespace dself::server::detail
