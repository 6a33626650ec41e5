// The person's utterances for the STT stage: the speech dataset's clips with their words.
#include <algorithm>

#include "core/hash.h"
#include "core/workspace.h"
#include "speech/speech.h"
#include "stt/detail/person.h"

namespace dself::stt {

namespace fs = std::filesystem;

std::vector<fs::path> speech_source_dirs(const fs::path& avatar) {
  std::vector<fs::path> dirs;
  const fs::path root = workspace::speech_root(avatar);
  if (!fs::is_directory(root)) return dirs;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory() && fs::is_regular_file(entry.path() / "utterances.json")) dirs.push_back(entry.path());
  }
  std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
    return workspace::source_id_of(a) < workspace::source_id_of(b);
  });
  return dirs;
}

PersonData read_person_data(const fs::path& avatar) {
  PersonData data;
  for (const auto& dir : speech_source_dirs(avatar)) {
    const speech::SpeechDataset dataset = speech::read_dataset(dir);
    for (const auto& u : dataset.utterances) {
      PersonUtterance p;
      p.id = "s" + dir.filename().string() + "_" + u.id;
      p.wav = dir / u.wav;
      p.words = transcript::scoring_words(u.text);
      p.duration_s = u.source_end_s - u.source_start_s;
      if (p.words.empty()) continue;
      (u.split == speech::Split::train ? data.train : data.held_out).push_back(std::move(p));
    }
  }
  return data;
}

std::pair<std::vector<PersonUtterance>, std::vector<PersonUtterance>> split_development(
    const std::vector<PersonUtterance>& train, double dev_share) {
  std::vector<PersonUtterance> fit, dev;
  const unsigned threshold = static_cast<unsigned>(std::clamp(dev_share, 0.0, 1.0) * 256);
  for (const auto& u : train) {
    std::string text;
    for (const auto& w : u.words) text += w + " ";
    const unsigned bucket = std::stoul(hash_bytes(text).substr(0, 2), nullptr, 16);
    (bucket < threshold ? dev : fit).push_back(u);
  }
  return {fit, dev};
}

std::vector<std::string> hypothesis_words(const transcript::Transcript& transcript) {
  std::vector<std::string> words;
  for (const auto& w : transcript.words) {
    for (auto& s : transcript::scoring_words(w.text)) words.push_back(std::move(s));
  }
  return words;
}

}  // namespace dself::stt
