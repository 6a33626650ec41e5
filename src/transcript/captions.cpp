// Caption files (WebVTT, SRT) to words with times.
// ref: https://www.w3.org/TR/webvtt1/ (cue timings, cue text tags and timestamps)
#include <algorithm>
#include <cctype>
#include <cstring>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/text.h"
#include "transcript/transcript.h"

namespace dself::transcript {
namespace {

struct Cue {
  double start_s = 0;
  double end_s = 0;
  std::vector<std::string> lines;  // payload, tags still in
  int line_number = 0;             // of the timing line, for messages
};

struct CaptionFile {
  std::string language;  // from a WebVTT "Language:" header; empty when absent
  std::vector<Cue> cues;
};

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> split_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::string line;
  for (char c : text) {
    if (c == '\n') {
      lines.push_back(line);
      line.clear();
    } else if (c != '\r') {
      line += c;
    }
  }
  lines.push_back(line);
  return lines;
}

// "01:02:03.456", "02:03.456" (WebVTT) or "01:02:03,456" (SRT) to seconds; nothing if malformed.
std::optional<double> parse_timestamp(std::string_view s) {
  std::vector<std::string> parts;
  std::string part;
  for (char c : s) {
    if (c == ':') {
      parts.push_back(part);
      part.clear();
    } else {
      part += c == ',' ? '.' : c;
    }
  }
  parts.push_back(part);
  if (parts.size() < 2 || parts.size() > 3) return std::nullopt;
  double seconds = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const std::string& p = parts[i];
    bool last = i + 1 == parts.size();
    if (p.empty()) return std::nullopt;
    for (char c : p) {
      if (!std::isdigit(static_cast<unsigned char>(c)) && !(last && c == '.')) return std::nullopt;
    }
    if (last && (p.find('.') == std::string::npos || p.size() < 4)) return std::nullopt;
    // One '.' with digits either side, and few enough digits for std::stod to parse: it throws
    // std::invalid_argument for "..04.000" and std::out_of_range for 400 digits (found by
    // fuzz/fuzz_captions).
    if (last && (std::count(p.begin(), p.end(), '.') != 1 || p.front() == '.' || p.back() == '.')) return std::nullopt;
    if (p.size() > 12) return std::nullopt;
    seconds = seconds * 60 + std::stod(p);
  }
  return seconds;
}

bool is_timing_line(const std::string& line) { return line.find("-->") != std::string::npos; }

Cue parse_timing(const std::string& line, int line_number, const std::string& name) {
  size_t arrow = line.find("-->");
  std::string start_text = trim(line.substr(0, arrow));
  std::istringstream rest(line.substr(arrow + 3));
  std::string end_text;
  rest >> end_text;  // cue settings ("align:start position:0%") follow; they are layout only
  auto start = parse_timestamp(start_text);
  auto end = parse_timestamp(end_text);
  if (!start || !end) {
    throw InputError(fmt::format("{} line {}: malformed cue timing '{}' (expected 00:00:01.000 --> 00:00:02.000)",
                                 name, line_number, line));
  }
  if (*end < *start) {
    throw InputError(fmt::format("{} line {}: cue ends ({}) before it starts ({})", name, line_number, end_text,
                                 start_text));
  }
  Cue cue;
  cue.start_s = *start;
  cue.end_s = *end;
  cue.line_number = line_number;
  return cue;
}

// Blocks separated by blank lines; each cue block is [identifier] timing payload...
CaptionFile parse_blocks(const std::vector<std::string>& lines, size_t first, const std::string& name, bool srt) {
  CaptionFile file;
  size_t i = first;
  while (i < lines.size()) {
    // Only a truly empty line ends a block: YouTube's cues hold lines of a single space.
    while (i < lines.size() && lines[i].empty()) ++i;
    if (i >= lines.size()) break;
    size_t block_start = i;
    std::vector<size_t> block;
    while (i < lines.size() && !lines[i].empty()) block.push_back(i++);
    if (trim(lines[block[0]]).empty()) continue;
    const std::string head = trim(lines[block[0]]);
    if (!srt && (head.rfind("NOTE", 0) == 0 || head == "STYLE" || head == "REGION")) continue;
    size_t timing = 0;
    if (!is_timing_line(lines[block[0]])) timing = 1;  // a cue identifier (WebVTT) or index (SRT)
    if (timing >= block.size() || !is_timing_line(lines[block[timing]])) {
      throw InputError(fmt::format("{} line {}: expected a cue timing line ('00:00:01.000 --> 00:00:02.000'), found '{}'",
                                   name, block_start + 1, head));
    }
    Cue cue = parse_timing(lines[block[timing]], static_cast<int>(block[timing] + 1), name);
    for (size_t k = timing + 1; k < block.size(); ++k) cue.lines.push_back(lines[block[k]]);
    file.cues.push_back(std::move(cue));
  }
  return file;
}

CaptionFile parse_file(std::string_view text, const std::string& name) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte order mark
  std::vector<std::string> lines = split_lines(text);
  size_t first = 0;
  while (first < lines.size() && trim(lines[first]).empty()) ++first;
  if (first == lines.size()) throw InputError(fmt::format("{}: the caption file is empty", name));
  if (lines[first].rfind("WEBVTT", 0) == 0) {
    CaptionFile file;
    size_t i = first + 1;
    for (; i < lines.size() && !trim(lines[i]).empty(); ++i) {
      std::string header = trim(lines[i]);
      if (is_timing_line(header)) break;  // no blank line after the header: tolerated
      if (header.rfind("Language:", 0) == 0) file.language = trim(header.substr(9));
    }
    CaptionFile cues = parse_blocks(lines, i, name, false);
    file.cues = std::move(cues.cues);
    return file;
  }
  const std::string index = trim(lines[first]);
  bool looks_srt = first + 1 < lines.size() && is_timing_line(lines[first + 1]) && !index.empty() &&
                   std::all_of(index.begin(), index.end(), [](unsigned char c) { return std::isdigit(c); });
  if (looks_srt) return parse_blocks(lines, first, name, true);
  throw InputError(fmt::format("{}: not a caption file dself reads: expected WebVTT (starting 'WEBVTT') or SRT "
                               "(starting with a cue number and a timing line)",
                               name));
}

std::string decode_entities(const std::string& s) {
  static const std::pair<const char*, const char*> named[] = {
      {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"},
      {"&#39;", "'"}, {"&nbsp;", " "}, {"&lrm;", ""}, {"&rlm;", ""}};
  std::string out;
  for (size_t i = 0; i < s.size();) {
    bool matched = false;
    if (s[i] == '&') {
      for (auto [entity, replacement] : named) {
        if (s.compare(i, std::strlen(entity), entity) == 0) {
          out += replacement;
          i += std::strlen(entity);
          matched = true;
          break;
        }
      }
      if (!matched && i + 2 < s.size() && s[i + 1] == '#') {
        size_t semicolon = s.find(';', i);
        if (semicolon != std::string::npos && semicolon - i <= 8) {
          long code = std::strtol(s.substr(i + 2, semicolon - i - 2).c_str(), nullptr, 10);
          if (code > 0 && code < 128) out += static_cast<char>(code);
          i = semicolon + 1;
          matched = true;
        }
      }
    }
    if (!matched) out += s[i++];
  }
  return out;
}

// A caption line as text pieces, each starting at a time (-1: no time given).
struct Piece {
  std::string text;
  double start_s = -1;
};

std::vector<Piece> parse_cue_text(const std::string& line) {
  std::vector<Piece> pieces(1);
  for (size_t i = 0; i < line.size();) {
    if (line[i] == '<') {
      size_t close = line.find('>', i);
      if (close == std::string::npos) {
        pieces.back().text += line.substr(i);
        break;
      }
      std::string tag = line.substr(i + 1, close - i - 1);
      if (auto t = parse_timestamp(tag)) pieces.push_back(Piece{"", *t});
      i = close + 1;  // formatting tags (<c>, <i>, <v Name>, </c>) carry no words
    } else {
      pieces.back().text += line[i++];
    }
  }
  for (auto& piece : pieces) piece.text = decode_entities(piece.text);
  return pieces;
}

// Sound annotations and speaker marks are not words the person said.
bool is_annotation(const std::string& token) {
  if (token == ">>" || token == "-") return true;
  if (token.size() >= 2 && ((token.front() == '[' && token.back() == ']') ||
                            (token.front() == '(' && token.back() == ')'))) {
    return true;
  }
  return token != "&" && std::none_of(token.begin(), token.end(), [](unsigned char c) { return std::isalnum(c); });
}

std::string plain_text(const std::string& line) {
  std::string text;
  for (const auto& piece : parse_cue_text(line)) text += piece.text;
  std::istringstream words(text);
  std::string word, out;
  while (words >> word) out += (out.empty() ? "" : " ") + word;
  return out;
}

// Words of one caption line; untimed words are spread evenly between the timed ones around them.
void append_line_words(const std::string& line, double line_start_s, double line_end_s, std::vector<Word>& words) {
  std::vector<Piece> pieces = parse_cue_text(line);
  pieces.front().start_s = line_start_s;
  size_t first = words.size();
  std::string open_bracket;  // inside a bracketed annotation spanning tokens: "[Music playing]"
  for (const auto& piece : pieces) {
    std::istringstream tokens(piece.text);
    std::string token;
    bool first_in_piece = true;
    while (tokens >> token) {
      double start = first_in_piece ? piece.start_s : -1;
      first_in_piece = false;
      if (!open_bracket.empty()) {
        if (token.back() == open_bracket[0]) open_bracket.clear();
        continue;
      }
      if ((token.front() == '[' && token.find(']') == std::string::npos) ||
          (token.front() == '(' && token.find(')') == std::string::npos)) {
        open_bracket = token.front() == '[' ? "]" : ")";
        continue;
      }
      if (is_annotation(token)) continue;
      words.push_back(Word{token, start, -1, 1});
    }
  }
  // Fill missing starts by spreading the gap between known times over the untimed words.
  size_t n = words.size();
  for (size_t i = first; i < n;) {
    if (words[i].start_s >= 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < n && words[j].start_s < 0) ++j;
    double from = i > first ? words[i - 1].start_s : line_start_s;
    double to = j < n ? words[j].start_s : line_end_s;
    double step = (to - from) / static_cast<double>(j - i + (i > first ? 1 : 0));
    for (size_t k = i; k < j; ++k) words[k].start_s = from + step * static_cast<double>(k - i + (i > first ? 1 : 0));
    i = j;
  }
}

// A transcript in another language is no use for an English voice or persona.
bool looks_english(const std::vector<Word>& words) {
  static const std::set<std::string> common = {
      "the", "a", "an", "and", "or", "but", "i", "you", "it", "is", "are", "was", "to", "of", "in", "on",
      "that", "this", "with", "for", "my", "we", "they", "he", "she", "be", "have", "so", "at", "do", "not"};
  if (words.size() < 20) return true;  // too little to judge
  size_t hits = 0;
  for (const auto& w : words) {
    std::string lower;
    for (char c : w.text) {
      if (std::isalpha(static_cast<unsigned char>(c))) lower += static_cast<char>(std::tolower(c));
    }
    hits += common.count(lower);
  }
  return static_cast<double>(hits) / static_cast<double>(words.size()) > 0.08;
}

}  // namespace

Transcript parse_captions(std::string_view text, const std::string& name) {
  if (text.starts_with("\xFF\xFE") || text.starts_with("\xFE\xFF")) {
    throw InputError(fmt::format("{}: the captions are UTF-16 text; save them as UTF-8 (e.g. `iconv -f UTF-16 -t "
                                 "UTF-8 FILE > FILE.utf8`) and ingest them again",
                                 name));
  }
  // Captions saved by Windows editors are often Windows-1252 ("ANSI"): not UTF-8, they are read as
  // that rather than refused (every later stage, JSON included, needs UTF-8).
  std::string converted;
  if (!is_utf8(text)) {
    spdlog::warn("{}: the captions are not UTF-8; reading them as Windows-1252 (Latin-1). If the text looks "
                 "wrong, save the file as UTF-8",
                 name);
    converted = windows1252_to_utf8(text);
    text = converted;
  }
  CaptionFile file = parse_file(text, name);
  if (!file.language.empty() && file.language.rfind("en", 0) != 0) {
    throw InputError(fmt::format("{}: the captions are in '{}', not English: remove them or prepare with "
                                 "--stt pocketsphinx",
                                 name, file.language));
  }
  bool has_word_timings = false;
  for (const auto& cue : file.cues) {
    for (const auto& line : cue.lines) {
      for (const auto& piece : parse_cue_text(line)) has_word_timings |= piece.start_s >= 0;
    }
  }

  Transcript transcript;
  transcript.engine = "captions";
  transcript.model = name;
  // YouTube's automatic captions repeat the previous line above the new one, and insert
  // 10 ms cues that only repeat; a line is new unless it equals one of the last ones emitted.
  std::vector<std::string> recent;
  for (const auto& cue : file.cues) {
    for (const auto& line : cue.lines) {
      std::string plain = plain_text(line);
      if (plain.empty()) continue;
      bool repeated = std::find(recent.begin(), recent.end(), plain) != recent.end();
      bool continues = !transcript.segments.empty() && cue.start_s <= transcript.segments.back().end_s + 0.05;
      if (repeated && (has_word_timings || continues)) continue;
      size_t before = transcript.words.size();
      append_line_words(line, cue.start_s, cue.end_s, transcript.words);
      recent.push_back(plain);
      if (recent.size() > 3) recent.erase(recent.begin());
      if (transcript.words.size() == before) continue;  // only annotations, e.g. "[Music]"
      transcript.segments.push_back(Segment{plain, cue.start_s, cue.end_s});
      for (size_t k = before; k < transcript.words.size(); ++k) transcript.words[k].end_s = cue.end_s;
    }
  }
  // A word lasts until the next one starts, but not past its cue.
  for (size_t k = 0; k + 1 < transcript.words.size(); ++k) {
    auto& w = transcript.words[k];
    w.end_s = std::min(w.end_s, transcript.words[k + 1].start_s);
    if (w.end_s <= w.start_s) w.end_s = w.start_s + 0.01;
  }
  if (!looks_english(transcript.words)) {
    throw InputError(fmt::format("{}: the captions do not look like English: remove them or prepare with "
                                 "--stt pocketsphinx",
                                 name));
  }
  return transcript;
}

Transcript read_captions(const std::filesystem::path& path) {
  return parse_captions(read_file(path), path.string());
}

}  // namespace dself::transcript
