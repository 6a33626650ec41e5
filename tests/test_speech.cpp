// The speech dataset: cutting at pauses and the filters, phonemes, forced alignment against the
// sample person's true phone times, writing and reading the dataset, and bad input.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numbers>
#include <random>

#include "core/error.h"
#include "core/fs.h"
#include "media/media.h"
#include "speech/speech.h"
#include "support.h"
#include "transcript/transcript.h"

namespace dself::speech {
namespace {

using transcript::Transcript;
using transcript::Word;

// ---- Synthetic speech-like audio ------------------------------------------------------------

// A word-like sound: a harmonic voice whose pitch glides from a pitch of its own (as speech
// pitch does), with a syllable envelope, plus a little breath noise.
void add_word(std::vector<float>& audio, double start_s, double end_s, double level, std::mt19937& random) {
  std::normal_distribution<float> noise(0, 1);
  std::uniform_real_distribution<double> pitch(100, 160);
  size_t begin = static_cast<size_t>(start_s * kSampleRate), end = static_cast<size_t>(end_s * kSampleRate);
  double phase = 0, f0_start = pitch(random), f0_end = pitch(random);
  for (size_t i = begin; i < end && i < audio.size(); ++i) {
    double t = static_cast<double>(i - begin) / static_cast<double>(end - begin);
    double f0 = f0_start + (f0_end - f0_start) * t;  // Hz
    phase += 2 * std::numbers::pi * f0 / kSampleRate;
    double voice = 0;
    for (int h = 1; h <= 12; ++h) voice += std::sin(h * phase) / h;
    double envelope = std::sin(std::numbers::pi * t);
    audio[i] += static_cast<float>(level * envelope * (0.5 * voice + 0.05 * noise(random)));
  }
}

// Sentences of `words_per_sentence` words (0.3 s each, 0.08 s apart), separated by `pause_s`.
struct Speech {
  std::vector<float> audio;
  Transcript transcript;
  std::vector<std::pair<double, double>> sentences;  // start, end of each sentence
};

Speech make_speech(int sentence_count, int words_per_sentence, const std::vector<double>& pauses_s) {
  Speech s;
  std::mt19937 random(3);
  double t = 0.5;
  std::vector<std::tuple<double, double, int>> words;
  for (int k = 0; k < sentence_count; ++k) {
    double sentence_start = t;
    for (int w = 0; w < words_per_sentence; ++w) {
      words.push_back({t, t + 0.3, k});
      t += 0.38;
    }
    s.sentences.push_back({sentence_start, t - 0.08});
    t += pauses_s[static_cast<size_t>(k) % pauses_s.size()] - 0.08;
  }
  s.audio.assign(static_cast<size_t>((t + 0.5) * kSampleRate), 0.0f);
  int n = 0;
  for (auto [start, end, sentence] : words) {
    add_word(s.audio, start, end, 0.3, random);
    // Distinct words, so that every sentence has its own text (and so its own split key).
    s.transcript.words.push_back(Word{fmt::format("word{}x{}", sentence, n++), start, end, 1});
  }
  s.transcript.engine = "captions";
  return s;
}

size_t word_count(const UtteranceSet& set) {
  size_t n = 0;
  for (const auto& u : set.utterances) n += u.words.size();
  return n;
}

// ---- Cutting --------------------------------------------------------------------------------

TEST(CutUtterances, CutsAtPausesIntoTwoToFifteenSeconds) {
  // 30 sentences of 2.6 s with pauses of 0.4, 0.6 and 2 s: short sentences are grouped up to 15 s
  // and cut only at pauses.
  Speech s = make_speech(30, 7, {0.4, 0.6, 2.0});
  UtteranceSet set = cut_utterances(s.transcript, s.audio);
  ASSERT_GE(set.utterances.size(), 6u);
  EXPECT_EQ(word_count(set) + static_cast<size_t>(set.dropped_word_count), s.transcript.words.size());
  EXPECT_TRUE(set.dropped.empty()) << "clean speech dropped: " << nlohmann::json(set.dropped).dump();
  const auto& words = s.transcript.words;
  size_t next_word = 0;
  for (const Utterance& u : set.utterances) {
    double span = u.words.back().end_s - u.words.front().start_s;
    EXPECT_GE(span, 2.0);
    EXPECT_LE(span, 15.0);
    // Every word once, in order, with times moved to the clip's clock.
    for (const Word& w : u.words) {
      ASSERT_LT(next_word, words.size());
      EXPECT_EQ(w.text, words[next_word].text);
      EXPECT_NEAR(w.start_s + u.source_start_s, words[next_word].start_s, 1e-9);
      ++next_word;
    }
    // The clip holds its words with a little padding, and cuts fall in pauses, not in words.
    EXPECT_LE(u.source_start_s, u.words.front().start_s + u.source_start_s);
    EXPECT_GE(u.source_end_s - u.source_start_s, u.words.back().end_s);
    EXPECT_LE(u.source_end_s - u.source_start_s, span + 2 * 0.15 + 1e-6);
  }
  for (size_t k = 1; k < set.utterances.size(); ++k) {
    const Utterance& before = set.utterances[k - 1];
    const Utterance& after = set.utterances[k];
    double gap =
        (after.words.front().start_s + after.source_start_s) - (before.words.back().end_s + before.source_start_s);
    EXPECT_GE(gap, 0.25) << "cut between utterances " << k - 1 << " and " << k << " is not at a pause";
    EXPECT_LE(before.source_end_s, after.source_start_s + 1e-9) << "clips overlap";
  }
}

TEST(CutUtterances, SplitIsDeterministicAndAboutOneInTen) {
  Speech s = make_speech(120, 6, {0.4, 2.0});
  UtteranceSet first = cut_utterances(s.transcript, s.audio);
  UtteranceSet second = cut_utterances(s.transcript, s.audio);
  ASSERT_EQ(first.utterances.size(), second.utterances.size());
  int held_out = 0;
  for (size_t k = 0; k < first.utterances.size(); ++k) {
    EXPECT_EQ(first.utterances[k].split, second.utterances[k].split);
    held_out += first.utterances[k].split == Split::held_out ? 1 : 0;
  }
  double share = static_cast<double>(held_out) / static_cast<double>(first.utterances.size());
  std::printf("held out: %d of %zu utterances\n", held_out, first.utterances.size());
  EXPECT_GT(held_out, 0);
  EXPECT_LT(share, 0.25);
}

TEST(CutUtterances, DropsClippedAndNearSilentStretchesAndSaysWhy) {
  // Sentences 2.6 s long, 2 s apart: one utterance each.
  Speech s = make_speech(8, 7, {2.0});
  auto scale = [&](int sentence, float gain) {
    auto [start, end] = s.sentences[static_cast<size_t>(sentence)];
    for (size_t i = static_cast<size_t>(start * kSampleRate); i < static_cast<size_t>(end * kSampleRate); ++i) {
      s.audio[i] = std::clamp(s.audio[i] * gain, -1.0f, 1.0f);
    }
  };
  scale(2, 8.0f);     // overdriven: flat tops at full scale
  scale(5, 0.0005f);  // the captions say words, the audio is close to silence
  UtteranceSet set = cut_utterances(s.transcript, s.audio);
  EXPECT_EQ(set.utterances.size(), 6u);
  EXPECT_EQ(set.dropped["clipping"], 1);
  EXPECT_EQ(set.dropped["too_little_speech"], 1);
  EXPECT_EQ(set.dropped_word_count, 14);
  EXPECT_EQ(word_count(set) + 14, s.transcript.words.size());
}

TEST(CutUtterances, DropsSpeechOverSustainedMusic) {
  Speech s = make_speech(6, 7, {2.0});
  // A held chord (A major, 220/277/330 Hz and overtones) under sentence 3.
  auto [start, end] = s.sentences[3];
  for (size_t i = static_cast<size_t>((start - 0.3) * kSampleRate); i < static_cast<size_t>((end + 0.3) * kSampleRate);
       ++i) {
    double t = static_cast<double>(i) / kSampleRate, chord = 0;
    for (double f : {220.0, 277.2, 329.6, 440.0, 659.3}) chord += std::sin(2 * std::numbers::pi * f * t);
    s.audio[i] += static_cast<float>(0.03 * chord);
  }
  UtteranceSet set = cut_utterances(s.transcript, s.audio);
  EXPECT_EQ(set.dropped["music"], 1);
  EXPECT_EQ(set.utterances.size(), 5u);
}

TEST(CutUtterances, DropsWordsSpokenFarFasterThanUsual) {
  // Ten sentences at the usual pace, one whose 30 words are crammed into 3 s.
  Speech s = make_speech(10, 7, {2.0});
  double t = s.sentences.back().second + 2.0;
  std::mt19937 random(5);
  size_t fast_begin = s.transcript.words.size();
  for (int w = 0; w < 30; ++w) {
    s.transcript.words.push_back(Word{fmt::format("fast{}", w), t, t + 0.09, 1});
    t += 0.1;
  }
  s.audio.resize(static_cast<size_t>((t + 1) * kSampleRate), 0.0f);
  for (size_t w = fast_begin; w < s.transcript.words.size(); ++w) {
    add_word(s.audio, s.transcript.words[w].start_s, s.transcript.words[w].end_s, 0.3, random);
  }
  UtteranceSet set = cut_utterances(s.transcript, s.audio);
  EXPECT_EQ(set.dropped["speech_rate_outlier"], 1) << nlohmann::json(set.dropped).dump();
  EXPECT_EQ(set.utterances.size(), 10u);
}

TEST(CutUtterances, RejectsBadInputClearly) {
  Speech s = make_speech(3, 7, {1.0});
  Transcript empty;
  EXPECT_THROW(cut_utterances(empty, s.audio), InputError);
  Transcript beyond = s.transcript;
  beyond.words.push_back(Word{"late", 100.0, 100.5, 1});
  try {
    cut_utterances(beyond, s.audio);
    FAIL() << "words past the audio's end were accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("audio is only"), std::string::npos) << e.what();
  }
  Transcript backwards = s.transcript;
  backwards.words[1].end_s = backwards.words[1].start_s - 1;
  EXPECT_THROW(cut_utterances(backwards, s.audio), InputError);
  EXPECT_THROW(cut_utterances(s.transcript, std::span<const float>()), InputError);
}

// ---- Phonemes -------------------------------------------------------------------------------

const Phonemizer& phonemizer() {
  static Phonemizer instance;
  return instance;
}

using Phones = std::vector<std::string>;

TEST(Phonemizer, HelloWorldInIpaAndArpabet) {
  Pronunciation hello = phonemizer().pronounce("Hello,");
  Pronunciation world = phonemizer().pronounce("world");
  EXPECT_EQ(hello.word, "Hello,");
  ASSERT_FALSE(hello.arpabet.empty());
  EXPECT_EQ(hello.arpabet[0], (Phones{"hh", "ah", "l", "ow"}));
  EXPECT_EQ(world.arpabet.at(0), (Phones{"w", "er", "l", "d"}));
  EXPECT_TRUE(hello.in_dictionary);
  EXPECT_EQ(hello.ipa, "həlˈoʊ");
  EXPECT_EQ(world.ipa, "wˈɜːld");
}

TEST(Phonemizer, WordsOutsideTheDictionaryStillGetPhones) {
  Pronunciation made_up = phonemizer().pronounce("Zyxqlorbington");
  EXPECT_FALSE(made_up.in_dictionary);
  ASSERT_EQ(made_up.arpabet.size(), 1u);
  EXPECT_EQ(made_up.arpabet[0], (Phones{"z", "ih", "k", "s", "k", "l", "ao", "r", "b", "ih", "ng", "t", "ah", "n"}));
  EXPECT_FALSE(made_up.ipa.empty());
  // Numbers are said as words; curly apostrophes are apostrophes; punctuation says nothing.
  Pronunciation year = phonemizer().pronounce("1995");
  ASSERT_FALSE(year.arpabet.empty());
  EXPECT_EQ(year.arpabet[0].front(), "n");
  EXPECT_GT(year.arpabet[0].size(), 12u);
  EXPECT_EQ(phonemizer().pronounce("I\u2019ll").arpabet.at(0), (Phones{"ay", "l"}));
  EXPECT_TRUE(phonemizer().pronounce("\u2014").arpabet.empty());
  // Alternatives from the dictionary are kept, likeliest first.
  EXPECT_GE(phonemizer().pronounce("the").arpabet.size(), 2u);
}

// ---- Alignment against the sample person's truth ----------------------------------------------

Aligner& aligner() {
  static Aligner instance;
  return instance;
}

std::vector<TimedPhone> truth_phones(const nlohmann::json& truth, double from_s, double to_s) {
  std::vector<TimedPhone> phones;
  for (const auto& p : truth.at("phones")) {
    double start = p.at("start_s").get<double>(), end = p.at("end_s").get<double>();
    if (end > from_s && start < to_s) phones.push_back(TimedPhone{p.at("phone").get<std::string>(), start, end});
  }
  return phones;
}

// The whole stage on the sample person's videos: captions -> utterances -> phonemes -> alignment
// -> clips and index on disk; the aligned phones are compared with the phones flite said.
TEST(SpeechDataset, AlignsTheSamplePersonWithinThirtyMilliseconds) {
  test::TempDir dir;
  std::vector<TimedPhone> all_truth, all_aligned, all_naive;
  int utterance_count = 0;
  for (int video = 0; video < 2; ++video) {
    auto name = fmt::format("video_{:03}", video);
    auto truth = nlohmann::json::parse(read_file(test::sample_dir() / (name + ".truth.json")));
    Transcript captions = transcript::read_captions(test::sample_dir() / (name + ".en.vtt"));
    std::vector<float> audio = media::decode_audio(test::sample_dir() / (name + ".mp4"), kSampleRate);
    SpeechDataset written = write_dataset(dir / name, captions, audio, phonemizer(), aligner());
    SpeechDataset dataset = read_dataset(dir / name);
    ASSERT_EQ(dataset.utterances.size(), written.utterances.size());
    ASSERT_FALSE(dataset.utterances.empty()) << nlohmann::json(dataset.dropped).dump();
    for (const DatasetUtterance& u : dataset.utterances) {
      ++utterance_count;
      auto clip = media::decode_audio(dir / name / u.wav, kSampleRate);
      EXPECT_NEAR(static_cast<double>(clip.size()) / kSampleRate, u.source_end_s - u.source_start_s, 0.01);
      ASSERT_FALSE(u.alignment.phones.empty());
      EXPECT_EQ(u.alignment.words.size(), transcript::scoring_words(u.text).size());
      std::vector<TimedPhone> truth_here = truth_phones(truth, u.source_start_s, u.source_end_s);
      std::vector<TimedPhone> speech_here;
      for (const auto& p : u.alignment.phones) {
        all_aligned.push_back(TimedPhone{p.phone, p.start_s + u.source_start_s, p.end_s + u.source_start_s});
        if (p.phone != "sil") speech_here.push_back(all_aligned.back());
      }
      // The naive alternative an aligner must beat: the same phones spread evenly over the words' span.
      double from = speech_here.front().start_s, to = speech_here.back().end_s;
      for (size_t k = 0; k < speech_here.size(); ++k) {
        double step = (to - from) / static_cast<double>(speech_here.size());
        all_naive.push_back(TimedPhone{speech_here[k].phone, from + step * k, from + step * (k + 1)});
      }
      all_truth.insert(all_truth.end(), truth_here.begin(), truth_here.end());
      all_aligned.push_back(TimedPhone{"sil", u.source_end_s, u.source_end_s});
      all_naive.push_back(TimedPhone{"sil", u.source_end_s, u.source_end_s});
    }
  }
  BoundaryError error = phone_boundary_error(all_truth, all_aligned);
  BoundaryError naive = phone_boundary_error(all_truth, all_naive);
  std::printf(
      "alignment: mean %.1f ms, median %.1f ms, %.0f%% within 20 ms, %d boundaries, %d of %d phones paired, "
      "%d utterances; evenly spread phones: mean %.1f ms\n",
      error.mean_ms, error.median_ms, 100 * error.within_20ms, error.boundary_count, error.matched_phone_count,
      error.truth_phone_count, utterance_count, naive.mean_ms);
  EXPECT_GE(error.boundary_count, 150);
  EXPECT_GE(error.matched_phone_count, error.truth_phone_count * 9 / 10);
  EXPECT_LT(error.mean_ms, 20.0);  // measured ~12 ms; the issue's target is 30 ms
  EXPECT_GT(error.within_20ms, 0.8);
  EXPECT_LT(error.mean_ms, naive.mean_ms / 3);
}

TEST(SpeechDataset, RewritingRemovesClipsNoLongerListed) {
  test::TempDir dir;
  auto name = std::string("video_000");
  Transcript captions = transcript::read_captions(test::sample_dir() / (name + ".en.vtt"));
  std::vector<float> audio = media::decode_audio(test::sample_dir() / (name + ".mp4"), kSampleRate);
  write_file_atomic(dir / "0042.wav", "stale");
  write_file_atomic(dir / "notes.txt", "kept");
  SpeechDataset dataset = write_dataset(dir.path(), captions, audio, phonemizer(), aligner());
  EXPECT_FALSE(std::filesystem::exists(dir / "0042.wav"));
  EXPECT_TRUE(std::filesystem::exists(dir / "notes.txt"));
  for (const auto& u : dataset.utterances) EXPECT_TRUE(std::filesystem::exists(dir / u.wav));
  auto json = nlohmann::json::parse(read_file(dir / "utterances.json"));
  EXPECT_EQ(json.at("format"), "dself-speech");
  EXPECT_EQ(json.at("version"), 1);
  const auto& first = json.at("utterances").at(0);
  for (const char* key :
       {"id", "wav", "source_start_s", "source_end_s", "text", "normalized_text", "split", "words", "phones"}) {
    EXPECT_TRUE(first.contains(key)) << key;
  }
  EXPECT_TRUE(first.at("words").at(0).contains("ipa"));
}

// ---- Bad input ------------------------------------------------------------------------------

TEST(Aligner, RejectsNothingToAlignAndAudioTooShortForItsWords) {
  std::vector<float> second(kSampleRate, 0.0f);
  EXPECT_THROW(aligner().align(second, {}), InputError);
  EXPECT_THROW(aligner().align(second, {phonemizer().pronounce("...")}), InputError);
  std::vector<Pronunciation> words;
  for (const char* w :
       {"this", "sentence", "has", "far", "too", "many", "words", "for", "a", "tenth", "of", "a", "second"}) {
    words.push_back(phonemizer().pronounce(w));
  }
  std::vector<float> tenth(kSampleRate / 10, 0.0f);
  try {
    aligner().align(tenth, words);
    FAIL() << "a 0.1 s clip was aligned to 13 words";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("too short"), std::string::npos) << e.what();
  }
}

TEST(SpeechDataset, ASourceWithoutWordsMakesAnEmptyDataset) {
  test::TempDir dir;
  std::vector<float> quiet(kSampleRate * 3, 0.0f);
  SpeechDataset dataset = write_dataset(dir.path(), Transcript{}, quiet, phonemizer(), aligner());
  EXPECT_TRUE(dataset.utterances.empty());
  EXPECT_TRUE(read_dataset(dir.path()).utterances.empty());
}

TEST(SpeechDataset, ReadingAMissingOrMalformedIndexSaysWhich) {
  test::TempDir dir;
  EXPECT_THROW(read_dataset(dir.path()), InputError);
  write_file_atomic(dir / "utterances.json", R"({"format": "something-else", "version": 1})");
  try {
    read_dataset(dir.path());
    FAIL() << "a foreign index was read";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("utterances.json"), std::string::npos) << e.what();
  }
}

// Found by fuzz/fuzz_dataset_json: a version or a dropped count of 1e300 was cast to int
// (undefined behaviour); and an index of another shape let nlohmann's type_error escape.
TEST(SpeechDataset, AnIndexOfAnotherShapeIsAnInputErrorSayingWhat) {
  auto expect_error = [](const std::string& text, const std::string& says) {
    try {
      dataset_from_json(nlohmann::json::parse(text));
      ADD_FAILURE() << "read: " << text;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
    }
  };
  expect_error(R"({"format": "dself-speech", "version": 1e300, "utterances": [], "dropped": {}})",
               "expected format \"dself-speech\" version 1");
  expect_error(R"({"format": "dself-speech", "version": 1, "utterances": [], "dropped": {"short": 1e300}})",
               "dropped count \"short\" is 1e+300, not a count");
  expect_error(R"({"format": "dself-speech", "version": 1, "utterances": 7, "dropped": {}})",
               "not a \"dself-speech\" index");
  expect_error(R"({"format": "dself-speech", "version": 1, "utterances": [{"id": "0000"}], "dropped": {}})",
               "not a \"dself-speech\" index");
  const SpeechDataset empty =
      dataset_from_json(nlohmann::json::parse(R"({"format": "dself-speech", "version": 1.0, "utterances": [],
                                                  "dropped": {"short": 2}})"));
  EXPECT_EQ(empty.dropped.at("short"), 2);
}

TEST(PhoneBoundaryError, PairsPhonesByLabelAndComparesEachBoundaryOnce) {
  std::vector<TimedPhone> truth = {{"pau", 0, 0.1}, {"hh", 0.1, 0.2}, {"ax", 0.2, 0.3},
                                   {"l", 0.3, 0.4}, {"ow", 0.4, 0.6}, {"pau", 0.6, 1.0}};
  std::vector<TimedPhone> aligned = {{"sil", 0, 0.11}, {"hh", 0.11, 0.2}, {"ah", 0.2, 0.32},
                                     {"l", 0.32, 0.4}, {"ow", 0.4, 0.58}, {"sil", 0.58, 1.0}};
  BoundaryError e = phone_boundary_error(truth, aligned);
  EXPECT_EQ(e.truth_phone_count, 4);
  EXPECT_EQ(e.matched_phone_count, 4);
  EXPECT_EQ(e.boundary_count, 5);  // four starts and the end before the pause
  EXPECT_NEAR(e.mean_ms, (10 + 0 + 20 + 0 + 20) / 5.0, 1e-6);
  // A phone the aligner left out costs its boundaries, not a shift of all that follow.
  aligned.erase(aligned.begin() + 3);
  aligned[2].end_s = 0.4;
  e = phone_boundary_error(truth, aligned);
  EXPECT_EQ(e.matched_phone_count, 3);
  EXPECT_NEAR(e.mean_ms, (10 + 0 + 0 + 20) / 4.0, 1e-6);
}

}  // namespace
}  // namespace dself::speech
