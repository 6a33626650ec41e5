#include "sample/sample.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <optional>

#include "core/error.h"
#include "core/fs.h"
#include "core/progress.h"
#include "face/face.h"
#include "media/media.h"
#include "sample/detail/interview.h"
#include "sample/detail/monologue.h"
#include "sample/detail/motion.h"
#include "sample/detail/outputs.h"
#include "sample/detail/portrait.h"
#include "sample/detail/render.h"
#include "sample/detail/script.h"
#include "sample/detail/speech.h"

namespace dself::sample {

namespace {

constexpr double kMaxMinutes = 600;
constexpr double kMinVideoSeconds = 5;  // about one sentence
constexpr int kMaxVideos = 1000;
constexpr int kMinSize = 128;
constexpr int kMaxSize = 2048;
const char* const kPlaylistTitle = "dself sample person";

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

void check_options(const SampleOptions& options) {
  if (options.out.empty()) throw InputError("sample needs --out DIR: the directory to write the videos into");
  if (!(options.minutes > 0 && options.minutes <= kMaxMinutes)) {
    throw InputError(
        fmt::format("--minutes {} is out of range: give more than 0 and at most {}", options.minutes, kMaxMinutes));
  }
  if (options.videos < 1 || options.videos > kMaxVideos) {
    throw InputError(fmt::format("--videos {} is out of range: give 1 to {}", options.videos, kMaxVideos));
  }
  double per_video_s = options.minutes * 60 / options.videos;
  if (per_video_s < kMinVideoSeconds) {
    throw InputError(
        fmt::format("--minutes {} over --videos {} gives {:.1f} s per video; each needs at least {} s: "
                    "give fewer videos or more minutes",
                    options.minutes, options.videos, per_video_s, kMinVideoSeconds));
  }
  if (options.size < kMinSize || options.size > kMaxSize || options.size % 2 != 0) {
    throw InputError(fmt::format("--size {} is not usable: give an even number of pixels from {} to {}", options.size,
                                 kMinSize, kMaxSize));
  }
}

void create_output_dir(const std::filesystem::path& out) {
  std::error_code ec;
  if (std::filesystem::exists(out, ec) && !std::filesystem::is_directory(out, ec)) {
    throw InputError(fmt::format("--out {} exists and is not a directory", out.string()));
  }
  std::filesystem::create_directories(out, ec);
  if (ec) {
    throw EnvironmentError(fmt::format("cannot create the directory {} (--out): {}", out.string(), ec.message()));
  }
}

int64_t total_frames(const std::vector<SpokenVideo>& videos) {
  int64_t frames = 0;
  for (const SpokenVideo& video : videos) frames += video.frame_count;
  return frames;
}

media::EncoderOptions encoder_options(const SampleOptions& options, const SpokenVideo& video) {
  media::EncoderOptions encoder;
  encoder.width = options.size;
  encoder.height = options.size;
  encoder.fps = kFps;
  encoder.audio_input_rate = kSampleRate;
  encoder.metadata = {{"comment", "synthetic: dself sample person"}, {"title", video.title}};
  return encoder;
}

// Where a video and its captions and truth go, and what it holds.
SampleVideo planned_video(const SpokenVideo& video, const SampleOptions& options) {
  return {options.out / video_file(video), options.out / captions_file(video), options.out / truth_file(video),
          video.title, video.duration_s(), video.frame_count};
}

// Renders one video frame by frame: motion, picture, sound, truth; the MP4 and the truth JSON
// appear under their names only once complete.
SampleVideo render_video(const SpokenVideo& video, const Portrait& portrait, Renderer& renderer, const Voice& voice,
                         const SampleOptions& options, Progress& progress, SampleResult& result) {
  Motion motion(portrait, video.phones, video.duration_s(), options.seed, video.index);
  SpeechTrack speech(video, voice);
  SampleVideo made = planned_video(video, options);
  media::VideoWriter writer(made.video, encoder_options(options, video));
  TruthWriter truth(made.truth, truth_header(video, motion.blinks(), options, portrait));
  for (int64_t frame = 0; frame < video.frame_count; ++frame) {
    auto start = Clock::now();
    std::span<const float> audio = speech.next(kSamplesPerFrame);
    auto rendering = Clock::now();
    Pose pose = motion.at_frame(frame);
    const cv::Mat& image = renderer.render(pose);
    auto encoding = Clock::now();
    writer.write_frame(image);
    writer.write_audio(audio);
    result.speech_s += std::chrono::duration<double>(rendering - start).count();
    result.render_s += std::chrono::duration<double>(encoding - rendering).count();
    result.encode_s += seconds_since(encoding);
    truth.add_frame(pose.landmarks);
    progress.advance();
  }
  auto finishing = Clock::now();
  writer.finish();
  result.encode_s += seconds_since(finishing);
  truth.commit();
  return made;
}

// The guest of the hard sample and everything drawn from their portrait.
struct Guest {
  Voice voice;
  Portrait portrait;
};

// The hard sample's video: both people move, the compositor frames them shot by shot, music
// goes under the intro.
SampleVideo render_interview(const SpokenVideo& video, const Portrait& portrait, Compositor& compositor,
                             const Voice& voice, const Guest& guest, const SampleOptions& options, Progress& progress,
                             SampleResult& result) {
  Motion host_motion(portrait, video.phones, video.duration_s(), options.seed, video.index);
  Motion guest_motion(guest.portrait, video.guest_phones, video.duration_s(), options.seed ^ 0x9e57ull,
                      video.index);
  SpeechTrack speech(video, voice, &guest.voice);
  MusicBed music(video, options.seed);
  SampleVideo made = planned_video(video, options);
  media::VideoWriter writer(made.video, encoder_options(options, video));
  TruthWriter truth(made.truth, truth_header(video, host_motion.blinks(), options, portrait, guest.voice.name()));
  std::vector<float> audio;
  for (int64_t frame = 0; frame < video.frame_count; ++frame) {
    auto start = Clock::now();
    std::span<const float> speech_chunk = speech.next(kSamplesPerFrame);
    audio.assign(speech_chunk.begin(), speech_chunk.end());
    music.mix(audio, frame * kSamplesPerFrame);
    auto rendering = Clock::now();
    Pose host_pose = host_motion.at_frame(frame);
    Pose guest_pose = guest_motion.at_frame(frame);
    OnScreen on_screen;
    const cv::Mat& image = compositor.frame(video, frame, host_pose, guest_pose, on_screen);
    auto encoding = Clock::now();
    writer.write_frame(image);
    writer.write_audio(audio);
    result.speech_s += std::chrono::duration<double>(rendering - start).count();
    result.render_s += std::chrono::duration<double>(encoding - rendering).count();
    result.encode_s += seconds_since(encoding);
    truth.add_frame(on_screen);
    progress.advance();
  }
  auto finishing = Clock::now();
  writer.finish();
  result.encode_s += seconds_since(finishing);
  truth.commit();
  return made;
}

std::string guest_voice_name(const SampleOptions& options) {
  if (!options.guest_voice.empty()) return options.guest_voice;
  return options.voice == "slt" ? "awb" : "slt";
}

void write_captions(const SpokenVideo& video, const std::filesystem::path& out) {
  write_file_atomic(out / captions_file(video), youtube_vtt(video));
}

}  // namespace

SampleResult make_sample(const SampleOptions& options) {
  auto start = Clock::now();
  SampleResult result;
  check_options(options);
  Voice voice(options.voice);
  cv::Mat image = read_portrait(options.face);
  face::FaceDetector detector;
  Portrait portrait = steadiest_framing(frame_portrait(image, options.face, options.size, detector), detector);

  std::optional<Guest> guest;
  if (options.hard) {
    if (guest_voice_name(options) == options.voice) {
      throw InputError(fmt::format("--guest-voice {} is the host's --voice: the guest needs a voice of their own",
                                   options.voice));
    }
    cv::Mat guest_image = read_portrait(options.guest_face);
    guest.emplace(Guest{Voice(guest_voice_name(options)),
                        steadiest_framing(frame_portrait(guest_image, options.guest_face, options.size, detector), detector)});
  }

  auto speaking = Clock::now();
  std::vector<SpokenVideo> videos = plan_videos(parse_monologue(monologue_text()), voice, options.videos,
                                                options.minutes * 60 / options.videos, options.seed);
  if (guest) {
    for (SpokenVideo& video : videos) video = interview_video(video, voice, guest->voice, options.seed);
  }
  result.speech_s += seconds_since(speaking);

  create_output_dir(options.out);
  Renderer renderer(portrait);
  std::optional<Compositor> compositor;
  if (guest) compositor.emplace(portrait, guest->portrait, options.seed);
  Progress progress("sample: render", total_frames(videos), "frames");
  for (const SpokenVideo& video : videos) {
    if (guest) {
      result.videos.push_back(
          render_interview(video, portrait, *compositor, voice, *guest, options, progress, result));
    } else {
      result.videos.push_back(render_video(video, portrait, renderer, voice, options, progress, result));
    }
    write_captions(video, options.out);
  }
  progress.finish();
  result.playlist = options.out / "playlist.html";
  write_file_atomic(result.playlist, playlist_html(kPlaylistTitle, videos));
  write_file_atomic(options.out / "sample.json", summary_json(options, videos, guest ? guest->voice.name() : ""));
  result.total_s = seconds_since(start);
  return result;
}

}  // namespace dself::sample
