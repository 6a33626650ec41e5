// FFmpeg's errors and log for the media library.
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <array>
#include <cstdarg>
#include <mutex>

#include "media/detail/ffmpeg.h"

namespace dself::media::detail {

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

thread_local std::string last_ffmpeg_error;

namespace {

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

}  // namespace

void init_ffmpeg() {
  static std::once_flag once;
  std::call_once(once, [] {
    av_log_set_level(AV_LOG_WARNING);
    av_log_set_callback(ffmpeg_log);
  });
}

std::string ffmpeg_reason(int code) {
  std::string reason = av_error_text(code);
  if (!last_ffmpeg_error.empty() && last_ffmpeg_error != reason) reason += " (" + last_ffmpeg_error + ")";
  return reason;
}

std::string seconds_text(double t) { return fmt::format("{:.1f} s", t); }

}  // namespace dself::media::detail
