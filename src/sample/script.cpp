#include "sample/detail/script.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>

#include "core/error.h"
#include "core/random.h"

namespace dself::sample {

namespace {

constexpr double kMinPauseS = 0.3;  // silence added between sentences, drawn per gap
constexpr double kMaxPauseS = 0.7;
constexpr double kMeanPauseS = 0.5 * (kMinPauseS + kMaxPauseS);

// Sentence lengths, so that a sentence tried and not used is not synthesised twice.
class LengthCache {
 public:
  explicit LengthCache(const Voice& voice) : voice_(voice) {}
  double seconds(const std::string& text) {
    auto found = seconds_.find(text);
    if (found != seconds_.end()) return found->second;
    return seconds_[text] = voice_.speak(text).duration_s();
  }

 private:
  const Voice& voice_;
  std::map<std::string, double> seconds_;
};

struct Pick {
  const std::string* text;
  const Topic* topic;
};

// Walks the topics' bodies in order; each topic remembers where the last video stopped.
class BodyCursor {
 public:
  explicit BodyCursor(const std::vector<Topic>& topics) : topics_(topics), next_(topics.size(), 0) {}

  void start(size_t topic) { topic_ = topic; }
  const Topic& topic() const { return topics_[topic_]; }

  // The next body sentence, moving on to the next topic when this one is used up; nullptr
  // when no topic has a body.
  const std::string* peek() {
    for (size_t tried = 0; tried <= topics_.size(); ++tried) {
      const Topic& t = topics_[topic_];
      if (next_[topic_] < t.body.size()) return &t.body[next_[topic_]];
      next_[topic_] = 0;  // used up: a later video may start it again
      topic_ = (topic_ + 1) % topics_.size();
    }
    return nullptr;
  }
  void take() { ++next_[topic_]; }

 private:
  const std::vector<Topic>& topics_;
  std::vector<size_t> next_;
  size_t topic_ = 0;
};

std::string title_of(const std::string& topic_name, int part) {
  std::string title = topic_name;
  if (!title.empty()) title[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(title[0])));
  if (part > 1) title += fmt::format(" (part {})", part);
  return title;
}

// Which sentences video v says, chosen by length against the target (see plan_videos).
std::vector<Pick> pick_sentences(BodyCursor& cursor, size_t first_topic, double target_s, LengthCache& lengths) {
  std::vector<Pick> picks;
  double elapsed = 0;
  auto add = [&](const std::string* text, const Topic* topic) {
    if (!picks.empty()) elapsed += kMeanPauseS;
    elapsed += lengths.seconds(*text);
    picks.push_back(Pick{text, topic});
  };
  cursor.start(first_topic);
  const Topic& opening = cursor.topic();
  if (opening.greeting) add(&*opening.greeting, &opening);
  while (true) {
    const std::string* next = cursor.peek();
    if (next == nullptr) break;
    const Topic& topic = cursor.topic();
    double sign_off = topic.sign_off ? kMeanPauseS + lengths.seconds(*topic.sign_off) : 0;
    double pause = picks.empty() ? 0 : kMeanPauseS;
    // Add it while the video's midpoint through this sentence is still before the target.
    if (!picks.empty() && elapsed + pause + 0.5 * lengths.seconds(*next) + sign_off > target_s) break;
    add(next, &topic);
    cursor.take();
  }
  if (picks.empty()) return picks;
  const Topic& closing = *picks.back().topic;
  if (closing.sign_off && elapsed + kMeanPauseS + 0.5 * lengths.seconds(*closing.sign_off) <= target_s) {
    add(&*closing.sign_off, &closing);
  }
  return picks;
}

// Lays the sentences end to end with seeded pauses, and the phones on one timeline.
SpokenVideo speak_video(int index, const std::vector<Pick>& picks, const Voice& voice, uint64_t seed) {
  Random random(seed, "pauses", static_cast<uint64_t>(index));
  SpokenVideo video;
  video.index = index;
  video.name = fmt::format("video_{:03d}", index);
  int64_t position = 0;
  // Silence up to end_s: one "pau" however many silences meet (an utterance's last, the
  // pause, the next utterance's first).
  auto add_silence = [&](double end_s) {
    if (!video.phones.empty() && video.phones.back().phone == "pau") {
      video.phones.back().end_s = end_s;
    } else {
      double start_s = video.phones.empty() ? 0 : video.phones.back().end_s;
      if (end_s > start_s) video.phones.push_back(Phone{"pau", start_s, end_s});
    }
  };
  for (const Pick& pick : picks) {
    if (position > 0) {
      auto pause = static_cast<int64_t>(std::llround(random.uniform(kMinPauseS, kMaxPauseS) * kSampleRate));
      position += pause;
      add_silence(static_cast<double>(position) / kSampleRate);
    }
    Utterance utterance = voice.speak(*pick.text);
    double offset_s = static_cast<double>(position) / kSampleRate;
    SpokenSentence sentence{*pick.text, pick.topic->name, position, utterance.sample_count(), {}};
    for (Word word : utterance.words) {
      word.start_s += offset_s;
      word.end_s += offset_s;
      for (Phone& phone : word.phones) {
        phone.start_s += offset_s;
        phone.end_s += offset_s;
      }
      sentence.words.push_back(std::move(word));
    }
    for (const Phone& phone : utterance.phones) {
      if (phone.phone == "pau") {
        add_silence(phone.end_s + offset_s);
      } else {
        video.phones.push_back(Phone{phone.phone, phone.start_s + offset_s, phone.end_s + offset_s});
      }
    }
    position += utterance.sample_count();
    video.sentences.push_back(std::move(sentence));
  }
  // Whole frames: the last silence runs on to the end of the last frame.
  video.frame_count = std::max<int64_t>(1, (position + kSamplesPerFrame - 1) / kSamplesPerFrame);
  add_silence(video.duration_s());
  return video;
}

}  // namespace

std::vector<SpokenVideo> plan_videos(const std::vector<Topic>& topics, const Voice& voice, int video_count,
                                     double seconds_per_video, uint64_t seed) {
  LengthCache lengths(voice);
  BodyCursor cursor(topics);
  std::map<std::string, int> parts;  // how often each topic has opened a video
  size_t rotation = Random(seed, "topics").below(topics.size());
  std::vector<SpokenVideo> videos;
  for (int v = 0; v < video_count; ++v) {
    size_t first_topic = (rotation + static_cast<size_t>(v)) % topics.size();
    std::vector<Pick> picks = pick_sentences(cursor, first_topic, seconds_per_video, lengths);
    if (picks.empty()) throw InputError("the monologue has no sentences to speak");
    SpokenVideo video = speak_video(v, picks, voice, seed);
    video.title = title_of(topics[first_topic].name, ++parts[topics[first_topic].name]);
    videos.push_back(std::move(video));
  }
  return videos;
}

SpeechTrack::SpeechTrack(const SpokenVideo& video, const Voice& voice, const Voice* guest)
    : video_(video), voice_(voice), guest_(guest) {}

std::span<const float> SpeechTrack::next(int64_t count) {
  count = std::clamp<int64_t>(count, 0, video_.sample_count() - position_);
  chunk_.assign(static_cast<size_t>(count), 0.0f);
  int64_t end = position_ + count;
  for (size_t k = sentence_; k < video_.sentences.size(); ++k) {
    const SpokenSentence& sentence = video_.sentences[k];
    if (sentence.start_sample >= end) break;
    if (loaded_ != k) {
      const Voice& speaker = sentence.speaker == Speaker::guest && guest_ ? *guest_ : voice_;
      audio_ = speaker.speak(sentence.text).samples;
      loaded_ = k;
      if (static_cast<int64_t>(audio_.size()) != sentence.sample_count) {
        throw std::logic_error(fmt::format("flite gave {} samples for \"{}\" on a second synthesis, {} on the first",
                                           audio_.size(), sentence.text, sentence.sample_count));
      }
    }
    int64_t from = std::max(position_, sentence.start_sample);
    int64_t to = std::min(end, sentence.start_sample + sentence.sample_count);
    std::copy(audio_.begin() + (from - sentence.start_sample), audio_.begin() + (to - sentence.start_sample),
              chunk_.begin() + (from - position_));
    if (sentence.start_sample + sentence.sample_count <= end) sentence_ = k + 1;
  }
  position_ = end;
  return chunk_;
}

}  // namespace dself::sample
