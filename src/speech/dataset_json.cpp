// A speech dataset's index (utterances.json) to and from JSON; apart from the clips, so that the
// reader can be fuzzed without FFmpeg (fuzz/fuzz_json_readers.cpp).
#include <fmt/format.h>

#include <cstdint>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "speech/speech.h"

namespace dself::speech {
namespace {

constexpr const char* kFormat = "dself-speech";
constexpr int kVersion = 1;

Split split_from_name(const std::string& name) {
  if (name == "train") return Split::train;
  if (name == "held_out") return Split::held_out;
  throw InputError(fmt::format("unknown split \"{}\" (expected train or held_out)", name));
}

// dataset_from_json, letting nlohmann's exceptions through.
SpeechDataset dataset_from_json_unchecked(const nlohmann::json& json) {
  // The version is compared as JSON: get<int>() of 1e300 would be undefined behaviour (found by
  // fuzz/fuzz_dataset_json).
  if (json.value("format", "") != kFormat || json.value("version", nlohmann::json()) != kVersion) {
    throw InputError(fmt::format("expected format \"{}\" version {}", kFormat, kVersion));
  }
  SpeechDataset dataset;
  for (const auto& u : json.at("utterances")) {
    DatasetUtterance d;
    d.id = u.at("id").get<std::string>();
    d.wav = u.at("wav").get<std::string>();
    if (d.wav.empty() || d.wav.find('/') != std::string::npos || d.wav.find("..") != std::string::npos) {
      throw InputError(fmt::format("utterance {} names clip \"{}\" outside its directory", d.id, d.wav));
    }
    d.source_start_s = u.at("source_start_s").get<double>();
    d.source_end_s = u.at("source_end_s").get<double>();
    d.text = u.at("text").get<std::string>();
    d.normalized_text = u.at("normalized_text").get<std::string>();
    d.split = split_from_name(u.at("split").get<std::string>());
    for (const auto& w : u.at("words")) {
      d.alignment.words.push_back(AlignedWord{w.at("text").get<std::string>(), w.at("start_s").get<double>(),
                                              w.at("end_s").get<double>(), w.at("ipa").get<std::string>()});
    }
    for (const auto& p : u.at("phones")) {
      d.alignment.phones.push_back(
          TimedPhone{p.at("phone").get<std::string>(), p.at("start_s").get<double>(), p.at("end_s").get<double>()});
    }
    if (u.contains("caption_check")) {
      const auto& c = u.at("caption_check");
      d.caption_check = CaptionCheck{c.at("model").get<std::string>(),        c.at("caption_logprob").get<double>(),
                                     c.at("whisper_logprob").get<double>(),   c.at("whisper_text").get<std::string>(),
                                     c.at("margin").get<double>(),            c.at("flagged").get<bool>()};
    }
    dataset.utterances.push_back(std::move(d));
  }
  for (const auto& [reason, count] : json.at("dropped").items()) {
    // get<int>() of a float would be undefined behaviour for 1e300, as for the version.
    if (!count.is_number_unsigned() || count.get<uint64_t>() > uint64_t(INT32_MAX))
      throw InputError(fmt::format("dropped count \"{}\" is {}, not a count", reason, count.dump()));
    dataset.dropped[reason] = count.get<int>();
  }
  return dataset;
}

}  // namespace

const char* split_name(Split split) { return split == Split::held_out ? "held_out" : "train"; }

nlohmann::json to_json(const SpeechDataset& dataset) {
  nlohmann::json utterances = nlohmann::json::array();
  for (const auto& u : dataset.utterances) {
    nlohmann::json words = nlohmann::json::array(), phones = nlohmann::json::array();
    for (const auto& w : u.alignment.words) {
      words.push_back({{"text", w.text}, {"start_s", w.start_s}, {"end_s", w.end_s}, {"ipa", w.ipa}});
    }
    for (const auto& p : u.alignment.phones) {
      phones.push_back({{"phone", p.phone}, {"start_s", p.start_s}, {"end_s", p.end_s}});
    }
    utterances.push_back({{"id", u.id},
                          {"wav", u.wav},
                          {"source_start_s", u.source_start_s},
                          {"source_end_s", u.source_end_s},
                          {"text", u.text},
                          {"normalized_text", u.normalized_text},
                          {"split", split_name(u.split)},
                          {"words", std::move(words)},
                          {"phones", std::move(phones)}});
    if (u.caption_check) {
      const CaptionCheck& c = *u.caption_check;
      utterances.back()["caption_check"] = {{"model", c.model},
                                            {"caption_logprob", c.caption_logprob},
                                            {"whisper_logprob", c.whisper_logprob},
                                            {"whisper_text", c.whisper_text},
                                            {"margin", c.margin},
                                            {"flagged", c.flagged}};
    }
  }
  nlohmann::json dropped = nlohmann::json::object();
  for (const auto& [reason, count] : dataset.dropped) dropped[reason] = count;
  return {{"format", kFormat}, {"version", kVersion}, {"utterances", std::move(utterances)}, {"dropped", dropped}};
}

SpeechDataset dataset_from_json(const nlohmann::json& json) {
  try {
    return dataset_from_json_unchecked(json);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("not a \"{}\" index: {}", kFormat, e.what()));
  }
}

}  // namespace dself::speech
