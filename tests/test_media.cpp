// Media I/O: encode synthetic video + audio, decode it back, and check timing, quality and
// the errors for bad inputs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <numbers>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "core/error.h"
#include "media/media.h"
#include "support.h"

namespace dself::media {
namespace {

namespace fs = std::filesystem;

constexpr int audio_rate = 16000;  // the rate the pipeline feeds to VideoWriter
constexpr double fps = 25;
constexpr int n_frames = 50;  // 2 s
constexpr double burst_start_s = 0.700;
constexpr double burst_length_s = 0.100;

// 0..255..0 with period 512: a gradient without the hard edge of a wrap-around.
uint8_t triangle(int v) {
  v %= 512;
  return static_cast<uint8_t>(v < 256 ? v : 511 - v);
}

// Frame i of a moving pattern: a diagonal gradient that scrolls, a bouncing disc, a bar.
cv::Mat synthetic_frame(int width, int height, int i) {
  cv::Mat frame(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    auto* row = frame.ptr<cv::Vec3b>(y);
    for (int x = 0; x < width; ++x) {
      row[x] = cv::Vec3b(triangle(x + 3 * i), triangle(y + 2 * i), triangle((x + y) / 2 + 5 * i));
    }
  }
  cv::Point centre(width / 2 + static_cast<int>(width / 4 * std::sin(i * 0.2)),
                   height / 2 + static_cast<int>(height / 4 * std::cos(i * 0.15)));
  cv::circle(frame, centre, height / 8, cv::Scalar(30, 200, 240), cv::FILLED, cv::LINE_AA);
  cv::rectangle(frame, cv::Rect((i * 7) % width, height / 5, width / 16, height / 3), cv::Scalar(250, 250, 250),
                cv::FILLED);
  return frame;
}

// 2 s of audio: silence with a 1 kHz tone burst at a known time, so that decoded audio can be
// checked for alignment (AAC's priming delay must be undone on decode).
std::vector<float> synthetic_audio(double seconds) {
  std::vector<float> samples(static_cast<size_t>(seconds * audio_rate), 0.0f);
  for (size_t n = 0; n < samples.size(); ++n) {
    double t = static_cast<double>(n) / audio_rate;
    if (t >= burst_start_s && t < burst_start_s + burst_length_s) {
      samples[n] = static_cast<float>(0.5 * std::sin(2 * std::numbers::pi * 1000 * t));
    }
  }
  return samples;
}

// Time of the first sample whose magnitude reaches half the burst's amplitude.
double onset_s(const std::vector<float>& samples, int rate) {
  for (size_t n = 0; n < samples.size(); ++n) {
    if (std::abs(samples[n]) >= 0.25f) return static_cast<double>(n) / rate;
  }
  return -1;
}

struct Encoded {
  fs::path path;
  std::vector<cv::Mat> frames;
};

Encoded encode_sample(const fs::path& path, int width, int height, bool with_audio = true,
                      std::map<std::string, std::string> metadata = {}) {
  EncoderOptions options;
  options.width = width;
  options.height = height;
  options.fps = fps;
  options.crf = 18;
  options.with_audio = with_audio;
  options.metadata = std::move(metadata);
  VideoWriter writer(path, options);
  Encoded encoded{path, {}};
  std::vector<float> audio = synthetic_audio(n_frames / fps);
  const size_t per_frame = audio.size() / n_frames;
  for (int i = 0; i < n_frames; ++i) {
    encoded.frames.push_back(synthetic_frame(width, height, i));
    writer.write_frame(encoded.frames.back());
    // Interleaved in uneven pieces, as a renderer hands them over.
    if (with_audio) writer.write_audio(std::span<const float>(audio).subspan(i * per_frame, per_frame));
  }
  writer.finish();
  return encoded;
}

std::string error_text(const std::function<void()>& action) {
  try {
    action();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError thrown)";
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

class RoundTrip : public ::testing::TestWithParam<cv::Size> {};

TEST_P(RoundTrip, FramesTimesQualityAndAudioAlignment) {
  test::TempDir dir;
  const cv::Size size = GetParam();
  Encoded encoded = encode_sample(dir / "clip.mp4", size.width, size.height);

  VideoReader reader(encoded.path);
  EXPECT_EQ(reader.info().width, size.width);
  VideoFrame frame;
  int64_t count = 0;
  double worst_psnr = 1e9;
  cv::Mat kept;  // shares the first frame's pixels, as a caller keeping frames would
  cv::Mat kept_copy;
  while (reader.read(frame)) {
    if (count == 0) {
      kept = frame.bgr;
      kept_copy = frame.bgr.clone();
    }
    ASSERT_LT(count, n_frames);
    EXPECT_EQ(frame.index, count);
    EXPECT_NEAR(frame.time_s, count / fps, 1e-6) << "frame " << count;
    ASSERT_EQ(frame.bgr.type(), CV_8UC3);
    ASSERT_EQ(frame.bgr.size(), size);
    worst_psnr = std::min(worst_psnr, cv::PSNR(frame.bgr, encoded.frames[count]));
    ++count;
  }
  EXPECT_EQ(count, n_frames);
  EXPECT_EQ(cv::norm(kept, kept_copy, cv::NORM_INF), 0) << "a later read overwrote a frame the caller kept";
  EXPECT_GT(worst_psnr, 33.0) << "at crf 18";

  for (int rate : {16000, 48000}) {
    std::vector<float> audio = decode_audio(encoded.path, rate);
    const double expected = n_frames / fps * rate;
    const double aac_frame = 1024.0 / 48000 * rate;
    EXPECT_NEAR(static_cast<double>(audio.size()), expected, aac_frame) << rate << " Hz";
    EXPECT_NEAR(onset_s(audio, rate), burst_start_s, 0.003) << rate << " Hz";
    // Silence before the burst stays (near) silent: no garbage, no shifted copy.
    float early_peak = 0;
    for (size_t n = 0; n < static_cast<size_t>(0.6 * rate); ++n) early_peak = std::max(early_peak, std::abs(audio[n]));
    EXPECT_LT(early_peak, 0.01f) << rate << " Hz";
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, RoundTrip, ::testing::Values(cv::Size(512, 512), cv::Size(320, 240)),
                         [](const auto& info) {
                           return std::to_string(info.param.width) + "x" + std::to_string(info.param.height);
                         });

TEST(Media, ProbeDescribesTheEncodedFile) {
  test::TempDir dir;
  Encoded encoded = encode_sample(dir / "clip.mp4", 320, 240, true, {{"comment", "synthetic: made by dself"}});
  MediaInfo info = probe(encoded.path);
  EXPECT_NE(info.container.find("mp4"), std::string::npos);
  EXPECT_TRUE(info.has_video);
  EXPECT_TRUE(info.has_audio);
  EXPECT_EQ(info.video_codec, "h264");
  EXPECT_EQ(info.audio_codec, "aac");
  EXPECT_EQ(info.width, 320);
  EXPECT_EQ(info.height, 240);
  EXPECT_NEAR(info.fps, fps, 1e-6);
  EXPECT_EQ(info.frame_count, n_frames);
  EXPECT_NEAR(info.duration_s, n_frames / fps, 0.03);
  EXPECT_EQ(info.sample_rate, 48000);
  EXPECT_EQ(info.channels, 1);
  EXPECT_EQ(info.tags["comment"], "synthetic: made by dself");
}

TEST(Media, CustomMetadataKeysAreKept) {
  test::TempDir dir;
  Encoded encoded = encode_sample(dir / "clip.mp4", 320, 240, false, {{"title", "hello"}, {"dself_synthetic", "1"}});
  MediaInfo info = probe(encoded.path);
  EXPECT_EQ(info.tags["title"], "hello");
  EXPECT_EQ(info.tags["dself_synthetic"], "1");
}

TEST(Media, NtscFrameRateAndNoAudioWritten) {
  test::TempDir dir;
  EncoderOptions options;
  options.width = 160;
  options.height = 120;
  options.fps = 30000.0 / 1001;
  const fs::path path = dir / "ntsc.mp4";
  {
    VideoWriter writer(path, options);
    for (int i = 0; i < 30; ++i) writer.write_frame(synthetic_frame(160, 120, i));
    writer.finish();  // with_audio but no samples given: silence as long as the video
  }
  MediaInfo info = probe(path);
  EXPECT_NEAR(info.fps, 30000.0 / 1001, 1e-3);
  EXPECT_EQ(info.frame_count, 30);
  VideoReader reader(path);
  VideoFrame frame;
  int64_t count = 0;
  while (reader.read(frame)) {
    EXPECT_NEAR(frame.time_s, count * 1001.0 / 30000, 1e-4) << "frame " << count;
    ++count;
  }
  EXPECT_EQ(count, 30);
  std::vector<float> audio = decode_audio(path, 16000);
  EXPECT_NEAR(static_cast<double>(audio.size()), 30 * 1001.0 / 30000 * 16000, 1024.0 / 3);
  EXPECT_EQ(*std::max_element(audio.begin(), audio.end()), 0.0f);
}

TEST(Media, SameInputGivesTheSameBytes) {
  test::TempDir dir;
  encode_sample(dir / "a.mp4", 320, 240);
  encode_sample(dir / "b.mp4", 320, 240);
  EXPECT_TRUE(read_bytes(dir / "a.mp4") == read_bytes(dir / "b.mp4"));
}

TEST(Media, VideoOnlyFile) {
  test::TempDir dir;
  Encoded encoded = encode_sample(dir / "silent.mp4", 320, 240, false);
  MediaInfo info = probe(encoded.path);
  EXPECT_TRUE(info.has_video);
  EXPECT_FALSE(info.has_audio);
  std::string message = error_text([&] { decode_audio(encoded.path); });
  EXPECT_NE(message.find("silent.mp4"), std::string::npos) << message;
  EXPECT_NE(message.find("has no audio stream"), std::string::npos) << message;

  EncoderOptions options;
  options.with_audio = false;
  VideoWriter writer(dir / "other.mp4", options);
  std::vector<float> audio(100);
  EXPECT_THROW(writer.write_audio(audio), Error);
}

TEST(Media, MissingFile) {
  test::TempDir dir;
  const fs::path path = dir / "nowhere.mp4";
  for (const auto& action : std::vector<std::function<void()>>{[&] { probe(path); }, [&] { decode_audio(path); },
                                                               [&] { VideoReader reader(path); }}) {
    std::string message = error_text(action);
    EXPECT_NE(message.find("nowhere.mp4"), std::string::npos) << message;
    EXPECT_NE(message.find("does not exist"), std::string::npos) << message;
  }
}

TEST(Media, TextFileNamedMp4) {
  test::TempDir dir;
  const fs::path path = dir / "notes.mp4";
  write_bytes(path, "These are my notes, not a video.\nSecond line.\n");
  for (const auto& action : std::vector<std::function<void()>>{[&] { probe(path); }, [&] { decode_audio(path); },
                                                               [&] { VideoReader reader(path); }}) {
    std::string message = error_text(action);
    EXPECT_NE(message.find("notes.mp4"), std::string::npos) << message;
    EXPECT_NE(message.find("is not a video or audio file FFmpeg can read"), std::string::npos) << message;
  }
  write_bytes(dir / "empty.mp4", "");
  EXPECT_NE(error_text([&] { probe(dir / "empty.mp4"); }).find("empty.mp4 is empty"), std::string::npos);
}

// Top-level MP4 boxes ("atoms") as (type, bytes).
std::vector<std::pair<std::string, std::string>> mp4_boxes(const std::string& bytes) {
  std::vector<std::pair<std::string, std::string>> boxes;
  size_t at = 0;
  while (at + 8 <= bytes.size()) {
    uint64_t size = 0;
    for (int k = 0; k < 4; ++k) size = (size << 8) | static_cast<uint8_t>(bytes[at + k]);
    if (size < 8 || at + size > bytes.size()) break;
    boxes.emplace_back(bytes.substr(at + 4, 4), bytes.substr(at, size));
    at += size;
  }
  return boxes;
}

TEST(Media, TruncatedMp4WithoutIndex) {
  // A recording cut off before its index (moov, written last without faststart) was written.
  test::TempDir dir;
  Encoded encoded = encode_sample(dir / "clip.mp4", 320, 240);
  std::string truncated;
  for (const auto& [type, box] : mp4_boxes(read_bytes(encoded.path))) {
    if (type == "moov") continue;
    truncated += type == "mdat" ? box.substr(0, box.size() / 2) : box;
  }
  const fs::path path = dir / "cut.mp4";
  write_bytes(path, truncated);
  for (const auto& action : std::vector<std::function<void()>>{[&] { probe(path); }, [&] { decode_audio(path); },
                                                               [&] { VideoReader reader(path); }}) {
    std::string message = error_text(action);
    EXPECT_NE(message.find("cut.mp4 is truncated or corrupt"), std::string::npos) << message;
    EXPECT_NE(message.find("moov atom not found"), std::string::npos) << message;
  }
}

TEST(Media, TruncatedMp4CutInHalf) {
  // With faststart the index survives the cut, so the damage shows only when decoding.
  test::TempDir dir;
  Encoded encoded = encode_sample(dir / "clip.mp4", 320, 240);
  std::string bytes = read_bytes(encoded.path);
  const fs::path path = dir / "half.mp4";
  write_bytes(path, bytes.substr(0, bytes.size() / 2));
  std::string message = error_text([&] { decode_audio(path); });
  EXPECT_NE(message.find("half.mp4 is truncated or corrupt"), std::string::npos) << message;
  message = error_text([&] {
    VideoReader reader(path);
    VideoFrame frame;
    while (reader.read(frame)) {
    }
  });
  EXPECT_NE(message.find("half.mp4 is truncated or corrupt"), std::string::npos) << message;
}

TEST(Media, CorruptPacketsAreReportedWithTheirTime) {
  // Overwrite the second half of the media data with noise: the file opens but decodes to
  // garbage, which must be an error naming where it starts rather than silent output.
  test::TempDir dir;
  Encoded encoded = encode_sample(dir / "clip.mp4", 320, 240);
  std::string bytes = read_bytes(encoded.path);
  size_t mdat = bytes.find("mdat");
  ASSERT_NE(mdat, std::string::npos);
  cv::RNG rng(1);
  const size_t from = mdat + (bytes.size() - mdat) / 2;
  for (size_t i = from; i < bytes.size(); ++i) bytes[i] = static_cast<char>(rng.uniform(0, 256));
  const fs::path path = dir / "noisy.mp4";
  write_bytes(path, bytes);
  std::string message = error_text([&] { decode_audio(path); });
  EXPECT_NE(message.find("noisy.mp4"), std::string::npos) << message;
  EXPECT_NE(message.find("corrupt audio data at "), std::string::npos) << message;
}

TEST(Media, AFewDamagedBytesAreTolerated) {
  // Like ffmpeg, a small glitch (here 8 bytes inside one packet) is concealed, not fatal.
  test::TempDir dir;
  Encoded encoded = encode_sample(dir / "clip.mp4", 320, 240);
  std::string bytes = read_bytes(encoded.path);
  size_t mdat = bytes.find("mdat");
  ASSERT_NE(mdat, std::string::npos);
  const size_t at = mdat + (bytes.size() - mdat) * 6 / 10;
  for (size_t i = at; i < at + 8; ++i) bytes[i] = static_cast<char>(~bytes[i]);
  const fs::path path = dir / "glitch.mp4";
  write_bytes(path, bytes);
  EXPECT_NEAR(static_cast<double>(decode_audio(path, 16000).size()), n_frames / fps * 16000, 1024.0 / 3);
  VideoReader reader(path);
  VideoFrame frame;
  int64_t count = 0;
  while (reader.read(frame)) ++count;
  EXPECT_GE(count, n_frames - 1);
}

TEST(Media, AbandonedWriterLeavesNoFile) {
  test::TempDir dir;
  const fs::path path = dir / "out.mp4";
  {
    EncoderOptions options;
    options.width = 64;
    options.height = 64;
    VideoWriter writer(path, options);
    writer.write_frame(synthetic_frame(64, 64, 0));
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));

  EncoderOptions options;
  options.width = 64;
  options.height = 64;
  try {
    VideoWriter writer(path, options);
    writer.write_frame(synthetic_frame(64, 64, 0));
    writer.write_frame(synthetic_frame(32, 64, 1));  // wrong size: the caller's bug
    FAIL() << "a frame of the wrong size was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("32x64"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(fs::is_empty(dir.path()));

  VideoWriter writer(path, options);
  cv::Mat gray(64, 64, CV_8UC1, cv::Scalar(0));
  EXPECT_THROW(writer.write_frame(gray), Error);
}

TEST(Media, WriterNamesAMissingDirectory) {
  test::TempDir dir;
  try {
    VideoWriter writer(dir / "no" / "such" / "out.mp4", EncoderOptions{});
    FAIL() << "opened a file in a missing directory";
  } catch (const EnvironmentError& e) {
    EXPECT_NE(std::string(e.what()).find("out.mp4"), std::string::npos) << e.what();
  }
}

TEST(Media, ChunkedDecodeMatchesWhole) {
  test::TempDir dir;
  Encoded encoded = encode_sample(dir / "clip.mp4", 320, 240);
  std::vector<float> whole = decode_audio(encoded.path, 16000);
  std::vector<float> joined;
  size_t largest_chunk = 0;
  decode_audio(encoded.path, 16000, [&](std::span<const float> chunk) {
    largest_chunk = std::max(largest_chunk, chunk.size());
    joined.insert(joined.end(), chunk.begin(), chunk.end());
  });
  EXPECT_EQ(joined, whole);
  EXPECT_LT(largest_chunk, 16000u) << "chunks should be small blocks, not the whole track";
}

}  // namespace
}  // namespace dself::media

namespace dself::media {
namespace {

TEST(Wav, WrittenSamplesDecodeBack) {
  test::TempDir dir;
  std::vector<float> tone(16000);
  for (size_t i = 0; i < tone.size(); ++i) tone[i] = 0.5f * std::sin(2 * 3.14159265f * 440 * i / 16000.0f);
  write_wav(dir / "tone.wav", tone, 16000);
  MediaInfo info = probe(dir / "tone.wav");
  EXPECT_EQ(info.sample_rate, 16000);
  EXPECT_EQ(info.channels, 1);
  EXPECT_NEAR(info.duration_s, 1.0, 1e-3);
  std::vector<float> back = decode_audio(dir / "tone.wav", 16000);
  ASSERT_EQ(back.size(), tone.size());
  double max_error = 0;
  for (size_t i = 0; i < tone.size(); ++i) max_error = std::max(max_error, double(std::abs(back[i] - tone[i])));
  EXPECT_LT(max_error, 1e-4);  // 16-bit quantisation
}

}  // namespace
}  // namespace dself::media
