#include "sample/detail/outputs.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"
#include "core/text.h"

namespace dself::sample {

namespace {

constexpr int kMaxLineChars = 36;  // about where YouTube's automatic captions break a line
constexpr int64_t kLineChangeMs = 10;

// Rounded to a number of decimals; dividing by the power of ten (not multiplying by its
// inverse) gives the double that prints as the short decimal.
double round_to(double value, double scale) { return std::round(value * scale) / scale; }
double seconds(double t) { return round_to(t, 1e4); }

nlohmann::ordered_json phone_json(const Phone& phone) {
  return {{"phone", phone.phone}, {"start_s", seconds(phone.start_s)}, {"end_s", seconds(phone.end_s)}};
}

nlohmann::ordered_json sentence_json(const SpokenSentence& sentence, bool interview) {
  nlohmann::ordered_json words = nlohmann::ordered_json::array();
  for (const Word& word : sentence.words) {
    nlohmann::ordered_json phones = nlohmann::ordered_json::array();
    for (const Phone& phone : word.phones) phones.push_back(phone_json(phone));
    words.push_back({{"text", word.text},
                     {"start_s", seconds(word.start_s)},
                     {"end_s", seconds(word.end_s)},
                     {"phones", std::move(phones)}});
  }
  nlohmann::ordered_json json = {{"text", sentence.text},
                                 {"topic", sentence.topic},
                                 {"start_s", seconds(sentence.start_s())},
                                 {"end_s", seconds(sentence.end_s())}};
  if (interview) json["speaker"] = sentence.speaker == Speaker::host ? "host" : "guest";
  json["words"] = std::move(words);
  return json;
}

bool is_interview(const SpokenVideo& video) { return !video.shots.empty(); }

// The hard sample's own fields: the guest, who speaks, the shots and who is in them, the music.
void add_interview_truth(nlohmann::ordered_json& truth, const SpokenVideo& video, const SampleOptions& options,
                         const std::string& guest_voice) {
  truth["guest"] = {{"face_image", options.guest_face.string()}, {"voice", guest_voice}};
  nlohmann::ordered_json shots = nlohmann::ordered_json::array();
  for (const Shot& shot : video.shots) {
    nlohmann::ordered_json on_screen = nlohmann::ordered_json::array();
    if (shot.kind == ShotKind::host || shot.kind == ShotKind::two_shot) on_screen.push_back("host");
    if (shot.kind == ShotKind::guest || shot.kind == ShotKind::two_shot) on_screen.push_back("guest");
    shots.push_back({{"start_frame", shot.start_frame},
                     {"end_frame", shot.end_frame},
                     {"kind", shot_kind_name(shot.kind)},
                     {"fade_frames", shot.fade_frames},
                     {"on_screen", std::move(on_screen)}});
  }
  truth["shots"] = std::move(shots);
  nlohmann::ordered_json music = nlohmann::ordered_json::array();
  for (const Interval& m : video.music) music.push_back({{"start_s", seconds(m.start_s)}, {"end_s", seconds(m.end_s)}});
  truth["music"] = std::move(music);
  nlohmann::ordered_json guest_phones = nlohmann::ordered_json::array();
  for (const Phone& phone : video.guest_phones) guest_phones.push_back(phone_json(phone));
  truth["guest_phones"] = std::move(guest_phones);
}

int64_t to_ms(double t) { return static_cast<int64_t>(std::llround(t * 1000)); }

std::string timestamp(int64_t ms) {
  return fmt::format("{:02d}:{:02d}:{:02d}.{:03d}", ms / 3600000, ms / 60000 % 60, ms / 1000 % 60, ms % 1000);
}

// A caption line: words said one after another, never across sentences.
using Line = std::vector<const Word*>;

std::vector<Line> caption_lines(const SpokenVideo& video) {
  std::vector<Line> lines;
  size_t chars = 0;
  for (const SpokenSentence& sentence : video.sentences) {
    for (size_t i = 0; i < sentence.words.size(); ++i) {
      const Word& word = sentence.words[i];
      if (lines.empty() || i == 0 || chars + 1 + word.text.size() > kMaxLineChars) {
        lines.emplace_back();
        chars = 0;
      } else {
        chars += 1;
      }
      lines.back().push_back(&word);
      chars += word.text.size();
    }
  }
  return lines;
}

std::string plain(const Line& line) {
  std::string text;
  for (const Word* word : line) {
    if (!text.empty()) text += ' ';
    text += escape_markup(word->text, false);
  }
  return text;
}

std::string timed(const Line& line) {
  std::string text = escape_markup(line.front()->text, false);
  for (size_t i = 1; i < line.size(); ++i) {
    text += fmt::format("<{}><c> {}</c>", timestamp(to_ms(line[i]->start_s)), escape_markup(line[i]->text, false));
  }
  return text;
}

std::string cue(int64_t start_ms, int64_t end_ms, const std::string& first, const std::string& second) {
  return fmt::format("{} --> {} align:start position:0%\n{}\n{}\n\n", timestamp(start_ms), timestamp(end_ms), first,
                     second);
}

}  // namespace

std::string video_file(const SpokenVideo& video) { return video.name + ".mp4"; }
std::string captions_file(const SpokenVideo& video) { return video.name + ".en.vtt"; }
std::string truth_file(const SpokenVideo& video) { return video.name + ".truth.json"; }

nlohmann::ordered_json truth_header(const SpokenVideo& video, const std::vector<Blink>& blinks,
                                    const SampleOptions& options, const Portrait& portrait,
                                    const std::string& guest_voice) {
  nlohmann::ordered_json sentences = nlohmann::ordered_json::array();
  for (const SpokenSentence& sentence : video.sentences) sentences.push_back(sentence_json(sentence, is_interview(video)));
  nlohmann::ordered_json phones = nlohmann::ordered_json::array();
  for (const Phone& phone : video.phones) phones.push_back(phone_json(phone));
  nlohmann::ordered_json blink_list = nlohmann::ordered_json::array();
  for (const Blink& blink : blinks)
    blink_list.push_back({{"start_s", seconds(blink.start_s)}, {"end_s", seconds(blink.end_s)}});
  nlohmann::ordered_json truth = {
      {"format", "dself-sample-truth"},
      {"version", 1},
      {"video", video_file(video)},
      {"captions", captions_file(video)},
      {"title", video.title},
      {"fps", kFps},
      {"width", options.size},
      {"height", options.size},
      {"sample_rate", kSampleRate},
      {"frame_count", video.frame_count},
      {"duration_s", seconds(video.duration_s())},
      {"voice", options.voice},
      {"face_image", options.face.string()},
      {"seed", options.seed},
      {"video_index", video.index},
      {"inter_ocular_px", round_to(portrait.inter_ocular_px, 100)},
      {"sentences", std::move(sentences)},
      {"phones", std::move(phones)},
      {"blinks", std::move(blink_list)},
  };
  if (is_interview(video)) add_interview_truth(truth, video, options, guest_voice);
  return truth;
}

TruthWriter::TruthWriter(const std::filesystem::path& path, const nlohmann::ordered_json& header)
    : staged_(path), out_(staged_.temporary(), std::ios::binary) {
  if (!out_) {
    throw EnvironmentError(
        fmt::format("cannot write {}: check the directory is writable", staged_.temporary().string()));
  }
  std::string text = header.dump(1);
  text.erase(text.find_last_of('}'));  // reopen the object to append the landmarks
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  out_ << text << ",\n \"landmarks\": [";
}

void TruthWriter::add_frame(const Landmarks& landmarks) {
  out_ << (frame_count_++ == 0 ? "\n  [" : ",\n  [");
  for (int i = 0; i < face::kLandmarkCount; ++i) {
    out_ << fmt::format("{}{:.2f},{:.2f}", i == 0 ? "" : ",", landmarks[i].x, landmarks[i].y);
  }
  out_ << "]";
}

void TruthWriter::add_frame(const OnScreen& on_screen) {
  interview_ = true;
  if (on_screen.host) {
    add_frame(*on_screen.host);
  } else {
    out_ << (frame_count_++ == 0 ? "\n  []" : ",\n  []");
  }
  guest_faces_ += guest_faces_.empty() ? "\n  " : ",\n  ";
  if (on_screen.guest) {
    cv::Point2f centre = face::centroid(*on_screen.guest, 0, face::kLandmarkCount);
    guest_faces_ += fmt::format("[{:.2f},{:.2f},{:.2f}]", centre.x, centre.y, face::inter_ocular_distance(*on_screen.guest));
  } else {
    guest_faces_ += "[]";
  }
}

void TruthWriter::commit() {
  out_ << "\n ]";
  if (interview_) out_ << ",\n \"guest_faces\": [" << guest_faces_ << "\n ]";
  out_ << "\n}\n";
  out_.close();
  if (!out_) {
    throw EnvironmentError(fmt::format("cannot write {}: check the disk has room", staged_.final_path().string()));
  }
  staged_.commit();
}

std::string youtube_vtt(const SpokenVideo& video) {
  std::string text = "WEBVTT\nKind: captions\nLanguage: en\n\n";
  std::vector<Line> lines = caption_lines(video);
  for (size_t i = 0; i < lines.size(); ++i) {
    int64_t start = to_ms(lines[i].front()->start_s);
    bool last = i + 1 == lines.size();
    int64_t next = last ? to_ms(lines[i].back()->end_s) : to_ms(lines[i + 1].front()->start_s);
    int64_t end = last ? next : std::max(start + 1, next - kLineChangeMs);
    // YouTube shows the line before above the one being said (a single space at the start).
    text += cue(start, end, i == 0 ? " " : plain(lines[i - 1]), timed(lines[i]));
    if (!last && end < next) text += cue(end, next, plain(lines[i]), " ");
  }
  return text;
}

std::string playlist_html(const std::string& title, const std::vector<SpokenVideo>& videos) {
  std::string page =
      fmt::format("<!DOCTYPE html><html><head><title>{0}</title></head><body><h1>{0}</h1>", escape_markup(title));
  for (const SpokenVideo& video : videos) {
    page += fmt::format(
        "<video controls src=\"{}\" title=\"{}\"><track kind=\"captions\" srclang=\"en\" label=\"English\" "
        "src=\"{}\"></video>",
        video_file(video), escape_markup(video.title), captions_file(video));
  }
  page += "</body></html>\n";
  return page;
}

std::string summary_json(const SampleOptions& options, const std::vector<SpokenVideo>& videos,
                         const std::string& guest_voice) {
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  for (const SpokenVideo& video : videos) {
    size_t words = 0;
    for (const SpokenSentence& sentence : video.sentences) words += sentence.words.size();
    list.push_back({{"title", video.title},
                    {"video", video_file(video)},
                    {"captions", captions_file(video)},
                    {"truth", truth_file(video)},
                    {"duration_s", seconds(video.duration_s())},
                    {"frame_count", video.frame_count},
                    {"sentence_count", video.sentences.size()},
                    {"word_count", words}});
  }
  nlohmann::ordered_json summary = {
      {"format", "dself-sample"},
      {"version", 1},
      {"options",
       {{"face", options.face.string()},
        {"voice", options.voice},
        {"minutes", options.minutes},
        {"videos", options.videos},
        {"seed", options.seed},
        {"size", options.size}}},
      {"playlist", "playlist.html"},
      {"videos", std::move(list)},
  };
  if (options.hard) {
    summary["options"]["hard"] = true;
    summary["options"]["guest_face"] = options.guest_face.string();
    summary["options"]["guest_voice"] = guest_voice;
  }
  return summary.dump(2) + "\n";
}

}  // namespace dself::sample
