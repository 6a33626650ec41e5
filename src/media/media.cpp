// Media I/O on the FFmpeg libraries (libavformat, libavcodec, libswscale, libswresample).
// Every FFmpeg object is owned by a unique_ptr with its matching free function, so that an
// exception at any point releases everything and a VideoWriter leaves no partial file.
#include "media/media.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <opencv2/imgproc.hpp>
#include <set>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include "core/error.h"
#include "core/fs.h"

namespace dself::media {
namespace {

// ---------------------------------------------------------------------------------------
// RAII for FFmpeg objects

struct InputCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct OutputCloser {
  void operator()(AVFormatContext* c) const {
    if (!(c->oformat->flags & AVFMT_NOFILE)) avio_closep(&c->pb);
    avformat_free_context(c);
  }
};
struct CodecFreer {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFreer {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFreer {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFreer {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
struct SwrFreer {
  void operator()(SwrContext* s) const { swr_free(&s); }
};
struct FifoFreer {
  void operator()(AVAudioFifo* f) const { av_audio_fifo_free(f); }
};

using InputPtr = std::unique_ptr<AVFormatContext, InputCloser>;
using OutputPtr = std::unique_ptr<AVFormatContext, OutputCloser>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecFreer>;
using FramePtr = std::unique_ptr<AVFrame, FrameFreer>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFreer>;
using SwsPtr = std::unique_ptr<SwsContext, SwsFreer>;
using SwrPtr = std::unique_ptr<SwrContext, SwrFreer>;
using FifoPtr = std::unique_ptr<AVAudioFifo, FifoFreer>;

// ---------------------------------------------------------------------------------------
// Errors and FFmpeg's log

std::string av_error_text(int code) {
  std::array<char, AV_ERROR_MAX_STRING_SIZE> text{};
  av_strerror(code, text.data(), text.size());
  return text.data();
}

Error internal_error(const std::string& message) { return Error(ErrorKind::internal, message); }

FramePtr make_frame() {
  FramePtr frame(av_frame_alloc());
  if (!frame) throw std::bad_alloc();
  return frame;
}

PacketPtr make_packet() {
  PacketPtr packet(av_packet_alloc());
  if (!packet) throw std::bad_alloc();
  return packet;
}

// The last error FFmpeg logged on this thread (e.g. "moov atom not found"): av_strerror only
// says "Invalid data found", and the log line is what tells the user what is wrong.
thread_local std::string last_ffmpeg_error;

void ffmpeg_log(void* avcl, int level, const char* format, va_list args) {
  if (level > av_log_get_level()) return;
  std::array<char, 1024> line{};
  int print_prefix = 1;
  va_list copy;
  va_copy(copy, args);
  av_log_format_line2(avcl, level, format, copy, line.data(), line.size(), &print_prefix);
  va_end(copy);
  std::string text = line.data();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (text.empty()) return;
  if (level <= AV_LOG_ERROR) {
    // Keep the message without the "[mov,mp4,... @ 0x...] " prefix.
    std::string message = text;
    if (auto end = message.find("] "); message.starts_with("[") && end != std::string::npos) {
      message = message.substr(end + 2);
    }
    last_ffmpeg_error = message;
  }
  // FFmpeg's messages go to dself's log (not straight to stderr) so they neither break
  // progress bars nor hide from --verbose; dself's own errors say what went wrong.
  spdlog::debug("ffmpeg: {}", text);
}

void init_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_WARNING);
    av_log_set_callback(ffmpeg_log);
  });
}

// "av_strerror text (last FFmpeg log line)" for a failed call.
std::string ffmpeg_reason(int code) {
  std::string reason = av_error_text(code);
  if (!last_ffmpeg_error.empty() && last_ffmpeg_error != reason) reason += " (" + last_ffmpeg_error + ")";
  return reason;
}

std::string seconds_text(double t) { return fmt::format("{:.1f} s", t); }

// ---------------------------------------------------------------------------------------
// Opening and probing

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

// Seconds from the file's start (the earliest stream start) to `pts` in `stream`; both
// readers measure time from there so that audio sample n and a frame at n/rate line up.
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

// ---------------------------------------------------------------------------------------
// Decoding

CodecPtr open_decoder(const std::filesystem::path& path, AVStream* stream, int thread_count) {
  const AVCodec* codec = avcodec_find_decoder(stream->codecpar->codec_id);
  if (codec == nullptr) {
    throw InputError(
        fmt::format("{}: no decoder for its {} stream (codec {}); re-encode it, e.g. "
                    "ffmpeg -i IN -c:v libx264 -c:a aac OUT.mp4",
                    path.string(), av_get_media_type_string(stream->codecpar->codec_type),
                    avcodec_get_name(stream->codecpar->codec_id)));
  }
  CodecPtr decoder(avcodec_alloc_context3(codec));
  if (!decoder) throw std::bad_alloc();
  int rc = avcodec_parameters_to_context(decoder.get(), stream->codecpar);
  if (rc < 0) throw internal_error(fmt::format("avcodec_parameters_to_context: {}", av_error_text(rc)));
  decoder->pkt_timebase = stream->time_base;
  decoder->thread_count = thread_count;
  decoder->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
  rc = avcodec_open2(decoder.get(), codec, nullptr);
  if (rc < 0) {
    throw InputError(fmt::format("{}: cannot open the {} decoder: {}; the stream may be corrupt", path.string(),
                                 codec->name, ffmpeg_reason(rc)));
  }
  return decoder;
}

// Like ffmpeg, a few damaged packets are concealed and skipped; many mean the file is broken
// and its decoded output would be garbage, so decoding stops with an error.
class DecodeErrorBudget {
 public:
  // Throws when this error makes the damage more than a few isolated packets.
  void on_error(const std::filesystem::path& path, const char* what, double time_s, int code, int64_t packet_count) {
    if (error_count_++ == 0) first_error_s_ = time_s;
    if (error_count_ <= 5) {
      spdlog::warn("{}: skipped corrupt {} data at {} ({})", path.string(), what, seconds_text(time_s),
                   av_error_text(code));
    }
    int64_t allowed = 3 + packet_count / 50;
    if (error_count_ > allowed) {
      throw InputError(fmt::format(
          "{}: corrupt {} data at {} ({}; {} damaged packets by {}); the file is "
          "broken: download or copy it again",
          path.string(), what, seconds_text(first_error_s_), av_error_text(code), error_count_, seconds_text(time_s)));
    }
  }

 private:
  int64_t error_count_ = 0;
  double first_error_s_ = 0;
};

// Reads packets of one stream and hands out decoded frames; shared by audio and video.
class StreamDecoder {
 public:
  StreamDecoder(std::filesystem::path path, AVFormatContext* format, AVStream* stream, CodecPtr decoder,
                const char* what)
      : path_(std::move(path)),
        format_(format),
        stream_(stream),
        decoder_(std::move(decoder)),
        what_(what),
        packet_(make_packet()) {}

  // Next decoded frame into `frame`; false at the end of the stream.
  bool next(AVFrame* frame) {
    while (true) {
      int rc = avcodec_receive_frame(decoder_.get(), frame);
      if (rc == 0) {
        if (frame->decode_error_flags != 0 || (frame->flags & AV_FRAME_FLAG_CORRUPT)) {
          budget_.on_error(path_, what_, frame_time(frame), AVERROR_INVALIDDATA, packet_count_);
        }
        return true;
      }
      if (rc == AVERROR_EOF) return false;
      if (rc != AVERROR(EAGAIN)) {
        budget_.on_error(path_, what_, last_packet_time_, rc, packet_count_);
        continue;
      }
      if (draining_) return false;
      feed();
    }
  }

  double frame_time(const AVFrame* frame) const {
    return time_from_start(format_, stream_, frame->best_effort_timestamp);
  }

 private:
  // Sends the next packet of our stream (or the end-of-stream marker) to the decoder.
  void feed() {
    while (true) {
      last_ffmpeg_error.clear();
      int rc = av_read_frame(format_, packet_.get());
      if (rc == AVERROR_EOF) {
        check_complete();
        draining_ = true;
        avcodec_send_packet(decoder_.get(), nullptr);
        return;
      }
      if (rc < 0) {
        throw InputError(fmt::format("{} is truncated or corrupt: cannot read data after {}: {}", path_.string(),
                                     seconds_text(last_packet_time_), ffmpeg_reason(rc)));
      }
      if (packet_->stream_index != stream_->index) {
        av_packet_unref(packet_.get());
        continue;
      }
      ++packet_count_;
      int64_t pts = packet_->pts != AV_NOPTS_VALUE ? packet_->pts : packet_->dts;
      if (pts != AV_NOPTS_VALUE) {
        last_packet_time_ = time_from_start(format_, stream_, pts);
        data_end_s_ = std::max(data_end_s_, time_from_start(format_, stream_, pts + packet_->duration));
      }
      bool corrupt = (packet_->flags & AV_PKT_FLAG_CORRUPT) != 0;
      rc = avcodec_send_packet(decoder_.get(), packet_.get());
      av_packet_unref(packet_.get());
      bool failed = rc < 0 && rc != AVERROR(EAGAIN);
      if (corrupt || failed) {
        budget_.on_error(path_, what_, last_packet_time_, failed ? rc : AVERROR_INVALIDDATA, packet_count_);
      }
      if (failed) continue;
      return;
    }
  }

  // A file cut short can end without a read error (the MP4 index of a faststart file survives
  // the cut); its data then stops well before the duration its header gives.
  void check_complete() const {
    if (format_->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE) return;  // a guess
    if (stream_->duration == AV_NOPTS_VALUE || stream_->duration <= 0) return;
    int64_t start = stream_->start_time != AV_NOPTS_VALUE ? stream_->start_time : 0;
    double header_end_s = time_from_start(format_, stream_, start + stream_->duration);
    if (data_end_s_ < header_end_s - (0.5 + 0.01 * header_end_s)) {
      throw InputError(
          fmt::format("{} is truncated or corrupt: its {} data ends at {} but its header says {}; "
                      "download or copy it again",
                      path_.string(), what_, seconds_text(data_end_s_), seconds_text(header_end_s)));
    }
  }

  std::filesystem::path path_;
  AVFormatContext* format_;
  AVStream* stream_;
  CodecPtr decoder_;
  const char* what_;
  PacketPtr packet_;
  DecodeErrorBudget budget_;
  int64_t packet_count_ = 0;
  double last_packet_time_ = 0;
  double data_end_s_ = 0;  // end of the latest packet read
  bool draining_ = false;
};

}  // namespace

// =========================================================================================
// probe

MediaInfo probe(const std::filesystem::path& path) {
  InputPtr input = open_input(path);
  MediaInfo info = describe_input(input.get());
  if (!info.has_video && !info.has_audio) {
    throw InputError(fmt::format("{} has neither a video nor an audio stream", path.string()));
  }
  return info;
}

// =========================================================================================
// decode_audio

namespace {

// An AVChannelLayout that frees what it holds (custom layouts allocate).
struct ChannelLayout {
  AVChannelLayout value{};
  ChannelLayout() = default;
  ChannelLayout(const ChannelLayout&) = delete;
  ChannelLayout& operator=(const ChannelLayout&) = delete;
  ~ChannelLayout() { av_channel_layout_uninit(&value); }
};

// Decoded audio frames of any format to mono float at one rate, handed on in blocks.
class MonoConverter {
 public:
  MonoConverter(std::filesystem::path path, int sample_rate,
                const std::function<void(std::span<const float>)>& on_chunk)
      : path_(std::move(path)), sample_rate_(sample_rate), on_chunk_(on_chunk) {}

  void convert(const AVFrame* frame) {
    ChannelLayout layout;
    // Some files do not say which channel is which; FFmpeg's default order for the count is
    // what players assume too.
    if (frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
      av_channel_layout_default(&layout.value, frame->ch_layout.nb_channels);
    } else {
      av_channel_layout_copy(&layout.value, &frame->ch_layout);
    }
    auto format = static_cast<AVSampleFormat>(frame->format);
    // A stream may change rate or layout midway (rare, but legal): rebuild the resampler.
    if (!resampler_ || frame->sample_rate != in_rate_ || format != in_format_ ||
        av_channel_layout_compare(&layout.value, &in_layout_.value) != 0) {
      if (resampler_) run(nullptr, 0);
      reset(layout.value, format, frame->sample_rate);
    }
    run(const_cast<const uint8_t**>(frame->extended_data), frame->nb_samples);
  }

  // Hands on what the resampler still holds.
  void flush() {
    if (resampler_) run(nullptr, 0);
  }

 private:
  void reset(AVChannelLayout& layout, AVSampleFormat format, int rate) {
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    SwrContext* raw = nullptr;
    int rc = swr_alloc_set_opts2(&raw, &mono, AV_SAMPLE_FMT_FLT, sample_rate_, &layout, format, rate, 0, nullptr);
    resampler_.reset(raw);
    // Downmix to the channels' mean (0.5 L + 0.5 R), not libswresample's float default of
    // 0.707 each, which takes loud stereo beyond [-1, 1].
    if (rc >= 0) rc = av_opt_set_double(resampler_.get(), "rematrix_maxval", 1.0, 0);
    if (rc >= 0) rc = swr_init(resampler_.get());
    if (rc < 0) {
      throw InputError(fmt::format("{}: cannot convert its audio ({} Hz, {} channels, {}) to {} Hz mono: {}",
                                   path_.string(), rate, layout.nb_channels, av_get_sample_fmt_name(format),
                                   sample_rate_, av_error_text(rc)));
    }
    in_rate_ = rate;
    in_format_ = format;
    av_channel_layout_uninit(&in_layout_.value);
    av_channel_layout_copy(&in_layout_.value, &layout);
  }

  void run(const uint8_t** data, int n_in) {
    int capacity = swr_get_out_samples(resampler_.get(), n_in);
    if (capacity <= 0) return;
    buffer_.resize(static_cast<size_t>(capacity));
    auto* out = reinterpret_cast<uint8_t*>(buffer_.data());
    int n_out = swr_convert(resampler_.get(), &out, capacity, data, n_in);
    if (n_out < 0) throw internal_error(fmt::format("swr_convert: {}", av_error_text(n_out)));
    if (n_out > 0) on_chunk_(std::span<const float>(buffer_.data(), static_cast<size_t>(n_out)));
  }

  std::filesystem::path path_;
  int sample_rate_;
  const std::function<void(std::span<const float>)>& on_chunk_;
  SwrPtr resampler_;
  int in_rate_ = 0;
  AVSampleFormat in_format_ = AV_SAMPLE_FMT_NONE;
  ChannelLayout in_layout_;
  std::vector<float> buffer_;
};

}  // namespace

void decode_audio(const std::filesystem::path& path, int sample_rate,
                  const std::function<void(std::span<const float> samples)>& on_chunk) {
  if (sample_rate <= 0) throw internal_error(fmt::format("decode_audio: sample rate {} Hz", sample_rate));
  InputPtr input = open_input(path);
  int index = av_find_best_stream(input.get(), AVMEDIA_TYPE_AUDIO, -1, -1, nullptr, 0);
  if (index < 0) {
    throw InputError(fmt::format("{} has no audio stream: give a file with sound", path.string()));
  }
  AVStream* stream = input->streams[index];
  for (unsigned i = 0; i < input->nb_streams; ++i) {
    if (static_cast<int>(i) != index) input->streams[i]->discard = AVDISCARD_ALL;
  }
  StreamDecoder decoder(path, input.get(), stream, open_decoder(path, stream, 1), "audio");
  MonoConverter converter(path, sample_rate, on_chunk);
  FramePtr frame = make_frame();
  bool started = false;
  while (decoder.next(frame.get())) {
    if (frame->nb_samples <= 0) continue;
    if (!started) {
      // Audio that starts after the file's start (e.g. after the first video frame) is padded
      // with silence so that sample n is at time n / sample_rate, like the video frames. A
      // gap of a minute or more is a broken timestamp, not a delay.
      started = true;
      double offset_s = decoder.frame_time(frame.get());
      if (offset_s > 0.0005 && offset_s < 60) {
        std::vector<float> silence(static_cast<size_t>(std::llround(offset_s * sample_rate)), 0.0f);
        on_chunk(silence);
      }
    }
    converter.convert(frame.get());
    av_frame_unref(frame.get());
  }
  converter.flush();
}

std::vector<float> decode_audio(const std::filesystem::path& path, int sample_rate) {
  std::vector<float> samples;
  decode_audio(path, sample_rate,
               [&](std::span<const float> chunk) { samples.insert(samples.end(), chunk.begin(), chunk.end()); });
  return samples;
}

// =========================================================================================
// VideoReader

struct VideoReader::State {
  std::filesystem::path path;
  InputPtr input;
  MediaInfo info;
  std::unique_ptr<StreamDecoder> decoder;
  FramePtr frame = make_frame();
  SwsPtr scaler;
  int scaler_width = 0;
  int scaler_height = 0;
  int scaler_format = AV_PIX_FMT_NONE;
  int64_t next_index = 0;
};

namespace {

// The YUV matrix of a frame for libswscale; untagged video follows the usual convention
// (BT.709 for HD, BT.601 below), as players do.
int sws_colorspace_of(const AVFrame* frame) {
  switch (frame->colorspace) {
    case AVCOL_SPC_BT709:
      return SWS_CS_ITU709;
    case AVCOL_SPC_FCC:
      return SWS_CS_FCC;
    case AVCOL_SPC_SMPTE240M:
      return SWS_CS_SMPTE240M;
    case AVCOL_SPC_BT2020_NCL:
    case AVCOL_SPC_BT2020_CL:
      return SWS_CS_BT2020;
    case AVCOL_SPC_BT470BG:
    case AVCOL_SPC_SMPTE170M:
      return SWS_CS_ITU601;
    default:
      return frame->height >= 720 ? SWS_CS_ITU709 : SWS_CS_ITU601;
  }
}

}  // namespace

VideoReader::VideoReader(const std::filesystem::path& path) : state_(std::make_unique<State>()) {
  state_->path = path;
  state_->input = open_input(path);
  state_->info = describe_input(state_->input.get());
  AVFormatContext* format = state_->input.get();
  int index = av_find_best_stream(format, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
  if (index < 0) {
    throw InputError(fmt::format("{} has no video stream: give a video file", path.string()));
  }
  AVStream* stream = format->streams[index];
  for (unsigned i = 0; i < format->nb_streams; ++i) {
    if (static_cast<int>(i) != index) format->streams[i]->discard = AVDISCARD_ALL;
  }
  // thread_count 0: one decoder thread per core, chosen by libavcodec.
  state_->decoder = std::make_unique<StreamDecoder>(path, format, stream, open_decoder(path, stream, 0), "video");
}

VideoReader::~VideoReader() = default;

const MediaInfo& VideoReader::info() const { return state_->info; }

bool VideoReader::read(VideoFrame& out) {
  State& s = *state_;
  AVFrame* frame = s.frame.get();
  av_frame_unref(frame);
  if (!s.decoder->next(frame)) return false;
  if (!s.scaler || frame->width != s.scaler_width || frame->height != s.scaler_height ||
      frame->format != s.scaler_format) {
    s.scaler.reset(sws_getContext(frame->width, frame->height, static_cast<AVPixelFormat>(frame->format), frame->width,
                                  frame->height, AV_PIX_FMT_BGR24, SWS_BILINEAR | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT,
                                  nullptr, nullptr, nullptr));
    if (!s.scaler) {
      throw InputError(fmt::format("{}: cannot convert its {}x{} {} frames to BGR", s.path.string(), frame->width,
                                   frame->height, av_get_pix_fmt_name(static_cast<AVPixelFormat>(frame->format))));
    }
    bool full_range = frame->color_range == AVCOL_RANGE_JPEG || frame->format == AV_PIX_FMT_YUVJ420P ||
                      frame->format == AV_PIX_FMT_YUVJ422P || frame->format == AV_PIX_FMT_YUVJ444P;
    const int* coefficients = sws_getCoefficients(sws_colorspace_of(frame));
    sws_setColorspaceDetails(s.scaler.get(), coefficients, full_range ? 1 : 0, sws_getCoefficients(SWS_CS_DEFAULT), 1,
                             0, 1 << 16, 1 << 16);
    s.scaler_width = frame->width;
    s.scaler_height = frame->height;
    s.scaler_format = frame->format;
  }
  // Reuse the caller's buffer only when nobody else shares it, so that frames the caller
  // kept (by cv::Mat copy, which shares data) are never overwritten.
  bool reusable = !out.bgr.empty() && out.bgr.rows == frame->height && out.bgr.cols == frame->width &&
                  out.bgr.type() == CV_8UC3 && out.bgr.isContinuous() && out.bgr.u != nullptr &&
                  out.bgr.u->refcount == 1;
  if (!reusable) out.bgr = cv::Mat(frame->height, frame->width, CV_8UC3);
  uint8_t* dst[1] = {out.bgr.data};
  int dst_stride[1] = {static_cast<int>(out.bgr.step[0])};
  sws_scale(s.scaler.get(), frame->data, frame->linesize, 0, frame->height, dst, dst_stride);
  out.index = s.next_index++;
  // A stream without timestamps (some raw and AVI files) is timed by its frame rate.
  bool timed = frame->best_effort_timestamp != AV_NOPTS_VALUE || s.info.fps <= 0;
  out.time_s = timed ? s.decoder->frame_time(frame) : static_cast<double>(out.index) / s.info.fps;
  return true;
}

// =========================================================================================
// VideoWriter

namespace {

// Tags the MP4 muxer writes as iTunes-style atoms and reads back under the same name; any
// other key needs the generic "mdta" keys, which fewer players show, so those are used only
// when needed.
bool all_itunes_tags(const std::map<std::string, std::string>& metadata) {
  static const std::set<std::string> known = {
      "title",      "artist",    "album_artist", "composer", "album",       "date",        "comment",
      "genre",      "copyright", "grouping",     "lyrics",   "description", "synopsis",    "show",
      "episode_id", "network",   "keywords",     "track",    "disc",        "compilation", "gapless_playback"};
  return std::all_of(metadata.begin(), metadata.end(), [](const auto& kv) { return known.contains(kv.first); });
}

// Extra x264 settings for this CPU, or nullptr.
const char* x264_params() {
#if defined(__x86_64__)
  // x264 r3095's AVX-512 code reads memory it has not written: in one process the same frames
  // then encode to different bytes from one file to the next (found by encoding a clip
  // repeatedly; frames and settings identical). Its AVX2 code is repeatable, at about 10% of
  // encode speed (bench_media). Every CPU with AVX-512 also has AVX2 and the FMA3/BMI2/LZCNT
  // that x264's "AVX2" level implies.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2")) return "asm=AVX2,Cache64";
#endif
  return nullptr;
}

}  // namespace

struct VideoWriter::State {
  EncoderOptions options;
  StagedPath staged;
  OutputPtr output;
  CodecPtr video;
  CodecPtr audio;
  AVStream* video_stream = nullptr;
  AVStream* audio_stream = nullptr;
  SwsPtr scaler;
  SwrPtr resampler;
  FifoPtr fifo;
  FramePtr video_frame = make_frame();
  FramePtr audio_frame = make_frame();
  PacketPtr packet = make_packet();
  int64_t frame_count = 0;
  int64_t audio_samples_sent = 0;  // at audio_output_rate: the next audio frame's pts
  std::vector<float> resampled;
  bool finished = false;

  explicit State(const std::filesystem::path& path, const EncoderOptions& opts) : options(opts), staged(path) {}

  const std::filesystem::path& path() const { return staged.final_path(); }

  // Muxes every packet the encoder has ready (all of them when flushing).
  void drain(AVCodecContext* encoder, AVStream* stream) {
    while (true) {
      int rc = avcodec_receive_packet(encoder, packet.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      if (rc < 0)
        throw internal_error(
            fmt::format("{}: {} encoder failed: {}", path().string(), encoder->codec->name, av_error_text(rc)));
      av_packet_rescale_ts(packet.get(), encoder->time_base, stream->time_base);
      packet->stream_index = stream->index;
      rc = av_interleaved_write_frame(output.get(), packet.get());
      if (rc < 0) {
        throw EnvironmentError(
            fmt::format("cannot write {}: {}; check the disk has room", path().string(), av_error_text(rc)));
      }
    }
  }

  void encode(AVCodecContext* encoder, AVStream* stream, const AVFrame* frame) {
    int rc = avcodec_send_frame(encoder, frame);
    if (rc < 0)
      throw internal_error(
          fmt::format("{}: {} encoder refused a frame: {}", path().string(), encoder->codec->name, av_error_text(rc)));
    drain(encoder, stream);
  }

  // Encodes whole AAC frames from the FIFO; with `flush`, also the last partial one.
  void encode_audio_fifo(bool flush) {
    int frame_size = audio->frame_size > 0 ? audio->frame_size : 1024;
    while (av_audio_fifo_size(fifo.get()) >= frame_size || (flush && av_audio_fifo_size(fifo.get()) > 0)) {
      int n = std::min(av_audio_fifo_size(fifo.get()), frame_size);
      // The native AAC encoder takes a short last frame; other encoders get it padded.
      bool small_last = (audio->codec->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME) != 0;
      int frame_samples = (n < frame_size && !small_last) ? frame_size : n;
      av_frame_unref(audio_frame.get());
      audio_frame->nb_samples = frame_samples;
      audio_frame->format = audio->sample_fmt;
      audio_frame->sample_rate = audio->sample_rate;
      av_channel_layout_copy(&audio_frame->ch_layout, &audio->ch_layout);
      int rc = av_frame_get_buffer(audio_frame.get(), 0);
      if (rc < 0) throw std::bad_alloc();
      if (frame_samples > n) {
        av_samples_set_silence(audio_frame->extended_data, n, frame_samples - n, audio->ch_layout.nb_channels,
                               audio->sample_fmt);
      }
      if (av_audio_fifo_read(fifo.get(), reinterpret_cast<void**>(audio_frame->extended_data), n) != n) {
        throw internal_error("av_audio_fifo_read returned fewer samples than it holds");
      }
      // Audio time comes from the sample count, so it cannot drift from the video's frame clock.
      audio_frame->pts = audio_samples_sent;
      audio_samples_sent += frame_samples;
      encode(audio.get(), audio_stream, audio_frame.get());
    }
  }

  // Resamples mono float at audio_input_rate (nullptr: flush the resampler) into the FIFO.
  void push_audio(const float* samples, int n) {
    int capacity = swr_get_out_samples(resampler.get(), n);
    if (capacity <= 0) return;
    resampled.resize(static_cast<size_t>(capacity));
    uint8_t* out = reinterpret_cast<uint8_t*>(resampled.data());
    const uint8_t* in = reinterpret_cast<const uint8_t*>(samples);
    int n_out = swr_convert(resampler.get(), &out, capacity, samples ? &in : nullptr, n);
    if (n_out < 0) throw internal_error(fmt::format("swr_convert: {}", av_error_text(n_out)));
    if (n_out == 0) return;
    void* planes[1] = {resampled.data()};
    if (av_audio_fifo_write(fifo.get(), planes, n_out) < n_out) throw std::bad_alloc();
  }
};

VideoWriter::VideoWriter(const std::filesystem::path& path, const EncoderOptions& options)
    : state_(std::make_unique<State>(path, options)) {
  init_ffmpeg();
  State& s = *state_;
  const EncoderOptions& o = s.options;
  if (o.width <= 0 || o.height <= 0 || o.width % 2 != 0 || o.height % 2 != 0) {
    throw internal_error(
        fmt::format("{}: video size {}x{} must be positive and even (yuv420p)", path.string(), o.width, o.height));
  }
  if (!(o.fps > 0 && o.fps <= 1000)) throw internal_error(fmt::format("{}: fps {} out of range", path.string(), o.fps));
  if (o.with_audio && (o.audio_input_rate <= 0 || o.audio_output_rate <= 0)) {
    throw internal_error(fmt::format("{}: audio rates {} and {} Hz must be positive", path.string(), o.audio_input_rate,
                                     o.audio_output_rate));
  }
  const std::string temporary = s.staged.temporary().string();

  AVFormatContext* raw = nullptr;
  int rc = avformat_alloc_output_context2(&raw, nullptr, "mp4", temporary.c_str());
  if (rc < 0) throw internal_error(fmt::format("cannot create an MP4 muxer: {}", av_error_text(rc)));
  s.output.reset(raw);
  // Byte-identical files for identical input: no library version strings in the output.
  s.output->flags |= AVFMT_FLAG_BITEXACT;

  // Video: H.264 in yuv420p, the format every browser and player decodes.
  const AVCodec* h264 = avcodec_find_encoder_by_name("libx264");
  if (h264 == nullptr) {
    throw EnvironmentError(
        "FFmpeg has no libx264 encoder: install Debian's libavcodec59 (apt install "
        "libavcodec-extra or libavcodec59), which is built with libx264");
  }
  s.video.reset(avcodec_alloc_context3(h264));
  if (!s.video) throw std::bad_alloc();
  AVRational frame_rate = av_d2q(o.fps, 1001000);
  s.video->width = o.width;
  s.video->height = o.height;
  s.video->pix_fmt = AV_PIX_FMT_YUV420P;
  s.video->framerate = frame_rate;
  s.video->time_base = av_inv_q(frame_rate);
  s.video->sample_aspect_ratio = AVRational{1, 1};
  // Tagged BT.601 limited range: what libswscale's BGR->YUV conversion below produces.
  s.video->color_range = AVCOL_RANGE_MPEG;
  s.video->colorspace = AVCOL_SPC_SMPTE170M;
  s.video->color_primaries = AVCOL_PRI_SMPTE170M;
  s.video->color_trc = AVCOL_TRC_SMPTE170M;
  s.video->thread_count = 0;
  if (s.output->oformat->flags & AVFMT_GLOBALHEADER) s.video->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
  AVDictionary* x264_options = nullptr;
  av_dict_set(&x264_options, "preset", o.preset.c_str(), 0);
  av_dict_set_int(&x264_options, "crf", o.crf, 0);
  if (const char* params = x264_params()) av_dict_set(&x264_options, "x264-params", params, 0);
  rc = avcodec_open2(s.video.get(), h264, &x264_options);
  av_dict_free(&x264_options);
  if (rc < 0) {
    throw internal_error(fmt::format("{}: cannot open libx264 (preset {}, crf {}): {}", path.string(), o.preset, o.crf,
                                     ffmpeg_reason(rc)));
  }
  s.video_stream = avformat_new_stream(s.output.get(), nullptr);
  if (s.video_stream == nullptr) throw std::bad_alloc();
  s.video_stream->time_base = s.video->time_base;
  s.video_stream->avg_frame_rate = frame_rate;
  rc = avcodec_parameters_from_context(s.video_stream->codecpar, s.video.get());
  if (rc < 0) throw internal_error(fmt::format("avcodec_parameters_from_context: {}", av_error_text(rc)));

  s.video_frame->format = AV_PIX_FMT_YUV420P;
  s.video_frame->width = o.width;
  s.video_frame->height = o.height;
  if (av_frame_get_buffer(s.video_frame.get(), 0) < 0) throw std::bad_alloc();
  s.scaler.reset(sws_getContext(o.width, o.height, AV_PIX_FMT_BGR24, o.width, o.height, AV_PIX_FMT_YUV420P,
                                SWS_BILINEAR | SWS_ACCURATE_RND, nullptr, nullptr, nullptr));
  if (!s.scaler) throw internal_error("sws_getContext BGR24 -> YUV420P failed");
  sws_setColorspaceDetails(s.scaler.get(), sws_getCoefficients(SWS_CS_DEFAULT), 1, sws_getCoefficients(SWS_CS_ITU601),
                           0, 0, 1 << 16, 1 << 16);

  if (o.with_audio) {
    const AVCodec* aac = avcodec_find_encoder_by_name("aac");
    if (aac == nullptr) throw EnvironmentError("FFmpeg has no native AAC encoder: reinstall Debian's libavcodec59");
    s.audio.reset(avcodec_alloc_context3(aac));
    if (!s.audio) throw std::bad_alloc();
    AVChannelLayout mono = AV_CHANNEL_LAYOUT_MONO;
    av_channel_layout_copy(&s.audio->ch_layout, &mono);
    s.audio->sample_fmt = AV_SAMPLE_FMT_FLTP;
    s.audio->sample_rate = o.audio_output_rate;
    s.audio->bit_rate = o.audio_bitrate;
    s.audio->time_base = AVRational{1, o.audio_output_rate};
    if (s.output->oformat->flags & AVFMT_GLOBALHEADER) s.audio->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    rc = avcodec_open2(s.audio.get(), aac, nullptr);
    if (rc < 0) {
      throw internal_error(fmt::format("{}: cannot open the AAC encoder at {} Hz, {} bit/s: {}", path.string(),
                                       o.audio_output_rate, o.audio_bitrate, ffmpeg_reason(rc)));
    }
    s.audio_stream = avformat_new_stream(s.output.get(), nullptr);
    if (s.audio_stream == nullptr) throw std::bad_alloc();
    s.audio_stream->time_base = s.audio->time_base;
    rc = avcodec_parameters_from_context(s.audio_stream->codecpar, s.audio.get());
    if (rc < 0) throw internal_error(fmt::format("avcodec_parameters_from_context: {}", av_error_text(rc)));

    SwrContext* swr = nullptr;
    rc = swr_alloc_set_opts2(&swr, &mono, AV_SAMPLE_FMT_FLT, o.audio_output_rate, &mono, AV_SAMPLE_FMT_FLT,
                             o.audio_input_rate, 0, nullptr);
    s.resampler.reset(swr);
    if (rc >= 0) rc = swr_init(s.resampler.get());
    if (rc < 0)
      throw internal_error(fmt::format("cannot set up resampling {} -> {} Hz: {}", o.audio_input_rate,
                                       o.audio_output_rate, av_error_text(rc)));
    s.fifo.reset(av_audio_fifo_alloc(AV_SAMPLE_FMT_FLTP, 1, s.audio->frame_size > 0 ? s.audio->frame_size : 1024));
    if (!s.fifo) throw std::bad_alloc();
  }

  for (const auto& [key, value] : o.metadata) av_dict_set(&s.output->metadata, key.c_str(), value.c_str(), 0);

  rc = avio_open(&s.output->pb, temporary.c_str(), AVIO_FLAG_WRITE);
  if (rc < 0) {
    throw EnvironmentError(fmt::format("cannot write {}: {}; check that the directory exists and is writable",
                                       path.string(), av_error_text(rc)));
  }
  AVDictionary* raw_mux = nullptr;
  // faststart: the index (moov) goes first, so browsers can play the file while it loads.
  av_dict_set(&raw_mux, "movflags", all_itunes_tags(o.metadata) ? "+faststart" : "+faststart+use_metadata_tags", 0);
  rc = avformat_write_header(s.output.get(), &raw_mux);
  av_dict_free(&raw_mux);
  if (rc < 0) {
    throw EnvironmentError(fmt::format("cannot write {}: {}", path.string(), ffmpeg_reason(rc)));
  }
}

VideoWriter::~VideoWriter() = default;

void VideoWriter::write_frame(const cv::Mat& bgr) {
  State& s = *state_;
  if (s.finished) throw internal_error(fmt::format("{}: write_frame after finish()", s.path().string()));
  if (bgr.type() != CV_8UC3 || bgr.cols != s.options.width || bgr.rows != s.options.height) {
    throw internal_error(
        fmt::format("{}: frame {} is {}x{} with {} channels of depth {}, but this writer takes "
                    "{}x{} 8-bit BGR (CV_8UC3)",
                    s.path().string(), s.frame_count, bgr.cols, bgr.rows, bgr.channels(), bgr.depth(), s.options.width,
                    s.options.height));
  }
  // An encoder may keep a reference to the last frame it was sent (libx264 copies, others
  // need not): write into a buffer nobody else holds.
  int rc = av_frame_make_writable(s.video_frame.get());
  if (rc < 0) throw std::bad_alloc();
  AVFrame* yuv = s.video_frame.get();
  const uint8_t* src[1] = {bgr.data};
  int src_stride[1] = {static_cast<int>(bgr.step[0])};
  sws_scale(s.scaler.get(), src, src_stride, 0, bgr.rows, yuv->data, yuv->linesize);
  // Video time is the frame index at the fixed frame rate (time_base = 1/fps).
  s.video_frame->pts = s.frame_count++;
  s.encode(s.video.get(), s.video_stream, s.video_frame.get());
}

void VideoWriter::write_audio(std::span<const float> mono) {
  State& s = *state_;
  if (s.finished) throw internal_error(fmt::format("{}: write_audio after finish()", s.path().string()));
  if (!s.options.with_audio) {
    throw internal_error(fmt::format("{}: write_audio on a writer made with with_audio = false", s.path().string()));
  }
  // Bounded blocks keep the resample buffer small however long the caller's span is.
  constexpr size_t block = 1 << 16;
  for (size_t at = 0; at < mono.size(); at += block) {
    size_t n = std::min(block, mono.size() - at);
    s.push_audio(mono.data() + at, static_cast<int>(n));
    s.encode_audio_fifo(false);
  }
}

void VideoWriter::finish() {
  State& s = *state_;
  if (s.finished) return;
  if (s.frame_count == 0) {
    throw internal_error(fmt::format("{}: finish() without any video frame", s.path().string()));
  }
  if (s.audio && s.audio_samples_sent == 0 && av_audio_fifo_size(s.fifo.get()) == 0) {
    // An audio track without samples is one that players (and FFmpeg's own stream selection)
    // do not accept: give it silence as long as the video.
    std::vector<float> silence(
        static_cast<size_t>(std::llround(s.frame_count / s.options.fps * s.options.audio_input_rate)), 0.0f);
    write_audio(silence);
  }
  if (s.audio) {
    s.push_audio(nullptr, 0);
    s.encode_audio_fifo(true);
    s.encode(s.audio.get(), s.audio_stream, nullptr);
  }
  s.encode(s.video.get(), s.video_stream, nullptr);
  int rc = av_write_trailer(s.output.get());
  if (rc < 0) {
    throw EnvironmentError(
        fmt::format("cannot finish {}: {}; check the disk has room", s.path().string(), ffmpeg_reason(rc)));
  }
  rc = avio_closep(&s.output->pb);
  if (rc < 0) {
    throw EnvironmentError(
        fmt::format("cannot write {}: {}; check the disk has room", s.path().string(), av_error_text(rc)));
  }
  s.staged.commit();
  s.finished = true;
}

namespace {

// ref: the canonical 44-byte RIFF/WAVE header for PCM (format 1), little-endian fields.
std::string wav_header(uint32_t data_bytes, int sample_rate) {
  std::string bytes = "RIFF";
  auto put = [&bytes](uint32_t value, int n) {
    for (int i = 0; i < n; ++i) bytes += static_cast<char>((value >> (8 * i)) & 0xff);
  };
  put(36 + data_bytes, 4);
  bytes += "WAVEfmt ";
  put(16, 4);
  put(1, 2);  // PCM
  put(1, 2);  // mono
  put(static_cast<uint32_t>(sample_rate), 4);
  put(static_cast<uint32_t>(sample_rate * 2), 4);
  put(2, 2);
  put(16, 2);
  bytes += "data";
  put(data_bytes, 4);
  return bytes;
}

void append_pcm16(std::string& out, std::span<const float> mono) {
  out.reserve(out.size() + mono.size() * 2);
  for (float sample : mono) {
    auto value = static_cast<uint16_t>(static_cast<int16_t>(std::lround(std::clamp(sample, -1.0f, 1.0f) * 32767.0f)));
    out += static_cast<char>(value & 0xff);
    out += static_cast<char>(value >> 8);
  }
}

}  // namespace

void write_wav(const std::filesystem::path& path, std::span<const float> mono, int sample_rate) {
  std::string bytes = wav_header(static_cast<uint32_t>(mono.size() * 2), sample_rate);
  append_pcm16(bytes, mono);
  write_file_atomic(path, bytes);
}

struct WavWriter::State {
  StagedPath staged;
  std::ofstream out;
  int sample_rate;
  uint64_t data_bytes = 0;
  State(const std::filesystem::path& path, int rate) : staged(path), sample_rate(rate) {}
};

WavWriter::WavWriter(const std::filesystem::path& path, int sample_rate)
    : state_(std::make_unique<State>(path, sample_rate)) {
  state_->out.open(state_->staged.temporary(), std::ios::binary);
  if (!state_->out) throw EnvironmentError(fmt::format("cannot write {}: check the directory exists and is writable", path.string()));
  state_->out << wav_header(0, sample_rate);  // sizes patched by finish()
}

WavWriter::~WavWriter() = default;

void WavWriter::write(std::span<const float> mono) {
  std::string bytes;
  append_pcm16(bytes, mono);
  state_->out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  state_->data_bytes += bytes.size();
}

void WavWriter::finish() {
  if (state_->data_bytes > 0xffffffffull - 36) {
    throw InputError(fmt::format("{}: audio too long for a WAV file (4 GiB)", state_->staged.final_path().string()));
  }
  state_->out.seekp(0);
  state_->out << wav_header(static_cast<uint32_t>(state_->data_bytes), state_->sample_rate);
  state_->out.close();
  if (!state_->out) throw EnvironmentError(fmt::format("cannot write {}: disk full?", state_->staged.final_path().string()));
  state_->staged.commit();
}

std::vector<float> resample(std::span<const float> mono, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0) throw internal_error(fmt::format("resample: {} Hz to {} Hz", from_rate, to_rate));
  const size_t wanted = static_cast<size_t>(std::llround(static_cast<double>(mono.size()) * to_rate / from_rate));
  if (from_rate == to_rate) return {mono.begin(), mono.end()};
  AVChannelLayout layout = AV_CHANNEL_LAYOUT_MONO;
  SwrContext* raw = nullptr;
  int rc = swr_alloc_set_opts2(&raw, &layout, AV_SAMPLE_FMT_FLT, to_rate, &layout, AV_SAMPLE_FMT_FLT, from_rate, 0, nullptr);
  SwrPtr resampler(raw);
  if (rc >= 0) rc = swr_init(resampler.get());
  if (rc < 0) throw internal_error(fmt::format("resample {} Hz to {} Hz: {}", from_rate, to_rate, av_error_text(rc)));
  std::vector<float> out(static_cast<size_t>(swr_get_out_samples(resampler.get(), static_cast<int>(mono.size()))) + 64);
  size_t n_out = 0;
  auto convert = [&](const float* in, int n_in) {
    for (;;) {
      int capacity = swr_get_out_samples(resampler.get(), n_in);
      if (out.size() < n_out + static_cast<size_t>(capacity)) out.resize(n_out + static_cast<size_t>(capacity));
      auto* dst = reinterpret_cast<uint8_t*>(out.data() + n_out);
      auto* src = reinterpret_cast<const uint8_t*>(in);
      int n = swr_convert(resampler.get(), &dst, capacity, in ? &src : nullptr, n_in);
      if (n < 0) throw internal_error(fmt::format("swr_convert: {}", av_error_text(n)));
      n_out += static_cast<size_t>(n);
      if (in != nullptr || n == 0) return;  // flushing: until the filter's tail is out
      n_in = 0;
    }
  };
  convert(mono.data(), static_cast<int>(mono.size()));
  convert(nullptr, 0);
  out.resize(n_out);
  out.resize(wanted, 0.0f);  // the filter's tail may add or leave out a sample
  return out;
}

}  // namespace dself::media
