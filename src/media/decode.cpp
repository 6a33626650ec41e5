// Decoding: audio to mono float at one rate (streamed), video frames to BGR (VideoReader).
// Like ffmpeg, a few damaged packets are concealed; many stop decoding with an error.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <opencv2/imgproc.hpp>
#include <set>

#include "media/detail/ffmpeg.h"

namespace dself::media {
using namespace detail;
namespace {

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

}  // namespace dself::media
