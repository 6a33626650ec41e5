#include "sample/detail/interview.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "core/random.h"

namespace dself::sample {

namespace {

constexpr double kMinPauseS = 0.3;
constexpr double kMaxPauseS = 0.7;
constexpr double kGuestLineChance = 0.35;  // after each of the host's sentences but the last
constexpr double kMusicTailS = 0.5;        // the music goes on this long after the first sentence
constexpr double kMusicFadeS = 0.5;
constexpr float kMusicGain = 0.08f;         // a bed under the voice, not over it
constexpr double kTwoShotScale = 0.75;     // each face in a two-shot, against the full frame

// What the guest says: an interviewer's questions and asides.
const char* const kGuestLines[] = {
    "So how did you get started with all of this?",
    "That is interesting. Can you tell us a bit more?",
    "What would you say to someone who is just starting out?",
    "I never thought about it that way.",
    "How long did that take you, in the end?",
    "And what went wrong the first time?",
    "Was there a moment when you wanted to give up?",
    "Our viewers keep asking about that one.",
    "Where do you find the time for it?",
    "What is the one thing you would do differently?",
    "That sounds like a lot of work.",
    "Let us come back to that in a minute.",
};
constexpr size_t kGuestLineCount = sizeof kGuestLines / sizeof kGuestLines[0];

// Pictures without faces for the b-roll (Debian's opencv-doc).
const char* const kPictures[] = {"building.jpg", "fruits.jpg", "orange.jpg", "starry_night.jpg", "home.jpg"};
const char* const kPictureDir = "/usr/share/doc/opencv-doc/examples/data";

struct Line {
  std::string text;
  std::string topic;
  Speaker speaker;
};

// Silence up to end_s on one person's phone timeline.
void add_silence(std::vector<Phone>& phones, double end_s) {
  if (!phones.empty() && phones.back().phone == "pau") {
    phones.back().end_s = end_s;
  } else {
    double start_s = phones.empty() ? 0 : phones.back().end_s;
    if (end_s > start_s) phones.push_back(Phone{"pau", start_s, end_s});
  }
}

ShotKind host_shot(Random& random) {
  double u = random.uniform(0, 1);
  if (u < 0.60) return ShotKind::host;
  if (u < 0.75) return ShotKind::two_shot;
  if (u < 0.88) return ShotKind::broll;
  return ShotKind::guest;  // a cut-away to the guest listening
}

ShotKind guest_shot(Random& random) { return random.uniform(0, 1) < 0.7 ? ShotKind::guest : ShotKind::two_shot; }

int64_t frame_at(double t) { return static_cast<int64_t>(std::llround(t * kFps)); }

}  // namespace

const char* shot_kind_name(ShotKind kind) {
  switch (kind) {
    case ShotKind::intro:
      return "intro";
    case ShotKind::host:
      return "host";
    case ShotKind::guest:
      return "guest";
    case ShotKind::two_shot:
      return "two_shot";
    case ShotKind::broll:
      return "broll";
  }
  return "?";
}

SpokenVideo interview_video(const SpokenVideo& planned, const Voice& host, const Voice& guest, uint64_t seed) {
  auto index = static_cast<uint64_t>(planned.index);
  Random random(seed, "interview", index);
  std::vector<Line> lines;
  size_t guest_count = 0;
  size_t next_guest_line = Random(seed, "guest lines", index).below(kGuestLineCount);
  for (size_t i = 0; i < planned.sentences.size(); ++i) {
    lines.push_back(Line{planned.sentences[i].text, planned.sentences[i].topic, Speaker::host});
    bool last = i + 1 == planned.sentences.size();
    bool must = !last && guest_count == 0 && i + 2 == planned.sentences.size();
    if (!last && (random.uniform(0, 1) < kGuestLineChance || must)) {
      lines.push_back(Line{kGuestLines[next_guest_line++ % kGuestLineCount], "interview", Speaker::guest});
      ++guest_count;
    }
  }

  SpokenVideo video;
  video.index = planned.index;
  video.name = planned.name;
  video.title = planned.title;
  Random pauses(seed, "interview pauses", index);
  auto position = static_cast<int64_t>(std::llround(kIntroS * kSampleRate));
  add_silence(video.phones, kIntroS);
  add_silence(video.guest_phones, kIntroS);
  std::vector<int64_t> line_start_frames;
  for (size_t k = 0; k < lines.size(); ++k) {
    const Line& line = lines[k];
    int64_t shot_start = frame_at(static_cast<double>(position) / kSampleRate);
    if (k > 0) {
      auto pause = static_cast<int64_t>(std::llround(pauses.uniform(kMinPauseS, kMaxPauseS) * kSampleRate));
      shot_start = frame_at((static_cast<double>(position) + 0.5 * static_cast<double>(pause)) / kSampleRate);
      position += pause;
    }
    line_start_frames.push_back(shot_start);
    double offset_s = static_cast<double>(position) / kSampleRate;
    Utterance utterance = (line.speaker == Speaker::host ? host : guest).speak(line.text);
    SpokenSentence sentence{line.text, line.topic, position, utterance.sample_count(), {}, line.speaker};
    for (Word word : utterance.words) {
      word.start_s += offset_s;
      word.end_s += offset_s;
      for (Phone& phone : word.phones) phone.start_s += offset_s, phone.end_s += offset_s;
      sentence.words.push_back(std::move(word));
    }
    std::vector<Phone>& speaking = line.speaker == Speaker::host ? video.phones : video.guest_phones;
    std::vector<Phone>& listening = line.speaker == Speaker::host ? video.guest_phones : video.phones;
    for (const Phone& phone : utterance.phones) {
      if (phone.phone == "pau") {
        add_silence(speaking, phone.end_s + offset_s);
      } else {
        add_silence(speaking, phone.start_s + offset_s);
        speaking.push_back(Phone{phone.phone, phone.start_s + offset_s, phone.end_s + offset_s});
      }
    }
    position += utterance.sample_count();
    add_silence(listening, static_cast<double>(position) / kSampleRate);
    video.sentences.push_back(std::move(sentence));
  }
  video.frame_count = std::max<int64_t>(1, (position + kSamplesPerFrame - 1) / kSamplesPerFrame);
  add_silence(video.phones, video.duration_s());
  add_silence(video.guest_phones, video.duration_s());

  // Shots: the intro, then one per line (the first always the host), merged where the kind
  // repeats.
  Random shots(seed, "shots", index);
  int64_t intro_end = frame_at(kIntroS);
  video.shots.push_back(Shot{0, intro_end, ShotKind::intro, 0});
  for (size_t k = 0; k < lines.size(); ++k) {
    ShotKind kind = k == 0 ? ShotKind::host : lines[k].speaker == Speaker::host ? host_shot(shots) : guest_shot(shots);
    int64_t start = k == 0 ? intro_end : line_start_frames[k];
    if (video.shots.back().kind == kind) continue;
    video.shots.back().end_frame = start;
    int64_t fade = k == 0 ? kIntroFadeFrames : kind == ShotKind::broll ? kBrollFadeFrames : 0;
    video.shots.push_back(Shot{start, video.frame_count, kind, fade});
  }
  video.shots.back().end_frame = video.frame_count;

  double music_end = std::min(video.duration_s(), video.sentences.front().end_s() + kMusicTailS);
  video.music.push_back(Interval{0, music_end});
  return video;
}

MusicBed::MusicBed(const SpokenVideo& video, uint64_t seed)
    : video_(video), first_chord_(Random(seed, "music", static_cast<uint64_t>(video.index)).below(4)) {}

void MusicBed::mix(std::span<float> chunk, int64_t first_sample) const {
  // I-V-vi-IV in C major, one chord a second; each note with two overtones, a decaying envelope
  // and a bass an octave below the root.
  static const double chords[4][3] = {
      {261.63, 329.63, 392.00}, {196.00, 246.94, 293.66}, {220.00, 261.63, 329.63}, {174.61, 220.00, 261.63}};
  for (const Interval& music : video_.music) {
    for (size_t i = 0; i < chunk.size(); ++i) {
      double t = static_cast<double>(first_sample + static_cast<int64_t>(i)) / kSampleRate;
      if (t < music.start_s || t >= music.end_s) continue;
      double fade = std::min({1.0, (t - music.start_s) / kMusicFadeS, (music.end_s - t) / kMusicFadeS});
      double local = t - music.start_s;
      auto chord = static_cast<size_t>(local);
      double in_chord = local - static_cast<double>(chord);
      const double* notes = chords[(first_chord_ + chord) % 4];
      double envelope = std::min(1.0, in_chord / 0.02) * std::exp(-1.5 * in_chord);
      double value = 0;
      for (int n = 0; n < 3; ++n) {
        for (int h = 1; h <= 3; ++h) value += std::pow(0.5, h - 1) * std::sin(2 * std::numbers::pi * notes[n] * h * t);
      }
      value += 1.5 * std::sin(2 * std::numbers::pi * notes[0] / 2 * t);
      chunk[i] += static_cast<float>(kMusicGain * fade * envelope * value / 3);
    }
  }
}

Compositor::Compositor(const Portrait& host, const Portrait& guest, uint64_t seed)
    : host_(host), guest_(guest), size_(host.size), seed_(seed) {
  for (const char* name : kPictures) {
    std::string path = fmt::format("{}/{}", kPictureDir, name);
    cv::Mat picture = cv::imread(path, cv::IMREAD_COLOR);
    if (picture.empty()) {
      throw EnvironmentError(
          fmt::format("the hard sample's b-roll picture {} is missing: install Debian's opencv-doc", path));
    }
    // Cover a square a third larger than the frame, so that the picture can pan.
    double scale = 1.33 * size_ / std::min(picture.cols, picture.rows);
    cv::resize(picture, picture, cv::Size(), scale, scale, cv::INTER_AREA);
    pictures_.push_back(picture);
  }
}

cv::Mat Compositor::broll(size_t shot_index, const Shot& shot, int64_t frame) const {
  const cv::Mat& picture = pictures_[Random(seed_, "broll", shot_index).below(pictures_.size())];
  double u = std::clamp(static_cast<double>(frame - shot.start_frame) /
                            static_cast<double>(std::max<int64_t>(1, shot.end_frame - shot.start_frame)),
                        0.0, 1.0);
  int x = static_cast<int>(std::lround(u * (picture.cols - size_)));
  int y = (picture.rows - size_) / 2;
  return picture(cv::Rect(x, y, size_, size_)).clone();
}

cv::Mat Compositor::draw(const Shot& shot, size_t shot_index, int64_t frame, const Pose& host, const Pose& guest,
                         OnScreen& truth) {
  truth = OnScreen{};
  switch (shot.kind) {
    case ShotKind::intro:
    case ShotKind::broll:
      return broll(shot_index, shot, frame);
    case ShotKind::host:
      truth.host = host.landmarks;
      return host_.render(host).clone();
    case ShotKind::guest:
      truth.guest = guest.landmarks;
      return guest_.render(guest).clone();
    case ShotKind::two_shot: {
      // Each person scaled down, the middle half of their frame side by side.
      cv::Mat out(size_, size_, CV_8UC3, cv::Scalar(48, 52, 56));
      auto place = [&](const cv::Mat& image, const Landmarks& points, int left) {
        cv::Mat scaled;
        cv::resize(image, scaled, cv::Size(), kTwoShotScale, kTwoShotScale, cv::INTER_AREA);
        int half = size_ / 2;
        int x0 = (scaled.cols - half) / 2;
        int y0 = (size_ - scaled.rows) / 2;
        scaled(cv::Rect(x0, 0, half, scaled.rows)).copyTo(out(cv::Rect(left, y0, half, scaled.rows)));
        Landmarks moved;
        for (size_t i = 0; i < points.size(); ++i) {
          moved[i] = points[i] * static_cast<float>(kTwoShotScale) + cv::Point2f(static_cast<float>(left - x0), static_cast<float>(y0));
        }
        return moved;
      };
      truth.host = place(host_.render(host), host.landmarks, 0);
      truth.guest = place(guest_.render(guest), guest.landmarks, size_ / 2);
      return out;
    }
  }
  return {};
}

const cv::Mat& Compositor::frame(const SpokenVideo& video, int64_t frame, const Pose& host, const Pose& guest,
                                 OnScreen& truth) {
  size_t s = 0;
  while (s + 1 < video.shots.size() && video.shots[s + 1].start_frame <= frame) ++s;
  const Shot& shot = video.shots[s];
  frame_ = draw(shot, s, frame, host, guest, truth);
  int64_t into = frame - shot.start_frame;
  if (s > 0 && into < shot.fade_frames) {
    OnScreen before;
    cv::Mat previous = draw(video.shots[s - 1], s - 1, frame, host, guest, before);
    double alpha = static_cast<double>(into + 1) / static_cast<double>(shot.fade_frames + 1);
    cv::addWeighted(frame_, alpha, previous, 1 - alpha, 0, frame_);
    if (alpha < 0.5) truth = before;
  }
  return frame_;
}

}  // namespace dself::sample
