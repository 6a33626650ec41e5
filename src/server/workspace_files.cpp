// Files the server serves from the avatar's workspace: the report and its pictures, the source
// videos with range requests, and the renders of `say` with their text.
#include "server/detail/workspace_files.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <system_error>

#include "core/catalog.h"
#include "core/fs.h"
#include "core/workspace.h"
#include "server/detail/static_files.h"

namespace dself::server::detail {
namespace fs = std::filesystem;

namespace {

// Lets the report (written for a browser opening the workspace's report.html) read well inside the
// app: a way back, tables and charts that scroll rather than widen the page on a phone.
constexpr const char* kReportStyle =
    "<link rel=icon href='data:,'><style>.dself-back{display:inline-block;margin:0 0 1rem;font:600 0.95rem "
    "system-ui,sans-serif;"
    "color:#4f46e5;text-decoration:none}.dself-back:hover{text-decoration:underline}"
    "table{display:block;overflow-x:auto;max-width:100%}figure{overflow-x:auto;max-width:100%}"
    "img{max-width:100%}.note{overflow-wrap:anywhere}th,td{white-space:nowrap}"
    "@media (max-width:600px){body{margin:1rem auto}.sheet img{height:96px}}</style>";

std::string url_encoded(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out;
}

bool plain_name(const std::string& part) {
  if (part.empty() || part.size() > 100 || part.front() == '.') return false;
  return std::all_of(part.begin(), part.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

// "bytes=A-B", "bytes=A-", "bytes=-N" against a file of `size` bytes: [first, last], or nothing for
// a header that is absent or not one single range (then the whole file is sent). HttpError 416 for
// a range outside the file.
std::optional<std::pair<uint64_t, uint64_t>> parse_range(const std::string& header, uint64_t size) {
  if (header.rfind("bytes=", 0) != 0) return std::nullopt;
  std::string spec = header.substr(6);
  if (spec.find(',') != std::string::npos) return std::nullopt;
  size_t dash = spec.find('-');
  if (dash == std::string::npos) return std::nullopt;
  std::string a = spec.substr(0, dash), b = spec.substr(dash + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 18 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  uint64_t first = 0, last = 0;
  if (a.empty()) {
    if (!digits(b)) return std::nullopt;
    uint64_t n = std::stoull(b);
    if (n == 0 || size == 0)
      throw HttpError(416, fmt::format("the range {} is outside the {} bytes of the video", header, size));
    first = n >= size ? 0 : size - n;
    last = size - 1;
  } else {
    if (!digits(a) || (!b.empty() && !digits(b))) return std::nullopt;
    first = std::stoull(a);
    last = b.empty() ? size - 1 : std::min<uint64_t>(std::stoull(b), size - 1);
    if (first >= size || (!b.empty() && std::stoull(b) < first)) {
      throw HttpError(416, fmt::format("the range {} is outside the {} bytes of the video", header, size));
    }
  }
  return std::make_pair(first, last);
}

}  // namespace

Handled serve_report(const Request& request, const fs::path& avatar, const std::string& token) {
  fs::path page = workspace::report_path(avatar);
  std::error_code ec;
  if (!fs::is_regular_file(page, ec)) {
    throw HttpError(404,
                    "no report yet: run prepare (it writes the report), start a \"report\" job (POST /api/jobs) "
                    "or run `dself report`");
  }
  std::string html = read_file(page);
  std::string query = token.empty() ? "" : "?token=" + url_encoded(token);
  // The report names its pictures relative to the workspace (faces/<id>/...): through the API they
  // are under /api/report/faces/, and each carries the token the page was opened with.
  for (const char* quote : {"'", "\""}) {
    std::string from = fmt::format("src={}faces/", quote);
    std::string to = fmt::format("src={}/api/report/faces/", quote);
    for (size_t at = html.find(from); at != std::string::npos; at = html.find(from, at + to.size())) {
      html.replace(at, from.size(), to);
      size_t end = html.find(quote, at + to.size());
      if (end != std::string::npos && !query.empty()) html.insert(end, query);
    }
  }
  size_t head_end = html.find("</head>");
  if (head_end != std::string::npos) html.insert(head_end, kReportStyle);
  size_t body = html.find("<body>");
  std::string back = fmt::format(
      "<a class=dself-back href='/{}#/studio' data-testid=report-back>&larr; Back to the Studio</a>", query);
  if (body != std::string::npos) html.insert(body + 6, back);
  return request->create_response()
      .append_header(restinio::http_field::content_type, "text/html; charset=utf-8")
      .append_header(restinio::http_field::cache_control, "no-store")
      .set_body(std::move(html))
      .done();
}

Handled serve_face_picture(const Request& request, const fs::path& avatar, const std::string& folder,
                           const std::string& file) {
  // At most one subfolder, each part a plain name: nothing can leave faces/<folder>/.
  std::vector<std::string> parts;
  for (size_t start = 0; start <= file.size();) {
    size_t slash = file.find('/', start);
    if (slash == std::string::npos) slash = file.size();
    parts.push_back(file.substr(start, slash - start));
    start = slash + 1;
  }
  bool ok = parts.size() <= 2 && std::all_of(parts.begin(), parts.end(), plain_name);
  std::string extension = fs::path(file).extension().string();
  if (!ok || (extension != ".png" && extension != ".jpg" && extension != ".jpeg")) {
    throw HttpError(404, fmt::format("no picture faces/{}/{}", folder, file));
  }
  // faces/<source id>/ (references, mouths) or faces/identities/ (who is who's thumbnails).
  const fs::path dir = folder == "identities" ? workspace::faces_root(avatar) / "identities"
                                              : workspace::face_dir(avatar, std::stoll(folder));
  fs::path path = dir / file;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw HttpError(404, fmt::format("no picture faces/{}/{}", folder, file));
  return request->create_response()
      .append_header(restinio::http_field::content_type, content_type(path))
      .append_header(restinio::http_field::cache_control, "no-cache")
      .set_body(restinio::sendfile(path.string()))
      .done();
}

Handled serve_source_video(const Request& request, const fs::path& avatar, int64_t source_id) {
  Catalog catalog(avatar);
  fs::path path;
  for (const MediaFile& file : catalog.media(source_id)) {
    if (file.role == "video") path = avatar / file.path;
  }
  std::error_code ec;
  if (path.empty() || !fs::is_regular_file(path, ec)) {
    throw HttpError(404, fmt::format("source {} has no video in the workspace", source_id));
  }
  uint64_t size = fs::file_size(path, ec);
  if (ec) throw HttpError(404, fmt::format("source {}: cannot read its video: {}", source_id, ec.message()));
  std::optional<std::pair<uint64_t, uint64_t>> range = parse_range(header(request, "Range"), size);
  auto file = restinio::sendfile(path.string());
  if (!range) {
    return request->create_response()
        .append_header(restinio::http_field::content_type, content_type(path))
        .append_header(restinio::http_field::accept_ranges, "bytes")
        .set_body(std::move(file))
        .done();
  }
  auto [first, last] = *range;
  file.offset_and_size(first, last - first + 1);
  return request->create_response(restinio::status_partial_content())
      .append_header(restinio::http_field::content_type, content_type(path))
      .append_header(restinio::http_field::accept_ranges, "bytes")
      .append_header(restinio::http_field::content_range, fmt::format("bytes {}-{}/{}", first, last, size))
      .set_body(std::move(file))
      .done();
}

nlohmann::json list_renders(const fs::path& avatar) {
  nlohmann::json list = nlohmann::json::array();
  fs::path dir = workspace::renders_dir(avatar);
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {{"renders", list}};
  std::vector<fs::path> videos;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    std::string name = entry.path().filename().string();
    if (entry.path().extension() == ".mp4" && plain_name(name) && entry.is_regular_file(ec))
      videos.push_back(entry.path());
  }
  // Names are say-<UTC stamp>-<n>.mp4: newest first by name, then by n.
  std::sort(videos.begin(), videos.end(), [](const fs::path& a, const fs::path& b) {
    std::string x = a.filename().string(), y = b.filename().string();
    return x.size() != y.size() ? x.size() > y.size() : x > y;
  });
  for (const fs::path& video : videos) {
    std::string name = video.filename().string();
    nlohmann::json entry = {{"name", name},
                            {"video", "/api/renders/" + name},
                            {"text", ""},
                            {"size_bytes", static_cast<int64_t>(fs::file_size(video, ec))}};
    fs::path sidecar = fs::path(video).replace_extension(".json");
    if (fs::is_regular_file(sidecar, ec)) {
      nlohmann::json meta = nlohmann::json::parse(read_file(sidecar), nullptr, false);
      if (meta.is_object()) {
        for (const char* key : {"text", "duration_s", "sentences", "voice", "made_at"}) {
          if (meta.contains(key)) entry[key] = meta[key];
        }
      }
    }
    list.push_back(entry);
  }
  return {{"renders", list}};
}

void record_render(const fs::path& avatar, const std::string& text, const nlohmann::json& answer) {
  std::string video = answer.value("video", "");
  std::string name = fs::path(video).filename().string();
  if (name.empty()) return;
  nlohmann::json meta = {{"text", text}, {"made_at", utc_now()}};
  for (const char* key : {"duration_s", "sentences", "voice"}) {
    if (answer.contains(key)) meta[key] = answer[key];
  }
  write_file_atomic(workspace::renders_dir(avatar) / fs::path(name).replace_extension(".json"), meta.dump(2) + "\n");
}

}  // namespace dself::server::detail
