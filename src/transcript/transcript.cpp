#include "transcript/transcript.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dself::transcript {

// {"format": "dself-transcript", "version": 1, "engine", "model", "language",
//  "segments": [{"text", "start_s", "end_s"}], "words": [{"text", "start_s", "end_s", "confidence"}]}
nlohmann::json to_json(const Transcript& transcript) {
  nlohmann::json segments = nlohmann::json::array();
  for (const auto& s : transcript.segments) {
    segments.push_back({{"text", s.text}, {"start_s", s.start_s}, {"end_s", s.end_s}});
  }
  nlohmann::json words = nlohmann::json::array();
  for (const auto& w : transcript.words) {
    words.push_back({{"text", w.text}, {"start_s", w.start_s}, {"end_s", w.end_s}, {"confidence", w.confidence}});
  }
  return {{"format", "dself-transcript"}, {"version", 1},          {"engine", transcript.engine},
          {"model", transcript.model},    {"language", transcript.language}, {"segments", segments},
          {"words", words}};
}

namespace {

// transcript_from_json, letting nlohmann's exceptions through.
Transcript transcript_from_json_unchecked(const nlohmann::json& json) {
  Transcript transcript;
  transcript.engine = json.at("engine").get<std::string>();
  transcript.model = json.at("model").get<std::string>();
  transcript.language = json.at("language").get<std::string>();
  for (const auto& s : json.at("segments")) {
    transcript.segments.push_back(Segment{s.at("text"), s.at("start_s"), s.at("end_s")});
  }
  for (const auto& w : json.at("words")) {
    transcript.words.push_back(Word{w.at("text"), w.at("start_s"), w.at("end_s"), w.at("confidence")});
  }
  return transcript;
}

}  // namespace

Transcript transcript_from_json(const nlohmann::json& json) {
  // A workspace file edited or cut short is the user's to fix, not an internal error.
  try {
    return transcript_from_json_unchecked(json);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("not a dself transcript: {}", e.what()));
  }
}

}  // namespace dself::transcript
