// Encoding: MP4 (H.264 + AAC) with VideoWriter, 16-bit PCM WAV with write_wav and WavWriter.
// Each writes under a temporary name and renames when finished, so that a writer destroyed
// before finish() (an error, a stop) leaves no partial file.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <opencv2/imgproc.hpp>

#include "core/fs.h"
#include "media/detail/ffmpeg.h"

namespace dself::media {
using namespace detail;

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

}  // namespace dself::media
