// Writing and reading one source's speech dataset: clips, then utterances.json.
#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/fs.h"
#include "media/media.h"
#include "speech/detail/audio.h"
#include "speech/speech.h"

namespace dself::speech {
namespace {

constexpr const char* kIndexName = "utterances.json";

// Clips an earlier run wrote that the new index does not list.
void remove_unlisted_clips(const std::filesystem::path& dir, const SpeechDataset& dataset) {
  static const std::regex clip_name(R"(\d{4,}\.wav)");
  std::set<std::string> listed;
  for (const auto& u : dataset.utterances) listed.insert(u.wav);
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (std::regex_match(name, clip_name) && !listed.contains(name)) std::filesystem::remove(entry.path());
  }
}

}  // namespace

SpeechDataset write_dataset(const std::filesystem::path& dir, const transcript::Transcript& transcript,
                            std::span<const float> audio, const Phonemizer& phonemizer, Aligner& aligner,
                            const UtteranceOptions& options, const UtteranceProgress& progress) {
  // Nothing said is a dataset of nothing, not an error: the source may be all music.
  UtteranceSet set = transcript.words.empty() ? UtteranceSet{} : cut_utterances(transcript, audio, options);
  SpeechDataset dataset;
  dataset.dropped = set.dropped;
  // Until the new index is written, the directory holds no dataset (rather than an old index
  // that names clips being overwritten).
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (!ec) std::filesystem::remove(dir / kIndexName, ec);
  if (ec) {
    throw EnvironmentError(fmt::format("cannot make a fresh speech dataset in {}: {} (check that it is writable)",
                                       dir.string(), ec.message()));
  }

  for (size_t k = 0; k < set.utterances.size(); ++k) {
    const Utterance& u = set.utterances[k];
    std::span<const float> clip = detail::samples_between(audio, u.source_start_s, u.source_end_s);
    DatasetUtterance d;
    try {
      d.alignment = aligner.align(clip, phonemizer.pronounce(u.words));
    } catch (const InputError&) {
      dataset.dropped["alignment_failed"] += 1;
      if (progress) progress(k + 1, set.utterances.size());
      continue;
    }
    d.id = fmt::format("{:04}", dataset.utterances.size());
    d.wav = d.id + ".wav";
    d.source_start_s = u.source_start_s;
    d.source_end_s = u.source_end_s;
    d.text = u.text();
    d.normalized_text = transcript::normalize_text(d.text);
    d.split = u.split;
    media::write_wav(dir / d.wav, clip, kSampleRate);
    dataset.utterances.push_back(std::move(d));
    if (progress) progress(k + 1, set.utterances.size());
  }
  write_file_atomic(dir / kIndexName, to_json(dataset).dump(1));
  remove_unlisted_clips(dir, dataset);
  return dataset;
}

SpeechDataset read_dataset(const std::filesystem::path& dir) {
  const std::filesystem::path path = dir / kIndexName;
  try {
    return dataset_from_json(nlohmann::json::parse(read_file(path)));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{} is not a speech dataset index: {}", path.string(), e.what()));
  } catch (const InputError& e) {
    throw InputError(fmt::format("{}: {}", path.string(), e.what()));
  }
}

}  // namespace dself::speech
