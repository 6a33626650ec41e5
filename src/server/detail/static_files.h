// The built web UI, served so that no request can reach a file outside the web root.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "server/detail/http.h"

namespace dself::server::detail {

// The file a URL path names inside `root` (canonical), or nothing when there is none there.
// Refused (nothing) before the file system is asked: malformed or encoded separators and dots
// ("%2f", "%2e%2e", "%5c"), "..", backslashes and NUL; after: anything whose real path (symbolic
// links resolved) is not inside the root. "/" and directories mean their index.html.
std::optional<std::filesystem::path> resolve_static(const std::filesystem::path& root, std::string_view url_path);

// The Content-Type for a file, from its extension.
std::string content_type(const std::filesystem::path& file);

// Answers GET/HEAD for a path outside /api/: the file, or the web UI's index.html for a page
// route (a path without an extension), or 404; without a built web UI, a page saying how to
// build it (`make web`).
Handled serve_static(const Request& request, const std::filesystem::path& root);

}  // namespace dself::server::detail
