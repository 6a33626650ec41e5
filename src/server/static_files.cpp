// Static files of the web UI; every path is checked before and after the file system resolves it.
#include <fmt/format.h>

#include <system_error>

#include "server/detail/static_files.h"

namespace dself::server::detail {
namespace fs = std::filesystem;

namespace {

bool is_within(const fs::path& root, const fs::path& path) {
  auto r = root.begin();
  auto p = path.begin();
  for (; r != root.end(); ++r, ++p) {
    if (p == path.end() || *r != *p) return false;
  }
  return true;
}

const char* kNoWebUi =
    "<!doctype html><meta charset=utf-8><title>dself</title>"
    "<h1>dself is running</h1>"
    "<p>The web UI is not built. Build it with <code>make web</code> (it lands in <code>web/dist</code>), "
    "or point <code>dself serve --web-root DIR</code> at a built one. The API is at <code>/api/</code> "
    "(see docs/API.md).</p>";

}  // namespace

std::optional<fs::path> resolve_static(const fs::path& root, std::string_view url_path) {
  if (url_path.empty() || url_path.front() != '/') return std::nullopt;
  // Encoded separators and dots have no business in a UI asset's name: refuse them outright
  // rather than decode them into something the checks below must catch.
  std::string lower(url_path);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* bad : {"%2f", "%5c", "%2e", "%00"}) {
    if (lower.find(bad) != std::string::npos) return std::nullopt;
  }
  std::optional<std::string> decoded = percent_decode(url_path);
  if (!decoded) return std::nullopt;
  if (decoded->find('\\') != std::string::npos || decoded->find('\0') != std::string::npos) return std::nullopt;
  fs::path relative;
  size_t start = 1;
  while (start <= decoded->size()) {
    size_t end = decoded->find('/', start);
    if (end == std::string::npos) end = decoded->size();
    std::string segment = decoded->substr(start, end - start);
    if (segment == "..") return std::nullopt;
    if (!segment.empty() && segment != ".") relative /= segment;
    start = end + 1;
  }
  fs::path candidate = root / relative;
  std::error_code ec;
  if (fs::is_directory(candidate, ec)) candidate /= "index.html";
  if (!fs::is_regular_file(candidate, ec)) return std::nullopt;
  // Symbolic links inside the root may point anywhere: judge the real path.
  fs::path real = fs::canonical(candidate, ec);
  if (ec || !is_within(root, real)) return std::nullopt;
  return real;
}

std::string content_type(const fs::path& file) {
  std::string ext = file.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".jpg" || ext == ".jpeg") return "image/jpeg";
  if (ext == ".gif") return "image/gif";
  if (ext == ".webp") return "image/webp";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".woff2") return "font/woff2";
  if (ext == ".woff") return "font/woff";
  if (ext == ".ttf") return "font/ttf";
  if (ext == ".wasm") return "application/wasm";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  if (ext == ".mp4") return "video/mp4";
  if (ext == ".webm") return "video/webm";
  if (ext == ".wav") return "audio/wav";
  return "application/octet-stream";
}

Handled serve_static(const Request& request, const fs::path& root) {
  std::string path(request->header().path());
  std::error_code ec;
  if (root.empty() || !fs::is_regular_file(root / "index.html", ec)) {
    if (path == "/" || path == "/index.html") {
      return request->create_response()
          .append_header(restinio::http_field::content_type, "text/html; charset=utf-8")
          .set_body(kNoWebUi)
          .done();
    }
    return reply_error(request, 404, fmt::format("{} not found (the web UI is not built: run `make web`)", path));
  }
  std::optional<fs::path> file = resolve_static(root, path);
  // A page route of the single-page UI (no extension, not an existing file) gets the UI itself.
  bool page_route = !file && fs::path(path).extension().empty() && path.find("..") == std::string::npos &&
                    path.find('%') == std::string::npos && path.find('\\') == std::string::npos;
  if (page_route) file = fs::canonical(root / "index.html", ec);
  if (!file || ec) return reply_error(request, 404, fmt::format("{} not found", path));
  auto sf = restinio::sendfile(file->string());
  // Hashed assets never change; the page itself always revalidates.
  bool hashed_asset = path.rfind("/assets/", 0) == 0;
  return request->create_response()
      .append_header(restinio::http_field::content_type, content_type(*file))
      .append_header(restinio::http_field::cache_control, hashed_asset ? "public, max-age=31536000, immutable" : "no-cache")
      .append_header("X-Content-Type-Options", "nosniff")
      .set_body(std::move(sf))
      .done();
}

}  // namespace dself::server::detail
