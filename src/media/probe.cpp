// Opening and probing media files.
#include <fmt/format.h>

#include <fstream>
#include <vector>

#include "media/detail/ffmpeg.h"

namespace dself::media {
namespace detail {

namespace {

bool looks_like_known_format(const std::filesystem::path& path) {
  // Probe the content only (no file name): a file whose bytes FFmpeg recognises but cannot
  // open is truncated or corrupt; one it does not recognise is not media at all.
  std::ifstream in(path, std::ios::binary);
  std::vector<unsigned char> bytes(4096 + AVPROBE_PADDING_SIZE, 0);
  in.read(reinterpret_cast<char*>(bytes.data()), 4096);
  AVProbeData probe_data{};
  probe_data.filename = "";
  probe_data.buf = bytes.data();
  probe_data.buf_size = static_cast<int>(in.gcount());
  int score = 0;
  const AVInputFormat* format = av_probe_input_format3(&probe_data, 1, &score);
  return format != nullptr && score > AVPROBE_SCORE_EXTENSION;
}

}  // namespace

InputPtr open_input(const std::filesystem::path& path) {
  init_ffmpeg();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    throw InputError(fmt::format("{} does not exist: check the path", path.string()));
  }
  if (std::filesystem::is_directory(path, ec)) {
    throw InputError(fmt::format("{} is a directory, not a video or audio file", path.string()));
  }
  if (std::filesystem::file_size(path, ec) == 0) {
    throw InputError(fmt::format("{} is empty (0 bytes): download or copy it again", path.string()));
  }
  last_ffmpeg_error.clear();
  AVFormatContext* raw = nullptr;
  int rc = avformat_open_input(&raw, path.c_str(), nullptr, nullptr);
  if (rc < 0) {
    if (rc == AVERROR(EACCES)) {
      throw InputError(fmt::format("cannot read {}: permission denied", path.string()));
    }
    if (looks_like_known_format(path)) {
      throw InputError(
          fmt::format("{} is truncated or corrupt: {}; download or copy it again", path.string(), ffmpeg_reason(rc)));
    }
    // Only av_strerror's text here: FFmpeg's log line is about the format it guessed from the
    // file name (e.g. "moov atom not found" for notes.mp4), which would mislead.
    throw InputError(
        fmt::format("{} is not a video or audio file FFmpeg can read ({}); give a video "
                    "(e.g. MP4, MKV, WebM) or audio file",
                    path.string(), av_error_text(rc)));
  }
  InputPtr input(raw);
  rc = avformat_find_stream_info(input.get(), nullptr);
  if (rc < 0) {
    throw InputError(
        fmt::format("{} is truncated or corrupt: cannot read its streams: {}", path.string(), ffmpeg_reason(rc)));
  }
  return input;
}

double to_seconds(int64_t t, AVRational time_base) { return static_cast<double>(t) * av_q2d(time_base); }

double time_from_start(const AVFormatContext* format, const AVStream* stream, int64_t pts) {
  if (pts == AV_NOPTS_VALUE) return 0;
  double t = to_seconds(pts, stream->time_base);
  if (format->start_time != AV_NOPTS_VALUE) t -= static_cast<double>(format->start_time) / AV_TIME_BASE;
  return t;
}

double stream_fps(AVFormatContext* format, AVStream* stream) {
  AVRational rate = av_guess_frame_rate(format, stream, nullptr);
  if (rate.num <= 0 || rate.den <= 0) rate = stream->avg_frame_rate;
  if (rate.num <= 0 || rate.den <= 0) return 0;
  return av_q2d(rate);
}

MediaInfo describe_input(AVFormatContext* format) {
  MediaInfo info;
  info.container = format->iformat->name;
  if (format->duration != AV_NOPTS_VALUE && format->duration > 0) {
    info.duration_s = static_cast<double>(format->duration) / AV_TIME_BASE;
  }
  const AVDictionaryEntry* tag = nullptr;
  while ((tag = av_dict_get(format->metadata, "", tag, AV_DICT_IGNORE_SUFFIX)) != nullptr) {
    info.tags[tag->key] = tag->value;
  }
  int video = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (video >= 0) {
    AVStream* stream = format->streams[video];
    info.has_video = true;
    info.video_codec = avcodec_get_name(stream->codecpar->codec_id);
    info.width = stream->codecpar->width;
    info.height = stream->codecpar->height;
    info.fps = stream_fps(format, stream);
    double stream_duration = stream->duration != AV_NOPTS_VALUE ? to_seconds(stream->duration, stream->time_base) : 0;
    if (info.duration_s <= 0) info.duration_s = stream_duration;
    if (stream->nb_frames > 0) {
      info.frame_count = stream->nb_frames;
    } else if (info.fps > 0) {
      double seconds = stream_duration > 0 ? stream_duration : info.duration_s;
      info.frame_count = std::llround(seconds * info.fps);
    }
  }
  int audio = av_find_best_stream(format, AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (audio >= 0) {
    AVStream* stream = format->streams[audio];
    info.has_audio = true;
    info.audio_codec = avcodec_get_name(stream->codecpar->codec_id);
    info.sample_rate = stream->codecpar->sample_rate;
    info.channels = stream->codecpar->ch_layout.nb_channels;
    if (info.duration_s <= 0 && stream->duration != AV_NOPTS_VALUE) {
      info.duration_s = to_seconds(stream->duration, stream->time_base);
    }
  }
  return info;
}

}  // namespace detail

using namespace detail;

MediaInfo probe(const std::filesystem::path& path) {
  InputPtr input = open_input(path);
  MediaInfo info = describe_input(input.get());
  if (!info.has_video && !info.has_audio) {
    throw InputError(fmt::format("{} has neither a video nor an audio stream", path.string()));
  }
  return info;
}

}  // namespace dself::media
