// Internals shared by the media library's files (media.h is the API): ownership of FFmpeg's
// objects, its errors and log, and opening an input. Every FFmpeg object is owned by a
// unique_ptr with its matching free function, so that an exception at any point releases
// everything.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

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
#include "media/media.h"

namespace dself::media::detail {

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

// av_strerror's text for an FFmpeg error code.
std::string av_error_text(int code);
// An error that is dself's fault (exit 3).
Error internal_error(const std::string& message);
FramePtr make_frame();
PacketPtr make_packet();

// The last error FFmpeg logged on this thread (e.g. "moov atom not found"): av_strerror only
// says "Invalid data found", and the log line is what tells the user what is wrong.
extern thread_local std::string last_ffmpeg_error;
// Routes FFmpeg's log to dself's (once per process).
void init_ffmpeg();
// "av_strerror text (last FFmpeg log line)" for a failed call.
std::string ffmpeg_reason(int code);
std::string seconds_text(double t);

// Opens a media file for reading, with the stream info found; InputError saying what is wrong
// with a missing, empty, truncated or non-media file (probe.cpp).
InputPtr open_input(const std::filesystem::path& path);
double to_seconds(int64_t t, AVRational time_base);
// Seconds from the file's start (the earliest stream start) to `pts` in `stream`; both
// readers measure time from there so that audio sample n and a frame at n/rate line up.
double time_from_start(const AVFormatContext* format, const AVStream* stream, int64_t pts);
double stream_fps(AVFormatContext* format, AVStream* stream);
MediaInfo describe_input(AVFormatContext* format);

}  // namespace dself::media::detail
