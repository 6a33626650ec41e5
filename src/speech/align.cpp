// Phone-level forced alignment with PocketSphinx: each phone is a "word" of a grammar that
// accepts only the utterance's phones in order. Why this method, and how well it does:
// docs/ALIGNMENT.md.
#include <fmt/format.h>
#include <pocketsphinx.h>
#include <sphinxbase/fsg_model.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <optional>
#include <set>

#include "core/error.h"
#include "speech/speech.h"

namespace dself::speech {
namespace {

constexpr double kFrameS = 0.01;  // PocketSphinx's frame shift
// Frame f covers [f * 10 ms, f * 10 ms + 25.625 ms) (the en-us model's window), centred 12.8 ms
// after its start, so the boundary between frames f - 1 and f lies at f * 10 ms + 7.8 ms.
// ref: sphinxbase fe.h, DEFAULT_WINDOW_LENGTH 0.025625 and DEFAULT_FRAME_RATE 100.
constexpr double kBoundaryOffsetS = 0.0078;
constexpr int kMinFramesPerPhone = 3;  // the en-us model's phones: 3 emitting states, no skips

// The 39 phones of the CMU dictionary, as the en-us model names them.
constexpr const char* kPhones[] = {"aa", "ae", "ah", "ao", "aw", "ay", "b",  "ch", "d", "dh", "eh", "er", "ey",
                                   "f",  "g",  "hh", "ih", "iy", "jh", "k",  "l",  "m", "n",  "ng", "ow", "oy",
                                   "p",  "r",  "s",  "sh", "t",  "th", "uh", "uw", "v", "w",  "y",  "z",  "zh"};
constexpr const char* kPhoneWordPrefix = "ph_";
constexpr const char* kSilenceWord = "<sil>";  // from the model's noisedict

std::string phone_word(const std::string& phone) { return kPhoneWordPrefix + phone; }

// A word to align: its index among the given words and the pronunciations the grammar allows.
struct GrammarWord {
  size_t index = 0;
  std::vector<std::vector<std::string>> variants;
};

// One decoded phone segment, in frames.
struct Segment {
  std::string phone;  // ARPAbet, or "sil"
  int first_frame = 0;
  int last_frame = 0;  // inclusive
};

// Which pronunciation of each word the decoded phones follow: a search over (word, segment)
// positions, since one variant may be a prefix of another. Returns the variant per word, or
// nothing when the phones do not spell the words (the search did not reach the grammar's end).
std::optional<std::vector<size_t>> match_variants(const std::vector<GrammarWord>& words,
                                                  const std::vector<Segment>& phones) {
  std::vector<size_t> chosen(words.size());
  std::set<std::pair<size_t, size_t>> failed;
  std::function<bool(size_t, size_t)> match = [&](size_t w, size_t p) -> bool {
    if (w == words.size()) return p == phones.size();
    if (failed.contains({w, p})) return false;
    for (size_t v = 0; v < words[w].variants.size(); ++v) {
      const auto& variant = words[w].variants[v];
      if (p + variant.size() > phones.size()) continue;
      bool same = true;
      for (size_t k = 0; k < variant.size() && same; ++k) same = phones[p + k].phone == variant[k];
      if (same && match(w + 1, p + variant.size())) {
        chosen[w] = v;
        return true;
      }
    }
    failed.insert({w, p});
    return false;
  };
  if (!match(0, 0)) return std::nullopt;
  return chosen;
}

}  // namespace

struct Aligner::Model {
  cmd_ln_t* config = nullptr;
  ps_decoder_t* decoder = nullptr;
  std::set<std::string> phones;
  ~Model() {
    if (decoder) ps_free(decoder);
    if (config) cmd_ln_free_r(config);
  }
};

Aligner::Aligner(const AlignerOptions& options) : options_(options), model_(std::make_unique<Model>()) {
  std::filesystem::path hmm = options.model_dir / "en-us";
  if (!std::filesystem::exists(hmm / "mdef")) {
    throw EnvironmentError(
        fmt::format("the PocketSphinx acoustic model is missing from {}: install "
                    "pocketsphinx-en-us (make setup) or give another model directory",
                    hmm.string()));
  }
  // No language model and an empty dictionary: the only words are the phones added below.
  // -remove_silence no: PocketSphinx's own voice activity detection would drop silent frames and
  // shift every time after them. The widest beams the API takes, and no phone-loop lookahead:
  // the grammar already allows only the right phones, and pruning its paths makes utterances
  // whose words are partly wrong (speech recognition's) fail to align (6 of 13 on the sample
  // person at 1e-80, 2 at 1e-200), at no measurable cost in time.
  model_->config =
      cmd_ln_init(nullptr, ps_args(), TRUE, "-hmm", hmm.c_str(), "-dict", "/dev/null", "-logfn", "/dev/null",
                  "-samprate", "16000", "-remove_silence", "no", "-fsgusefiller", "no", "-bestpath", "no", "-pl_window",
                  "0", "-beam", "1e-200", "-pbeam", "1e-200", "-wbeam", "1e-200", nullptr);
  if (model_->config) model_->decoder = ps_init(model_->config);
  if (!model_->decoder) {
    throw EnvironmentError(fmt::format("PocketSphinx could not load its acoustic model from {}", hmm.string()));
  }
  for (const char* phone : kPhones) {
    std::string upper;
    for (const char* c = phone; *c; ++c) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(*c)));
    if (ps_add_word(model_->decoder, phone_word(phone).c_str(), upper.c_str(), FALSE) < 0) {
      throw EnvironmentError(fmt::format("the acoustic model in {} has no phone {}", hmm.string(), upper));
    }
    model_->phones.insert(phone);
  }
}

Aligner::~Aligner() = default;

Alignment Aligner::align(std::span<const float> clip, const std::vector<Pronunciation>& words) {
  // The words that have phones, with the pronunciations the model can say.
  std::vector<GrammarWord> grammar_words;
  size_t min_phone_count = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    GrammarWord g{i, {}};
    for (const auto& variant : words[i].arpabet) {
      bool known = !variant.empty() && std::all_of(variant.begin(), variant.end(),
                                                   [&](const std::string& p) { return model_->phones.contains(p); });
      if (known) g.variants.push_back(variant);
    }
    if (g.variants.empty()) continue;
    size_t shortest = g.variants[0].size();
    for (const auto& v : g.variants) shortest = std::min(shortest, v.size());
    min_phone_count += shortest;
    grammar_words.push_back(std::move(g));
  }
  if (grammar_words.empty()) throw InputError("nothing to align: none of the utterance's words has phones");
  const double clip_s = static_cast<double>(clip.size()) / kSampleRate;
  const double needed_s = static_cast<double>(min_phone_count * kMinFramesPerPhone) * kFrameS;
  if (clip_s < needed_s) {
    throw InputError(
        fmt::format("the clip is {:.2f} s long, too short for its {} phones (at least {:.2f} s): "
                    "the audio does not hold what the words claim",
                    clip_s, min_phone_count, needed_s));
  }

  // The grammar: word after word, each through any of its pronunciations, with an optional
  // silence (a self-loop) wherever one word ends and the next begins.
  int state_count = 1;
  for (const auto& g : grammar_words) {
    for (const auto& v : g.variants) state_count += static_cast<int>(v.size()) - 1;
    state_count += 1;
  }
  ps_decoder_t* ps = model_->decoder;
  fsg_model_t* fsg = fsg_model_init("align", ps_get_logmath(ps), 1.0f, state_count);
  fsg->start_state = 0;
  fsg->final_state = state_count - 1;
  int next_state = 1;
  int word_start = 0;
  std::vector<int> boundaries{0};
  for (const auto& g : grammar_words) {
    int word_end =
        next_state + static_cast<int>(std::accumulate(g.variants.begin(), g.variants.end(), size_t{0},
                                                      [](size_t n, const auto& v) { return n + v.size() - 1; }));
    for (const auto& variant : g.variants) {
      int from = word_start;
      for (size_t k = 0; k < variant.size(); ++k) {
        int to = k + 1 == variant.size() ? word_end : next_state++;
        fsg_model_trans_add(fsg, from, to, 0, fsg_model_word_add(fsg, phone_word(variant[k]).c_str()));
        from = to;
      }
    }
    next_state = word_end + 1;
    word_start = word_end;
    boundaries.push_back(word_end);
  }
  float32 silence_probability = static_cast<float32>(options_.silence_probability);
  for (int state : boundaries) fsg_model_add_silence(fsg, kSilenceWord, state, silence_probability);
  // The decoder keeps its own reference to the grammar.
  int set = ps_set_fsg(ps, "align", fsg);
  fsg_model_free(fsg);
  if (set < 0 || ps_set_search(ps, "align") < 0) {
    throw EnvironmentError("PocketSphinx rejected the alignment grammar");
  }

  std::vector<int16_t> pcm(clip.size());
  for (size_t i = 0; i < clip.size(); ++i) {
    pcm[i] = static_cast<int16_t>(std::lround(std::clamp(clip[i], -1.0f, 1.0f) * 32767.0f));
  }
  if (ps_start_utt(ps) < 0 || ps_process_raw(ps, pcm.data(), pcm.size(), FALSE, TRUE) < 0 || ps_end_utt(ps) < 0) {
    throw EnvironmentError("PocketSphinx failed while aligning an utterance");
  }

  std::vector<Segment> segments, phones;
  for (ps_seg_t* seg = ps_seg_iter(ps); seg; seg = ps_seg_next(seg)) {
    std::string word = ps_seg_word(seg);
    Segment s;
    ps_seg_frames(seg, &s.first_frame, &s.last_frame);
    if (s.last_frame < s.first_frame) continue;
    s.phone = word.starts_with(kPhoneWordPrefix) ? word.substr(std::string(kPhoneWordPrefix).size()) : "sil";
    if (s.phone == "sil" && !segments.empty() && segments.back().phone == "sil") {
      segments.back().last_frame = s.last_frame;
      continue;
    }
    segments.push_back(s);
    if (s.phone != "sil") phones.push_back(s);
  }
  std::optional<std::vector<size_t>> chosen = match_variants(grammar_words, phones);
  if (!chosen) {
    throw InputError("no alignment fits: the audio does not match the utterance's words well enough to place them");
  }

  Alignment alignment;
  auto to_time = [&](int boundary_frame) {
    if (boundary_frame <= 0) return 0.0;
    return std::min(clip_s, boundary_frame * kFrameS + kBoundaryOffsetS);
  };
  for (const Segment& s : segments) {
    alignment.phones.push_back(TimedPhone{s.phone, to_time(s.first_frame), to_time(s.last_frame + 1)});
  }
  if (!alignment.phones.empty()) alignment.phones.back().end_s = clip_s;
  // Word times from their phones; words without phones sit at the end of the word before.
  std::vector<TimedPhone> spoken;
  for (const auto& p : alignment.phones) {
    if (p.phone != "sil") spoken.push_back(p);
  }
  size_t next_phone = 0, next_grammar_word = 0;
  double previous_end = 0;
  for (size_t i = 0; i < words.size(); ++i) {
    AlignedWord w{words[i].word, previous_end, previous_end, words[i].ipa};
    if (next_grammar_word < grammar_words.size() && grammar_words[next_grammar_word].index == i) {
      size_t count = grammar_words[next_grammar_word].variants[(*chosen)[next_grammar_word]].size();
      w.start_s = spoken[next_phone].start_s;
      w.end_s = spoken[next_phone + count - 1].end_s;
      next_phone += count;
      ++next_grammar_word;
    }
    previous_end = w.end_s;
    alignment.words.push_back(std::move(w));
  }
  return alignment;
}

}  // namespace dself::speech
