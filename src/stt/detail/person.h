// The person's utterances as the STT stage reads them, and WER tallies (internal to src/stt).
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "transcript/transcript.h"

namespace dself::stt {

struct PersonUtterance {
  std::string id;                  // "s1_0007": source and utterance, unique in the avatar
  std::filesystem::path wav;       // the clip
  std::vector<std::string> words;  // scoring words of its text (lower case, said as words)
  double duration_s = 0;
};

struct PersonData {
  std::vector<PersonUtterance> train;
  std::vector<PersonUtterance> held_out;
};

// speech/<source>/ directories with an utterances.json, in source order.
std::vector<std::filesystem::path> speech_source_dirs(const std::filesystem::path& avatar);

// Every utterance of the speech dataset with words, by split.
PersonData read_person_data(const std::filesystem::path& avatar);

// The train split cut into (fit, development): about `dev_share` of the utterances, chosen by a
// hash of their words (deterministic), are the development split.
std::pair<std::vector<PersonUtterance>, std::vector<PersonUtterance>> split_development(
    const std::vector<PersonUtterance>& train, double dev_share);

// The recognised words of a transcript, as WER compares them.
std::vector<std::string> hypothesis_words(const transcript::Transcript& transcript);

// Errors pooled over utterances: sum of edit distances over sum of reference words.
struct WerCount {
  double errors = 0;
  double reference_words = 0;
  void add(const std::vector<std::string>& reference, const std::vector<std::string>& hypothesis) {
    errors += transcript::word_error_rate(reference, hypothesis) * reference.size();
    reference_words += reference.size();
  }
  double wer() const { return reference_words > 0 ? errors / reference_words : 0; }
};

}  // namespace dself::stt
