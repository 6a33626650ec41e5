// Speech from a flite voice through libflite's API, with every phone's and word's times.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct cst_voice_struct;

namespace dself::sample {

constexpr int kSampleRate = 16000;  // Hz of all speech here (DESIGN.md: 16 kHz mono)

// A CMU phone ("aa", "p", ...; "pau" is silence) over [start_s, end_s).
struct Phone {
  std::string phone;
  double start_s = 0;
  double end_s = 0;
};

struct Word {
  std::string text;  // as written (e.g. "we're"), or flite's spelled-out words for a number
  double start_s = 0;
  double end_s = 0;
  std::vector<Phone> phones;
};

// One synthesised sentence. Times are from the start of its audio; `phones` covers
// [0, sample_count / kSampleRate] without gaps, silences included.
struct Utterance {
  std::vector<float> samples;  // mono, kSampleRate, in [-1, 1]
  std::vector<Phone> phones;
  std::vector<Word> words;
  int64_t sample_count() const { return static_cast<int64_t>(samples.size()); }
  double duration_s() const { return static_cast<double>(samples.size()) / kSampleRate; }
};

// A flite voice, registered once per process. Synthesis is deterministic: the same text gives
// the same samples every time (it reseeds the C library's rand(), which flite draws from).
class Voice {
 public:
  // Throws InputError for a name not in voice_names().
  explicit Voice(const std::string& name);
  const std::string& name() const { return name_; }
  Utterance speak(const std::string& text) const;

 private:
  std::string name_;
  cst_voice_struct* voice_ = nullptr;  // owned by flite for the life of the process
};

}  // namespace dself::sample
