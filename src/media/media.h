// Media I/O on the FFmpeg libraries: probe, decode audio and video (streaming), encode MP4.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

namespace dself::media {

// What a media file holds.
struct MediaInfo {
  std::string container;    // e.g. "mov,mp4,m4a,3gp,3g2,mj2"
  double duration_s = 0;
  bool has_video = false;
  bool has_audio = false;
  std::string video_codec;  // e.g. "h264"
  int width = 0;
  int height = 0;
  double fps = 0;
  int64_t frame_count = 0;  // estimated from duration and fps when the container does not say
  std::string audio_codec;  // e.g. "aac"
  int sample_rate = 0;
  int channels = 0;
  std::map<std::string, std::string> tags;  // container metadata, e.g. {"comment", "synthetic"}
};

// Probes a file. Throws InputError for a missing file or one that is not media.
MediaInfo probe(const std::filesystem::path& path);

// Decodes the first audio stream to mono float PCM at sample_rate, calling on_chunk with
// consecutive blocks (memory flat in file length). Sample n is at n / sample_rate seconds from
// the file's start, the clock of VideoFrame::time_s. Throws InputError when there is no audio
// stream, and for corrupt or truncated data (naming the time it happened at).
void decode_audio(const std::filesystem::path& path, int sample_rate,
                  const std::function<void(std::span<const float> samples)>& on_chunk);

// Convenience: the whole audio track at sample_rate (for short files and tests).
std::vector<float> decode_audio(const std::filesystem::path& path, int sample_rate = 16000);

// Mono samples from from_rate to to_rate (libswresample's windowed-sinc filter, which low-passes
// below the lower Nyquist frequency). Output sample n is at n / to_rate seconds, as in the input's
// clock; the output has round(size * to_rate / from_rate) samples.
std::vector<float> resample(std::span<const float> mono, int from_rate, int to_rate);

// Writes mono samples in [-1, 1] as a 16-bit PCM WAV file, atomically (temporary name, rename).
void write_wav(const std::filesystem::path& path, std::span<const float> mono, int sample_rate);

// The same, chunk by chunk (memory stays flat however long the audio): the file appears under its
// final name only when finish() succeeds.
class WavWriter {
 public:
  WavWriter(const std::filesystem::path& path, int sample_rate);  // throws EnvironmentError
  ~WavWriter();
  WavWriter(const WavWriter&) = delete;
  WavWriter& operator=(const WavWriter&) = delete;

  void write(std::span<const float> mono);
  void finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct VideoFrame {
  cv::Mat bgr;        // 8-bit BGR
  double time_s = 0;  // presentation time, seconds from the file's start
  int64_t index = 0;  // 0-based position in decode order
};

// Reads video frames one at a time. Throws InputError when there is no video stream.
class VideoReader {
 public:
  explicit VideoReader(const std::filesystem::path& path);
  ~VideoReader();
  VideoReader(const VideoReader&) = delete;
  VideoReader& operator=(const VideoReader&) = delete;

  const MediaInfo& info() const;
  // Next frame into `frame`; false at the end. Throws InputError on corrupt data (with time).
  bool read(VideoFrame& frame);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct EncoderOptions {
  int width = 512;                   // pixels; must be even (yuv420p)
  int height = 512;
  double fps = 25;                   // frames per second
  int crf = 20;                      // x264 quality (lower is better, 18-28 sensible)
  std::string preset = "veryfast";   // x264 speed preset
  int audio_input_rate = 16000;      // Hz of the mono float samples given to write_audio
  int audio_output_rate = 48000;     // Hz of the AAC stream
  int audio_bitrate = 128000;        // bits per second
  bool with_audio = true;
  std::map<std::string, std::string> metadata;  // container tags, e.g. {"comment", "synthetic"}
};

// Writes an MP4 (H.264 yuv420p + AAC, faststart). The file appears under its final name only
// when finish() succeeds; an abandoned writer leaves nothing behind.
class VideoWriter {
 public:
  VideoWriter(const std::filesystem::path& path, const EncoderOptions& options);
  ~VideoWriter();
  VideoWriter(const VideoWriter&) = delete;
  VideoWriter& operator=(const VideoWriter&) = delete;

  void write_frame(const cv::Mat& bgr);                // width x height, 8-bit BGR
  void write_audio(std::span<const float> mono);       // at audio_input_rate, in [-1, 1]
  void finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace dself::media
