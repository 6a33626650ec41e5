// Checking what comes in: is a file a complete video with sound, is a captions file one.
#include <algorithm>
#include <array>
#include <cctype>
#include <cstdint>
#include <fstream>
#include <optional>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "ingest/detail/run.h"

namespace dself::ingest::detail {
namespace {

namespace fs = std::filesystem;

constexpr std::array<std::string_view, 15> video_extensions = {".mp4",  ".m4v", ".mov",  ".mkv", ".webm",
                                                               ".avi",  ".mpg", ".mpeg", ".ts",  ".mts",
                                                               ".m2ts", ".wmv", ".flv",  ".3gp", ".ogv"};

constexpr uint64_t max_captions_bytes = 20 << 20;  // far above any real captions file

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

uint64_t read_be(const unsigned char* bytes, int n) {
  uint64_t value = 0;
  for (int i = 0; i < n; ++i) value = (value << 8) | bytes[i];
  return value;
}

// An MP4/MOV file is a sequence of top-level boxes, each declaring its size; a truncated file
// has a last box that runs past the end, and one cut before its index has no 'moov'. FFmpeg
// probes a truncated "faststart" MP4 (index first) without complaint, so this is checked here.
// ref: ISO/IEC 14496-12 §4.2 (box: u32 size, 4-char type, u64 largesize when size == 1,
// size 0 = to the end of the file).
std::optional<std::string> iso_bmff_damage(std::ifstream& in, uint64_t file_size) {
  uint64_t offset = 0;
  bool has_moov = false;
  while (offset < file_size) {
    unsigned char header[16];
    uint64_t header_size = 8;
    if (file_size - offset < header_size) {
      return fmt::format("is truncated: it ends inside a box header at byte {}; copy or download it again", offset);
    }
    in.seekg(static_cast<std::streamoff>(offset));
    in.read(reinterpret_cast<char*>(header), 8);
    uint64_t size = read_be(header, 4);
    std::string type(reinterpret_cast<char*>(header + 4), 4);
    if (size == 1) {
      header_size = 16;
      if (file_size - offset < header_size) {
        return fmt::format("is truncated: it ends inside the '{}' box header; copy or download it again", type);
      }
      in.read(reinterpret_cast<char*>(header + 8), 8);
      size = read_be(header + 8, 8);
    } else if (size == 0) {
      size = file_size - offset;
    }
    if (!in) return fmt::format("cannot be read at byte {}", offset);
    if (size < header_size) {
      return fmt::format("is damaged: the '{}' box at byte {} declares an impossible size of {} bytes", type, offset,
                         size);
    }
    if (type == "moov") has_moov = true;
    if (size > file_size - offset) {
      return fmt::format(
          "is truncated: its '{}' box at byte {} needs {} bytes but the file ends {} bytes early; copy or download it "
          "again",
          type, offset, size, size - (file_size - offset));
    }
    offset += size;
  }
  if (!has_moov) {
    return std::string("is truncated or unfinished: it has no 'moov' index (the recording or download did not finish)");
  }
  return std::nullopt;
}

// An EBML variable-length integer; false at the end of the file or for an invalid one.
// ref: RFC 8794 §4 (the count of leading zero bits of the first byte gives the length).
bool read_vint(std::ifstream& in, bool keep_marker, uint64_t& value, bool& all_ones) {
  int first = in.get();
  if (first == EOF || first == 0) return false;
  int length = 1;
  while (!(first & (0x80 >> (length - 1)))) ++length;
  uint64_t data = keep_marker ? static_cast<uint64_t>(first) : static_cast<uint64_t>(first & (0xff >> length));
  bool ones = (first & (0xff >> length)) == (0xff >> length);
  for (int i = 1; i < length; ++i) {
    int byte = in.get();
    if (byte == EOF) return false;
    data = (data << 8) | static_cast<uint64_t>(byte);
    ones = ones && byte == 0xff;
  }
  value = data;
  all_ones = ones;
  return true;
}

// Matroska/WebM: the Segment after the EBML header declares its size (unless written as a live
// stream, "unknown size"); a truncated file is shorter than that.
// ref: RFC 9559 §6 (EBML header 0x1A45DFA3, Segment 0x18538067).
std::optional<std::string> matroska_damage(std::ifstream& in, uint64_t file_size) {
  in.seekg(0);
  uint64_t id = 0;
  uint64_t size = 0;
  bool unknown = false;
  if (!read_vint(in, true, id, unknown) || id != 0x1A45DFA3 || !read_vint(in, false, size, unknown)) {
    return std::string("is damaged: its Matroska header cannot be read");
  }
  in.seekg(static_cast<std::streamoff>(size), std::ios::cur);
  if (!read_vint(in, true, id, unknown) || !read_vint(in, false, size, unknown)) {
    return std::string("is truncated: it ends before its Matroska segment starts; copy or download it again");
  }
  if (id != 0x18538067 || unknown) return std::nullopt;
  uint64_t start = static_cast<uint64_t>(in.tellg());
  if (size > file_size - std::min(start, file_size)) {
    return fmt::format(
        "is truncated: its Matroska segment needs {} bytes but the file ends {} bytes early; copy or "
        "download it again",
        size, size - (file_size - start));
  }
  return std::nullopt;
}

// The container's own account of its size, for the containers whose truncation FFmpeg may not
// notice when probing; nothing for other containers.
std::optional<std::string> container_damage(const fs::path& path) {
  std::error_code ec;
  uint64_t file_size = fs::file_size(path, ec);
  if (ec) return fmt::format("cannot be read: {}", ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::string("cannot be opened: check that it is readable");
  unsigned char magic[8] = {};
  in.read(reinterpret_cast<char*>(magic), sizeof magic);
  if (in.gcount() < 8) return std::nullopt;  // too short to be either; probing says what it is
  in.clear();
  if (std::string_view(reinterpret_cast<char*>(magic + 4), 4) == "ftyp") return iso_bmff_damage(in, file_size);
  if (read_be(magic, 4) == 0x1A45DFA3) return matroska_damage(in, file_size);
  return std::nullopt;
}

}  // namespace

media::MediaInfo check_video(const fs::path& path) {
  if (auto damage = container_damage(path)) throw InputError(*damage);
  media::MediaInfo info;
  try {
    info = media::probe(path);
  } catch (const InputError& e) {
    throw InputError(fmt::format("is not a usable video: {}", e.what()));
  }
  if (!info.has_video) {
    throw InputError("has no video stream: dself needs to see the person, so give a video, not an audio file");
  }
  if (!info.has_audio) {
    throw InputError("has no audio stream: dself needs the person's voice, so a silent video cannot be used; skipped");
  }
  if (!(info.duration_s > 0)) {
    throw InputError("has no duration: the file is empty or damaged; copy or download it again");
  }
  return info;
}

bool has_video_extension(const fs::path& path) {
  std::string extension = lowercase(path.extension().string());
  return std::find(video_extensions.begin(), video_extensions.end(), extension) != video_extensions.end();
}

std::string video_extensions_text() {
  std::string text;
  for (auto extension : video_extensions) {
    if (!text.empty()) text += ", ";
    text += extension;
  }
  return text;
}

bool captions_look_valid(const fs::path& path, std::string& why_not) {
  std::error_code ec;
  uint64_t size = fs::file_size(path, ec);
  if (ec) {
    why_not = ec.message();
    return false;
  }
  if (size > max_captions_bytes) {
    why_not = fmt::format("{} bytes is too large for a captions file (limit {})", size, max_captions_bytes);
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  std::string head(4096, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (head.starts_with("\xFF\xFE") || head.starts_with("\xFE\xFF")) {
    why_not = "it is UTF-16 text: save it as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`) and ingest it again";
    return false;
  }
  if (head.find('\0') != std::string::npos) {
    why_not = "it is not text";
    return false;
  }
  if (head.starts_with("\xEF\xBB\xBF")) head.erase(0, 3);
  if (lowercase(path.extension().string()) == ".vtt" && !head.starts_with("WEBVTT")) {
    why_not = "a WebVTT file must start with \"WEBVTT\"";
    return false;
  }
  if (lowercase(path.extension().string()) == ".srt" && head.find("-->") == std::string::npos) {
    why_not = "it has no cue times (\"00:00:01,000 --> 00:00:02,000\")";
    return false;
  }
  return true;
}

std::vector<fs::path> valid_captions_in(const fs::path& dir, const std::function<bool(const std::string& name)>& wanted) {
  std::vector<fs::path> captions;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file(ec) || !wanted(entry.path().filename().string())) continue;
    std::string why_not;
    if (!captions_look_valid(entry.path(), why_not)) {
      spdlog::warn("skipping the captions {}: {}", entry.path().string(), why_not);
      continue;
    }
    captions.push_back(entry.path());
  }
  std::sort(captions.begin(), captions.end());
  return captions;
}

}  // namespace dself::ingest::detail
