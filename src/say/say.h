// `dself say`: text -> a video of the person saying it (DESIGN.md §1, use). One step per stage:
// split the text into sentences, say each (voice), move the face with it (motion), draw every
// frame (renderer), and write audio and frames as they come. The same Performer streams
// sentence by sentence to the live server.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <opencv2/core.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "core/progress.h"
#include "motion/motion.h"
#include "render/render.h"
#include "voice/voice.h"

namespace dself::say {

struct SayOptions {
  std::filesystem::path avatar = "avatar";
  int size = 512;            // output frame width = height, pixels
  double fps = 25;           // output frames per second
  std::string voice;         // espeak-ng voice name: speak with it instead of the person's trained voice;
                             // empty: the trained voice when there is one, else the espeak-ng voice
                             // closest to the person's pitch
  double sentence_pause_s = 0.25;  // silence between sentences
  bool synthetic_mark = true;      // say(): a small "SYNTHETIC" mark in the picture's lower right corner
  uint64_t seed = 1;         // which of the person's head motions and blinks are used
  ProgressSink progress;     // say(): sentences done (besides the display)
  // say(): asked between sentences and frames; when it says so, the partial output is removed
  // and say() throws Stopped.
  StopRequested should_stop;
};

// What a performance is made of, loaded once per avatar and shared (read-only) by every stream.
struct Cast {
  std::shared_ptr<const motion::VisemeModel> motion;
  std::shared_ptr<const render::PhotorealModel> renderer;
  voice::PitchProfile pitch;
  std::string voice_name;  // the espeak-ng voice picked for the person (the fallback)
  std::filesystem::path trained_voice;  // models/voice when the person's trained voice is used; empty: fallback
  std::string fallback_reason;          // why the fallback speaks when it does ("no trained voice yet", ...)
};

// A voice and a motion stream on the cast (each stream needs its own; neither is thread-safe). The
// voice is the person's trained one when the cast has it, else the espeak-ng fallback.
std::unique_ptr<voice::Voice> make_voice(const Cast& cast);
std::unique_ptr<motion::Motion> make_motion(const Cast& cast, const SayOptions& options);

// Loads (or builds and keeps) the avatar's models. Throws InputError naming the `prepare` step to
// run when the avatar is not prepared.
std::shared_ptr<const Cast> load_cast(const SayOptions& options);

// One sentence performed: its speech and its frames, timed from the performance's start.
struct SentenceTake {
  int index = 0;         // 0, 1, ... in the performance
  double start_s = 0;    // where its audio starts in the performance
  voice::Utterance speech;
  int first_frame = 0;   // the frame index (in the performance) of its first frame
  int frame_count = 0;   // its frames: the speech and the pause after it
};

using FrameSink = std::function<void(int frame_index, const cv::Mat& frame_bgr)>;
// Called with a sentence's speech (and its timing) once it is said, before its frames are drawn,
// so that a live client can start playing it at once.
using SpeechSink = std::function<void(const SentenceTake& take)>;

// A stream of sentences, each said, animated and drawn as it comes: a voice, a motion stream and
// a renderer of its own on a shared Cast. Not thread-safe: one Performer per stream.
class Performer {
 public:
  Performer(std::shared_ptr<const Cast> cast, const SayOptions& options);
  ~Performer();
  // Says, animates and draws one sentence: its speech goes to `on_speech` as soon as it is said,
  // then each frame to `on_frame` as soon as it is drawn. Frames cover the speech and the pause
  // after it, so audio and video stay in step.
  SentenceTake perform(std::string_view sentence, const FrameSink& on_frame, const SpeechSink& on_speech = {});
  const voice::Voice& voice() const;
  double elapsed_s() const;  // the performance's length so far

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct SayResult {
  std::filesystem::path video;
  double duration_s = 0;
  int sentence_count = 0;
  int frame_count = 0;
  std::string voice_name;
};

// Writes `out` (MP4: H.264 + AAC, metadata marking it synthetic) and, when `wav` is not empty,
// the speech as 16 kHz WAV. Sentence by sentence: memory stays flat however long the text.
// Throws InputError for text with nothing to say, an unwritable output, an unprepared avatar.
SayResult say(std::string_view text, const std::filesystem::path& out, const std::filesystem::path& wav,
              const SayOptions& options);
// The same on a cast already loaded (the server's, shared with its live sessions): nothing is
// loaded again. The cast must have been loaded with the same options' size.
SayResult say(std::string_view text, const std::filesystem::path& out, const std::filesystem::path& wav,
              const SayOptions& options, std::shared_ptr<const Cast> cast);

// `dself eval say`: lip sync by re-detection on rendered frames, self-reenactment PSNR/SSIM,
// and (with `truth_dir`, a sample person's --out) the motion's landmark distance to the truth.
nlohmann::json evaluate(const SayOptions& options, const std::filesystem::path& truth_dir = {});

}  // namespace dself::say
