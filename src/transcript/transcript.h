// Transcripts: words with times from a source's captions or from speech recognition.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace dself::transcript {

struct Word {
  std::string text;         // as written in the source (punctuation attached), e.g. "Hey,"
  double start_s = 0;
  double end_s = 0;
  double confidence = 1;    // 0..1; captions are 1
};

// A stretch of text as the source grouped it: a caption cue, or a recognised speech chunk.
struct Segment {
  std::string text;
  double start_s = 0;
  double end_s = 0;
};

struct Transcript {
  std::string engine;    // "captions" or "pocketsphinx"
  std::string model;     // caption file, or acoustic model path
  std::string language = "en";
  std::vector<Segment> segments;
  std::vector<Word> words;
};

// Parses WebVTT (including YouTube's automatic captions: rolling duplicated lines and inline
// <00:00:01.234><c> word</c> timings) or SRT, detected from the text. `name` is used in error
// messages. Throws InputError naming the line for malformed input, and for captions whose
// declared language is not English.
Transcript parse_captions(std::string_view text, const std::string& name);

// Reads and parses a caption file (see parse_captions).
Transcript read_captions(const std::filesystem::path& path);

nlohmann::json to_json(const Transcript& transcript);
Transcript transcript_from_json(const nlohmann::json& json);

}  // namespace dself::transcript
