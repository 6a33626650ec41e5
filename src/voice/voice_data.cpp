// The trained voice's data: the text front end (shared by training and synthesis) and the training
// examples: aligned phones with their context and durations, vocoder features as targets.
#include "voice/detail/voice_data.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/safetensors.h"
#include "media/media.h"
#include "vocoder/vocoder.h"

namespace dself::voice {

namespace fs = std::filesystem;

namespace {

constexpr double kFrameRate = double(vocoder::kSampleRate) / vocoder::kHopSamples;  // 200 frames a second

const std::vector<std::string>& vowels() {
  static const std::vector<std::string> v = {"aa", "ae", "ah", "ao", "aw", "ay", "eh", "er",
                                             "ey", "ih", "iy", "ow", "oy", "uh", "uw"};
  return v;
}
bool is_vowel(const std::string& phone) { return std::ranges::find(vowels(), phone) != vowels().end(); }

// Context values (acoustic_model.h, kContextSizes): see phone_contexts.
enum : int64_t { kStressNone = 1, kStressUnstressed = 2, kStressPrimary = 3, kStressSecondary = 4 };
enum : int64_t { kPositionPause = 1, kPositionSingle = 2, kPositionFirst = 3, kPositionMiddle = 4, kPositionLast = 5 };
enum : int64_t { kPunctuationStart = 6, kPunctuationEnd = 7 };

// Where item i of n sits in a run: only / first / middle / last, offset by `base`.
int64_t place(size_t i, size_t n, int64_t base) {
  if (n == 1) return base;
  if (i == 0) return base + 1;
  if (i + 1 == n) return base + 3;
  return base + 2;
}

// One UTF-8 code point at s[i]; advances i. Invalid bytes come back as U+FFFD.
char32_t next_code_point(std::string_view s, size_t& i) {
  const unsigned char c = s[i];
  int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    ++i;
    return 0xfffd;
  }
  char32_t cp = n == 1 ? c : c & (0x7f >> n);
  for (int k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
  i += n;
  return cp;
}

// Latin script and the punctuation around it: what the phonemizer (CMU dictionary, espeak-ng
// en-us) can say. Emoji, other scripts and symbols are not.
bool speakable(char32_t cp) {
  return (cp >= 0x20 && cp < 0x7f) || (cp >= 0xa0 && cp <= 0x24f) || (cp >= 0x2010 && cp <= 0x2027);
}

void put_stats(const std::vector<double>& sum, const std::vector<double>& sum2, double n, std::vector<float>& mean,
               std::vector<float>& stddev) {
  mean.resize(sum.size());
  stddev.resize(sum.size());
  for (size_t d = 0; d < sum.size(); ++d) {
    const double m = n > 0 ? sum[d] / n : 0;
    mean[d] = float(m);
    // A floor keeps a near-constant column (c0 of a silent set, a band always noise) finite.
    stddev[d] = float(std::max(1e-3, std::sqrt(std::max(0.0, n > 0 ? sum2[d] / n - m * m : 1.0))));
  }
}

}  // namespace

const std::vector<std::string>& phone_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n = {"<pad>", "sil"};
    for (const char* p : {"aa", "ae", "ah", "ao", "aw", "ay", "b",  "ch", "d",  "dh", "eh", "er", "ey",
                          "f",  "g",  "hh", "ih", "iy", "jh", "k",  "l",  "m",  "n",  "ng", "ow", "oy",
                          "p",  "r",  "s",  "sh", "t",  "th", "uh", "uw", "v",  "w",  "y",  "z",  "zh"})
      n.push_back(p);
    return n;
  }();
  return names;
}

int64_t phone_id(std::string_view phone) {
  const auto& names = phone_names();
  auto it = std::find(names.begin() + 1, names.end(), phone);
  return it == names.end() ? -1 : int64_t(it - names.begin());
}

int64_t punctuation_class(std::string_view word) {
  // Trailing quotes and brackets do not hide the punctuation before them ("end." or "end.)").
  while (!word.empty() && std::string_view("\"')]").find(word.back()) != std::string_view::npos) word.remove_suffix(1);
  if (word.ends_with("\xe2\x80\x9d") || word.ends_with("\xe2\x80\x99")) word.remove_suffix(3);  // ” ’
  if (word.empty()) return 1;
  if (word.ends_with("\xe2\x80\x94") || word.ends_with("\xe2\x80\x93") || word.ends_with("\xe2\x80\xa6")) return 2;
  switch (word.back()) {
    case ',': case ';': case ':': case '-': return 2;
    case '.': return 3;
    case '?': return 4;
    case '!': return 5;
    default: return 1;
  }
}

std::vector<int64_t> phone_stress(std::string_view ipa, const std::vector<std::string>& phones) {
  // The IPA cut at its stress marks: each piece is a syllable run whose vowels share the mark's
  // stress (espeak-ng puts the mark before the syllable's onset).
  std::vector<int64_t> vowel_stress;
  auto flush = [&](std::string_view piece, int64_t stress) {
    for (const auto& p : speech::ipa_to_arpabet(piece))
      if (is_vowel(p)) vowel_stress.push_back(stress);
  };
  int64_t stress = kStressUnstressed;
  size_t start = 0;
  for (size_t i = 0; i + 1 < ipa.size(); ++i) {
    const bool primary = ipa.substr(i, 2) == "\xcb\x88";    // ˈ
    const bool secondary = ipa.substr(i, 2) == "\xcb\x8c";  // ˌ
    if (!primary && !secondary) continue;
    flush(ipa.substr(start, i - start), stress);
    stress = primary ? kStressPrimary : kStressSecondary;
    start = i + 2;
    ++i;
  }
  flush(ipa.substr(std::min(start, ipa.size())), stress);
  std::vector<int64_t> out;
  size_t k = 0;
  for (const auto& p : phones) {
    if (!is_vowel(p)) {
      out.push_back(kStressNone);
    } else {
      out.push_back(k < vowel_stress.size() ? vowel_stress[k] : kStressUnstressed);
      ++k;
    }
  }
  return out;
}

std::vector<PhoneContext> phone_contexts(const std::vector<FrontItem>& items) {
  // Words grouped into phrases, a phrase ending at a word with punctuation after it.
  std::vector<size_t> words;
  for (size_t i = 0; i < items.size(); ++i)
    if (!items[i].pause) words.push_back(i);
  std::vector<size_t> phrase_of(items.size(), 0), index_in_phrase(items.size(), 0);
  std::vector<size_t> phrase_size;
  for (size_t w = 0; w < words.size(); ++w) {
    if (phrase_size.empty()) phrase_size.push_back(0);
    phrase_of[words[w]] = phrase_size.size() - 1;
    index_in_phrase[words[w]] = phrase_size.back()++;
    if (punctuation_class(items[words[w]].text) >= 2 && w + 1 < words.size()) phrase_size.push_back(0);
  }
  std::vector<PhoneContext> out;
  int64_t last_punctuation = kPunctuationStart;
  int64_t last_phrase_place = place(0, std::max<size_t>(1, phrase_size.size()), 1);
  for (size_t i = 0; i < items.size(); ++i) {
    const FrontItem& item = items[i];
    if (item.pause) {
      const bool after_all_words = words.empty() || i > words.back();
      const int64_t punctuation = after_all_words && last_punctuation == 1 ? kPunctuationEnd : last_punctuation;
      for (size_t k = 0; k < item.phones.size(); ++k)
        out.push_back({kStressNone, kPositionPause, kPositionPause, punctuation, last_phrase_place});
      continue;
    }
    const auto stress = phone_stress(item.ipa, item.phones);
    const int64_t punctuation = punctuation_class(item.text);
    const int64_t word_place = place(index_in_phrase[i], phrase_size[phrase_of[i]], 2);
    const int64_t phrase_place = place(phrase_of[i], phrase_size.size(), 1);
    for (size_t k = 0; k < item.phones.size(); ++k)
      out.push_back({stress[k], place(k, item.phones.size(), kPositionSingle), word_place, punctuation, phrase_place});
    last_punctuation = punctuation;
    last_phrase_place = phrase_place;
  }
  return out;
}

std::vector<FrontItem> front_end(const speech::Phonemizer& phonemizer, std::string_view sentence,
                                 std::vector<std::string>* warnings) {
  std::string kept, dropped;
  for (size_t i = 0; i < sentence.size();) {
    const size_t at = i;
    const char32_t cp = next_code_point(sentence, i);
    if (speakable(cp)) {
      kept.append(sentence.substr(at, i - at));
    } else {
      kept += ' ';
      dropped.append(sentence.substr(at, i - at));
    }
  }
  if (!dropped.empty() && warnings) warnings->push_back(fmt::format("skipped characters no phone covers: {}", dropped));
  std::vector<FrontItem> items{{true, "", "", {"sil"}}};
  size_t start = 0;
  while (start < kept.size()) {
    const size_t space = std::min(kept.find_first_of(" \t\n\r", start), kept.size());
    if (space > start) {
      const std::string word = kept.substr(start, space - start);
      const speech::Pronunciation p = phonemizer.pronounce(word);
      if (!p.arpabet.empty()) {
        std::vector<std::string> phones;
        for (const auto& ph : p.arpabet.front())
          if (phone_id(ph) > 1) phones.push_back(ph);
        if (!phones.empty()) items.push_back({false, word, p.ipa, std::move(phones)});
      }
      // A pause after punctuation, as the aligner finds speakers make there (a word without
      // phones, such as a lone dash, still ends a phrase).
      if (punctuation_class(word) >= 2 && !items.back().pause) items.push_back({true, "", "", {"sil"}});
    }
    start = space + 1;
  }
  if (!items.back().pause) items.push_back({true, "", "", {"sil"}});
  return items;
}

std::vector<fs::path> speech_source_dirs(const fs::path& avatar) {
  std::vector<fs::path> dirs;
  std::error_code ec;
  if (!fs::is_directory(avatar / "speech", ec)) return dirs;
  for (const auto& entry : fs::directory_iterator(avatar / "speech"))
    if (fs::exists(entry.path() / "utterances.json")) dirs.push_back(entry.path());
  std::sort(dirs.begin(), dirs.end());
  return dirs;
}

std::pair<double, double> speech_seconds(const fs::path& avatar) {
  double train = 0, held_out = 0;
  for (const auto& dir : speech_source_dirs(avatar))
    for (const auto& u : speech::read_dataset(dir).utterances)
      (u.split == speech::Split::train ? train : held_out) += u.source_end_s - u.source_start_s;
  return {train, held_out};
}

namespace {

// An utterance's phones on the frame grid: aligned phone times rounded to 5 ms frames, pauses
// added so that they cover frames 0..frame_count, and a zero-length pause after punctuation where
// the speaker made none (the front end always puts one there: the model learns when it is short).
struct FramedItems {
  std::vector<FrontItem> items;
  std::vector<int64_t> durations;  // per phone of the items, in order
};

FramedItems frame_phones(const speech::DatasetUtterance& u, int64_t frame_count) {
  const auto& phones = u.alignment.phones;
  const auto& words = u.alignment.words;
  auto frame_at = [&](double t) { return std::clamp<int64_t>(std::llround(t * kFrameRate), 0, frame_count); };
  // Which word each phone belongs to: the word holding its midpoint, or the nearest.
  auto word_of = [&](const speech::TimedPhone& p) {
    const double mid = 0.5 * (p.start_s + p.end_s);
    size_t best = 0;
    double best_distance = 1e18;
    for (size_t w = 0; w < words.size(); ++w) {
      const double d = mid < words[w].start_s ? words[w].start_s - mid : mid > words[w].end_s ? mid - words[w].end_s : 0;
      if (d < best_distance) best = w, best_distance = d;
    }
    return best;
  };
  FramedItems out;
  int64_t cursor = 0;
  size_t current_word = SIZE_MAX;
  auto add = [&](bool pause, const std::string& phone, int64_t end_frame, size_t word) {
    const int64_t d = std::max<int64_t>(0, end_frame - cursor);
    if (pause && !out.items.empty() && out.items.back().pause) {  // pauses merge
      out.durations.back() += d;
    } else if (pause) {
      out.items.push_back({true, "", "", {"sil"}});
      out.durations.push_back(d);
    } else {
      if (word != current_word || out.items.empty() || out.items.back().pause) {
        out.items.push_back({false, words[word].text, words[word].ipa, {}});
        current_word = word;
      }
      out.items.back().phones.push_back(phone);
      out.durations.push_back(d);
    }
    cursor = std::max(cursor, end_frame);
  };
  add(true, "sil", phones.empty() ? 0 : frame_at(phones.front().start_s), 0);
  for (size_t i = 0; i < phones.size(); ++i) {
    // A phone ends where the next begins, so gaps in the alignment never leave frames uncovered.
    const int64_t end = i + 1 < phones.size() ? frame_at(phones[i + 1].start_s) : frame_at(phones[i].end_s);
    const bool pause = phone_id(phones[i].phone) <= 1 || words.empty();  // "sil" and anything not a phone
    if (!pause && !out.items.empty() && !out.items.back().pause && word_of(phones[i]) != current_word &&
        punctuation_class(words[current_word].text) >= 2)
      add(true, "sil", cursor, 0);
    add(pause, phones[i].phone, end, pause ? 0 : word_of(phones[i]));
  }
  add(true, "sil", frame_count, 0);
  return out;
}

// Log-F0 through unvoiced frames: linear between voiced neighbours, held at the ends.
std::vector<float> interpolated_lf0(const std::vector<float>& f0_hz, float fallback) {
  const size_t n = f0_hz.size();
  std::vector<float> out(n, fallback);
  std::vector<size_t> voiced;
  for (size_t t = 0; t < n; ++t)
    if (f0_hz[t] > 0) voiced.push_back(t);
  if (voiced.empty()) return out;
  for (size_t t = 0; t < n; ++t) {
    auto it = std::lower_bound(voiced.begin(), voiced.end(), t);
    if (it == voiced.end()) out[t] = std::log(f0_hz[voiced.back()]);
    else if (*it == t || it == voiced.begin()) out[t] = std::log(f0_hz[*it]);
    else {
      const size_t b = *it, a = *(it - 1);
      const float w = float(t - a) / float(b - a);
      out[t] = (1 - w) * std::log(f0_hz[a]) + w * std::log(f0_hz[b]);
    }
  }
  return out;
}

// The cache of one source's features: tensors "<id>.mcep", "<id>.f0", "<id>.bap", keyed by the
// clips it analysed (ids, files, their stretch of the source): texts and splits do not change them.
fs::path cache_file(const fs::path& cache_dir, const fs::path& source_dir, const speech::SpeechDataset& dataset) {
  std::string clips = fmt::format("vocoder analysis v{}\n", vocoder::kAnalysisVersion);
  for (const auto& u : dataset.utterances)
    clips += fmt::format("{} {} {:.4f} {:.4f}\n", u.id, u.wav, u.source_start_s, u.source_end_s);
  const std::string key = hash_bytes(clips).substr(0, 16);
  return cache_dir / fmt::format("{}-{}.safetensors", source_dir.filename().string(), key);
}

std::vector<vocoder::Features> source_features(const fs::path& source_dir, const speech::SpeechDataset& dataset,
                                               const fs::path& cache_dir, int threads, Progress& progress,
                                               const StopRequested& should_stop) {
  const fs::path cache = cache_file(cache_dir, source_dir, dataset);
  std::vector<vocoder::Features> out;
  if (fs::exists(cache)) {
    const auto file = safetensors::read(cache);
    for (const auto& u : dataset.utterances) {
      vocoder::Features f;
      const auto& f0 = file.tensors.find(u.id + ".f0");
      if (f0 == file.tensors.end()) throw InputError(fmt::format("{}: no features of utterance {}", cache.string(), u.id));
      f.frame_count = int(f0->second.element_count());
      f.f0_hz = safetensors::to_floats(f0->second);
      f.mcep = safetensors::to_floats(safetensors::expect(file, u.id + ".mcep", {f.frame_count, kMcepDims}, cache.string()));
      f.bap = safetensors::to_floats(safetensors::expect(file, u.id + ".bap", {f.frame_count, kBapDims}, cache.string()));
      out.push_back(std::move(f));
      progress.advance();
    }
    return out;
  }
  // `threads` utterances at a time (vocoder::analyze is thread-safe); a stop is honoured between
  // rounds, on this thread.
  out.resize(dataset.utterances.size());
  const size_t round = size_t(std::max(1, threads));
  for (size_t first = 0; first < out.size(); first += round) {
    if (should_stop && should_stop()) throw Stopped("voice data: stopped while analysing speech");
    const size_t last = std::min(out.size(), first + round);
    std::vector<std::exception_ptr> errors(last - first);
    std::vector<std::thread> workers;
    for (size_t i = first; i < last; ++i) {
      workers.emplace_back([&, i] {
        try {
          out[i] = vocoder::analyze(media::decode_audio(source_dir / dataset.utterances[i].wav, vocoder::kSampleRate));
        } catch (...) {
          errors[i - first] = std::current_exception();
        }
      });
    }
    for (auto& w : workers) w.join();
    for (const auto& e : errors)
      if (e) std::rethrow_exception(e);
    progress.advance(int64_t(last - first));
  }
  safetensors::File file;
  for (size_t i = 0; i < out.size(); ++i) {
    const auto& u = dataset.utterances[i];
    const auto& f = out[i];
    file.tensors[u.id + ".mcep"] = safetensors::from_floats(f.mcep, {f.frame_count, kMcepDims});
    file.tensors[u.id + ".f0"] = safetensors::from_floats(f.f0_hz, {f.frame_count});
    file.tensors[u.id + ".bap"] = safetensors::from_floats(f.bap, {f.frame_count, kBapDims});
  }
  fs::create_directories(cache_dir);
  // Older caches of this source (from a dataset since re-prepared) go.
  for (const auto& entry : fs::directory_iterator(cache_dir))
    if (entry.path().filename().string().starts_with(source_dir.filename().string() + "-")) fs::remove(entry.path());
  safetensors::write(cache, file);
  return out;
}

}  // namespace

VoiceData load_voice_data(const fs::path& avatar, const fs::path& cache_dir, int threads, const ProgressSink& sink,
                          const StopRequested& should_stop) {
  struct Raw {
    VoiceExample example;  // phones, context, durations; frames un-normalised
    bool held_out = false;
  };
  std::vector<std::pair<fs::path, speech::SpeechDataset>> sources;
  size_t utterance_count = 0;
  for (const auto& dir : speech_source_dirs(avatar)) {
    sources.emplace_back(dir, speech::read_dataset(dir));
    utterance_count += sources.back().second.utterances.size();
  }
  Progress progress("train voice: analyse speech", int64_t(utterance_count), "utterances", sink);
  std::vector<Raw> raws;
  VoiceData data;
  for (const auto& [dir, dataset] : sources) {
    const auto features = source_features(dir, dataset, cache_dir, threads, progress, should_stop);
    for (size_t i = 0; i < dataset.utterances.size(); ++i) {
      const auto& u = dataset.utterances[i];
      const auto& f = features[i];
      Raw raw;
      raw.held_out = u.split == speech::Split::held_out;
      (raw.held_out ? data.held_out_speech_s : data.train_speech_s) += u.source_end_s - u.source_start_s;
      VoiceExample& e = raw.example;
      e.id = dir.filename().string() + "/" + u.id;
      e.frame_count = f.frame_count;
      const FramedItems framed = frame_phones(u, f.frame_count);
      e.context = phone_contexts(framed.items);
      for (const auto& item : framed.items)
        for (const auto& p : item.phones) e.phones.push_back(phone_id(p));
      e.durations = framed.durations;
      const auto lf0 = interpolated_lf0(f.f0_hz, std::log(120.0f));
      e.frames.assign(size_t(f.frame_count) * kFrameDims, 0.0f);
      for (int64_t t = 0; t < f.frame_count; ++t) {
        float* row = &e.frames[size_t(t) * kFrameDims];
        std::copy_n(&f.mcep[size_t(t) * kMcepDims], kMcepDims, row);
        row[kLf0Index] = lf0[t];
        row[kVoicingIndex] = f.f0_hz[t] > 0 ? 1.0f : 0.0f;
        std::copy_n(&f.bap[size_t(t) * kBapDims], kBapDims, row + kBapIndex);
      }
      raws.push_back(std::move(raw));
    }
  }
  // Normalisation from the train split only: held-out speech must not shape the model.
  std::vector<double> mcep_sum(kMcepDims), mcep_sum2(kMcepDims), bap_sum(kBapDims), bap_sum2(kBapDims);
  std::vector<double> lf0_sum(1), lf0_sum2(1);
  double frames = 0, voiced = 0;
  for (const auto& raw : raws) {
    if (raw.held_out) continue;
    for (int64_t t = 0; t < raw.example.frame_count; ++t) {
      const float* row = &raw.example.frames[size_t(t) * kFrameDims];
      for (int d = 0; d < kMcepDims; ++d) mcep_sum[d] += row[d], mcep_sum2[d] += double(row[d]) * row[d];
      for (int d = 0; d < kBapDims; ++d)
        bap_sum[d] += row[kBapIndex + d], bap_sum2[d] += double(row[kBapIndex + d]) * row[kBapIndex + d];
      if (row[kVoicingIndex] > 0) lf0_sum[0] += row[kLf0Index], lf0_sum2[0] += double(row[kLf0Index]) * row[kLf0Index], ++voiced;
      ++frames;
    }
  }
  Normalization& n = data.normalization;
  put_stats(mcep_sum, mcep_sum2, frames, n.mcep_mean, n.mcep_std);
  put_stats(bap_sum, bap_sum2, frames, n.bap_mean, n.bap_std);
  std::vector<float> lf0_mean, lf0_std;
  put_stats(lf0_sum, lf0_sum2, voiced, lf0_mean, lf0_std);
  n.lf0_mean = voiced > 0 ? lf0_mean[0] : std::log(120.0f);
  n.lf0_std = lf0_std[0];
  for (auto& raw : raws) {
    VoiceExample& e = raw.example;
    // Phone-level pitch and energy targets: the mean over the phone's frames of log-F0 (voiced
    // frames; the interpolated contour where the phone has none) and c0.
    // ref: FastPitch §2.1 averages pitch per input symbol; FastSpeech 2 §2.3 energy per frame,
    // here per phone as FastPitch does for pitch.
    int64_t t = 0;
    for (size_t p = 0; p < e.phones.size(); ++p) {
      double lf0_voiced = 0, lf0_all = 0, c0 = 0;
      int voiced_count = 0;
      const int64_t end = t + e.durations[p];
      for (int64_t k = t; k < end; ++k) {
        const float* row = &e.frames[size_t(k) * kFrameDims];
        lf0_all += row[kLf0Index];
        c0 += row[0];
        if (row[kVoicingIndex] > 0) lf0_voiced += row[kLf0Index], ++voiced_count;
      }
      const int64_t at = std::min<int64_t>(t, e.frame_count - 1);
      const float* here = &e.frames[size_t(at) * kFrameDims];
      const double len = double(e.durations[p]);
      const double lf0 = voiced_count ? lf0_voiced / voiced_count : len > 0 ? lf0_all / len : here[kLf0Index];
      const double energy = len > 0 ? c0 / len : here[0];
      e.phone_pitch.push_back(float((lf0 - n.lf0_mean) / n.lf0_std));
      e.phone_energy.push_back(float((energy - n.mcep_mean[0]) / n.mcep_std[0]));
      t = end;
    }
    for (int64_t k = 0; k < e.frame_count; ++k) {
      float* row = &e.frames[size_t(k) * kFrameDims];
      for (int d = 0; d < kMcepDims; ++d) row[d] = (row[d] - n.mcep_mean[d]) / n.mcep_std[d];
      row[kLf0Index] = (row[kLf0Index] - n.lf0_mean) / n.lf0_std;
      for (int d = 0; d < kBapDims; ++d) row[kBapIndex + d] = (row[kBapIndex + d] - n.bap_mean[d]) / n.bap_std[d];
    }
    (raw.held_out ? data.held_out : data.train).push_back(std::move(e));
  }
  return data;
}

std::vector<std::vector<size_t>> length_batches(const std::vector<VoiceExample>& examples, int64_t max_frames) {
  std::vector<size_t> order(examples.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return examples[a].frame_count < examples[b].frame_count; });
  std::vector<std::vector<size_t>> batches;
  for (size_t i : order) {
    // Sorted ascending, so the newest example is the batch's longest.
    if (batches.empty() || int64_t(batches.back().size() + 1) * examples[i].frame_count > max_frames)
      batches.emplace_back();
    batches.back().push_back(i);
  }
  return batches;
}

AcousticBatch collate(const std::vector<VoiceExample>& examples, const std::vector<size_t>& indices, int64_t reduction) {
  const int64_t batch = int64_t(indices.size());
  int64_t phone_count = 1, frame_count = reduction;
  for (size_t i : indices) {
    phone_count = std::max<int64_t>(phone_count, int64_t(examples[i].phones.size()));
    frame_count = std::max(frame_count, (examples[i].frame_count + reduction - 1) / reduction * reduction);
  }
  AcousticBatch b;
  b.phones = torch::zeros({batch, phone_count}, torch::kInt64);
  b.context = torch::zeros({batch, phone_count, kContextColumnCount}, torch::kInt64);
  b.durations = torch::zeros({batch, phone_count}, torch::kInt64);
  b.phone_pitch = torch::zeros({batch, phone_count});
  b.phone_energy = torch::zeros({batch, phone_count});
  b.frames = torch::zeros({batch, frame_count, kFrameDims});
  b.frame_mask = torch::zeros({batch, frame_count});
  auto phones = b.phones.accessor<int64_t, 2>();
  auto durations = b.durations.accessor<int64_t, 2>();
  auto pitch = b.phone_pitch.accessor<float, 2>();
  auto energy = b.phone_energy.accessor<float, 2>();
  for (int64_t k = 0; k < batch; ++k) {
    const VoiceExample& e = examples[indices[size_t(k)]];
    const int64_t n = int64_t(e.phones.size());
    for (int64_t p = 0; p < n; ++p) {
      phones[k][p] = e.phones[p];
      durations[k][p] = e.durations[p];
      pitch[k][p] = e.phone_pitch[p];
      energy[k][p] = e.phone_energy[p];
    }
    std::vector<int64_t> context;
    for (const auto& c : e.context) context.insert(context.end(), c.begin(), c.end());
    b.context[k].slice(0, 0, n).copy_(torch::tensor(context, torch::kInt64).view({n, kContextColumnCount}));
    b.frames[k].slice(0, 0, e.frame_count)
        .copy_(torch::from_blob(const_cast<float*>(e.frames.data()), {e.frame_count, kFrameDims}, torch::kFloat));
    b.frame_mask[k].slice(0, 0, e.frame_count).fill_(1.0f);
  }
  return b;
}

}  // namespace dself::voice
