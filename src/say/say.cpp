// `dself say`: split, say, animate, draw, write — one function per step.
#include "say/say.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include "core/catalog.h"
#include "core/error.h"
#include "core/fs.h"
#include "core/hash.h"
#include "core/workspace.h"
#include "media/media.h"

namespace dself::say {
namespace {

namespace fs = std::filesystem;

// The fallback voice's choice is kept in models/voice/fallback.json, keyed by the speech it was
// measured on, so that `say` does not measure the person's pitch every time.
//   {"format": "dself-fallback-voice", "version": 1, "input_hash", "voice",
//    "person_pitch": {"median_hz", "p10_hz", "p90_hz", "voiced_frames"}}
struct FallbackVoiceChoice {
  std::string voice;
  voice::PitchProfile pitch;
};

std::string speech_hash(const fs::path& avatar) {
  std::string all;
  if (fs::exists(workspace::speech_root(avatar))) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(workspace::speech_root(avatar))) {
      if (fs::exists(entry.path() / "utterances.json")) files.push_back(entry.path() / "utterances.json");
    }
    std::sort(files.begin(), files.end());
    for (const auto& file : files) all += file.filename().string() + hash_file(file);
  }
  return hash_bytes(all);
}

FallbackVoiceChoice choose_fallback_voice(const fs::path& avatar, const std::string& requested) {
  const fs::path path = workspace::model_dir(avatar, "voice") / "fallback.json";
  const std::string input_hash = speech_hash(avatar);
  FallbackVoiceChoice choice;
  bool cached = false;
  if (fs::exists(path)) {
    try {
      auto json = nlohmann::json::parse(read_file(path));
      if (json.value("input_hash", "") == input_hash) {
        choice.voice = json.at("voice").get<std::string>();
        const auto& p = json.at("person_pitch");
        choice.pitch = {p.at("median_hz"), p.at("p10_hz"), p.at("p90_hz"), p.at("voiced_frames")};
        cached = true;
      }
    } catch (const std::exception& e) {
      spdlog::warn("{} is unreadable ({}); measuring the person's pitch again", path.string(), e.what());
    }
  }
  if (!cached) {
    choice.pitch = voice::measure_avatar_pitch(avatar);
    choice.voice = voice::closest_espeak_voice(choice.pitch.median_hz);
    nlohmann::ordered_json json = {{"format", "dself-fallback-voice"},
                                   {"version", 1},
                                   {"input_hash", input_hash},
                                   {"voice", choice.voice},
                                   {"person_pitch",
                                    {{"median_hz", choice.pitch.median_hz},
                                     {"p10_hz", choice.pitch.p10_hz},
                                     {"p90_hz", choice.pitch.p90_hz},
                                     {"voiced_frames", choice.pitch.voiced_frame_count}}}};
    fs::create_directories(path.parent_path());
    write_file_atomic(path, json.dump(2) + "\n");
  }
  if (!requested.empty()) choice.voice = requested;
  return choice;
}

// Checks before any work that `out` can be written: the user learns at once, not after rendering.
void require_writable(const fs::path& out, const char* flag) {
  fs::path dir = out.parent_path().empty() ? fs::path(".") : out.parent_path();
  if (!fs::is_directory(dir)) {
    throw InputError(fmt::format("{} {}: the directory {} does not exist", flag, out.string(), dir.string()));
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    throw InputError(fmt::format("{} {}: the directory {} is not writable", flag, out.string(), dir.string()));
  }
  if (fs::is_directory(out)) throw InputError(fmt::format("{} {}: is a directory, give a file name", flag, out.string()));
}

// The person's trained voice, when there is one that loads; otherwise why the fallback speaks.
// A broken model never stops `say`: the fallback speaks and the reason is logged.
fs::path choose_trained_voice(const fs::path& avatar, const std::string& requested, std::string& fallback_reason) {
  const fs::path dir = workspace::model_dir(avatar, "voice");
  if (!requested.empty()) {
    fallback_reason = fmt::format("--voice {} asked for an espeak-ng voice", requested);
    return {};
  }
  if (!fs::exists(dir / "config.json")) {
    fallback_reason = "no trained voice yet: run `dself train voice`";
    return {};
  }
  try {
    voice::check_trained_voice(dir);  // a broken model is found before any work
  } catch (const std::exception& e) {
    fallback_reason = fmt::format("the trained voice cannot be used ({}): run `dself train voice --force`", describe(e));
    spdlog::warn("{}; speaking with the fallback voice", fallback_reason);
    return {};
  }
  return dir;
}

}  // namespace

std::shared_ptr<const Cast> load_cast(const SayOptions& options) {
  workspace::require_prepared(options.avatar);  // before any model loads
  auto cast = std::make_shared<Cast>();
  FallbackVoiceChoice voice = choose_fallback_voice(options.avatar, options.voice);
  cast->voice_name = voice.voice;
  cast->pitch = voice.pitch;
  cast->trained_voice = choose_trained_voice(options.avatar, options.voice, cast->fallback_reason);
  cast->motion = motion::learn_viseme_model(options.avatar);
  render::PhotorealOptions render_options;
  render_options.size = options.size;
  cast->renderer = render::load_photoreal_model(options.avatar, render_options);
  return cast;
}

std::unique_ptr<voice::Voice> make_voice(const Cast& cast) {
  if (!cast.trained_voice.empty()) return voice::make_trained_voice(cast.trained_voice);
  voice::EspeakOptions options;
  options.voice = cast.voice_name;
  options.target_pitch_hz = cast.pitch.median_hz;
  return voice::make_espeak_voice(options);
}

std::unique_ptr<motion::Motion> make_motion(const Cast& cast, const SayOptions& options) {
  motion::VisemeOptions motion_options;
  motion_options.seed = options.seed;
  return motion::make_viseme_motion(cast.motion, motion_options);
}

struct Performer::Impl {
  std::shared_ptr<const Cast> cast;
  SayOptions options;
  std::unique_ptr<voice::Voice> voice;
  std::unique_ptr<motion::Motion> motion;
  std::unique_ptr<render::Renderer> renderer;
  int sentence_count = 0;
  int frame_count = 0;
  int64_t sample_count = 0;
};

Performer::Performer(std::shared_ptr<const Cast> cast, const SayOptions& options) : impl_(std::make_unique<Impl>()) {
  impl_->cast = cast;
  impl_->options = options;
  impl_->voice = make_voice(*cast);
  impl_->motion = make_motion(*cast, options);
  impl_->renderer = render::make_photoreal_renderer(cast->renderer);
}

Performer::~Performer() = default;

const voice::Voice& Performer::voice() const { return *impl_->voice; }

double Performer::elapsed_s() const { return static_cast<double>(impl_->sample_count) / voice::kSampleRate; }

SentenceTake Performer::perform(std::string_view sentence, const FrameSink& on_frame, const SpeechSink& on_speech) {
  Impl& s = *impl_;
  SentenceTake take;
  take.index = s.sentence_count++;
  take.start_s = elapsed_s();
  take.first_frame = s.frame_count;
  take.speech = s.voice->say(sentence);

  // The pause after the sentence makes its audio a whole number of frames long, so every
  // sentence starts on a frame and audio and video never drift apart.
  const double samples_per_frame = voice::kSampleRate / s.options.fps;
  size_t speech_samples = take.speech.samples.size();
  size_t wanted = speech_samples + static_cast<size_t>(s.options.sentence_pause_s * voice::kSampleRate);
  int frames = static_cast<int>(std::ceil(wanted / samples_per_frame - 1e-9));
  size_t total = static_cast<size_t>(std::llround(frames * samples_per_frame));
  const double speech_end_s = static_cast<double>(speech_samples) / voice::kSampleRate;
  take.speech.samples.resize(total, 0.0f);
  if (total > speech_samples) {
    double end_s = static_cast<double>(total) / voice::kSampleRate;
    if (!take.speech.phones.empty() && take.speech.phones.back().phone == "sil") {
      take.speech.phones.back().end_s = end_s;
    } else {
      take.speech.phones.push_back({"sil", speech_end_s, end_s});
    }
  }

  take.frame_count = frames;
  if (on_speech) on_speech(take);

  std::vector<motion::FacePose> poses =
      s.motion->animate(take.speech.phones, take.speech.samples, take.speech.duration_s(), s.options.fps);
  poses.resize(frames, poses.empty() ? motion::FacePose{motion::rest_face(*s.cast->motion), {}} : poses.back());
  for (const auto& pose : poses) {
    const cv::Mat& frame = s.renderer->render(pose);
    if (on_frame) on_frame(s.frame_count, frame);
    ++s.frame_count;
  }
  s.sample_count += static_cast<int64_t>(total);
  return take;
}

namespace {

// A small, legible mark in the lower right corner that says the picture is synthetic (DESIGN.md §7:
// a digital self never passes for the person): white capitals on a dark box, about 3% of the
// frame's height, away from the face.
void draw_synthetic_mark(cv::Mat& frame) {
  const std::string label = "SYNTHETIC";
  const double scale = std::max(0.3, frame.rows / 512.0 * 0.42);
  const int thickness = std::max(1, static_cast<int>(std::lround(scale * 2)));
  int baseline = 0;
  const cv::Size size = cv::getTextSize(label, cv::FONT_HERSHEY_SIMPLEX, scale, thickness, &baseline);
  const int pad = std::max(3, size.height / 3);
  const int margin = std::max(4, frame.rows / 64);
  const cv::Rect box(frame.cols - margin - size.width - 2 * pad, frame.rows - margin - size.height - baseline - 2 * pad,
                     size.width + 2 * pad, size.height + baseline + 2 * pad);
  cv::Mat area = frame(box & cv::Rect(0, 0, frame.cols, frame.rows));
  area *= 0.35;  // darken what is under the label, so that it reads on any background
  cv::putText(frame, label, cv::Point(box.x + pad, box.y + pad + size.height), cv::FONT_HERSHEY_SIMPLEX, scale,
              cv::Scalar(255, 255, 255), thickness, cv::LINE_AA);
}

}  // namespace

SayResult say(std::string_view text, const fs::path& out, const fs::path& wav, const SayOptions& options) {
  return say(text, out, wav, options, nullptr);
}

SayResult say(std::string_view text, const fs::path& out, const fs::path& wav, const SayOptions& options,
              std::shared_ptr<const Cast> cast) {
  std::vector<std::string> sentences = voice::split_sentences(text);
  if (sentences.empty()) {
    throw InputError("nothing to say: the text has no words (only whitespace or punctuation)");
  }
  if (out.extension() != ".mp4") throw InputError(fmt::format("-o {}: the output must be an .mp4 file", out.string()));
  require_writable(out, "-o");
  if (!wav.empty()) require_writable(wav, "--wav");
  if (options.size < 64 || options.size > 2048 || options.size % 2 != 0) {
    throw InputError(fmt::format("--size {}: give an even number of pixels from 64 to 2048", options.size));
  }

  if (!cast) cast = load_cast(options);
  Performer performer(cast, options);
  media::EncoderOptions encoder;
  encoder.width = encoder.height = options.size;
  encoder.fps = options.fps;
  encoder.audio_input_rate = voice::kSampleRate;
  encoder.metadata = {{"comment", "synthetic: made by dself say; not a recording of the person"},
                      {"description", fmt::format("synthetic video; voice: {}", performer.voice().name())}};
  media::VideoWriter writer(out, encoder);
  std::unique_ptr<media::WavWriter> wav_writer;
  if (!wav.empty()) wav_writer = std::make_unique<media::WavWriter>(wav, voice::kSampleRate);

  SayResult result;
  Progress progress("say", static_cast<int64_t>(sentences.size()), "sentences", options.progress);
  for (size_t i = 0; i < sentences.size(); ++i) {
    stop_if_requested(options.should_stop, "say");
    cv::Mat marked;
    SentenceTake take = performer.perform(sentences[i], [&](int, const cv::Mat& frame) {
      stop_if_requested(options.should_stop, "say");
      if (!options.synthetic_mark) {
        writer.write_frame(frame);
        return;
      }
      frame.copyTo(marked);
      draw_synthetic_mark(marked);
      writer.write_frame(marked);
    });
    writer.write_audio(take.speech.samples);
    if (wav_writer) wav_writer->write(take.speech.samples);
    progress.advance();
  }
  writer.finish();
  if (wav_writer) wav_writer->finish();
  result.video = out;
  result.duration_s = performer.elapsed_s();
  result.sentence_count = static_cast<int>(sentences.size());
  result.frame_count = static_cast<int>(std::llround(result.duration_s * options.fps));
  result.voice_name = performer.voice().name();
  return result;
}

}  // namespace dself::say
