// What the server serves from the avatar's workspace besides JSON: the prepare report with its
// pictures, the person's own source videos (with HTTP range requests, so that a browser can seek
// to a moment), and the list of `say` renders with the text each one says.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "server/detail/http.h"

namespace dself::server::detail {

// GET /api/report: report.html made fit to be read through the API: its pictures (written as
// `faces/<id>/...`, relative to the workspace) point at GET /api/report/faces/..., carrying
// `token` when the server has one; wide tables and charts scroll inside a phone's width; a link
// leads back to the Studio. HttpError 404 when no report was written yet.
Handled serve_report(const Request& request, const std::filesystem::path& avatar, const std::string& token);

// GET /api/report/faces/<folder>/<file>: a PNG or JPEG picture of faces/<folder>/, the folder a
// source id or "identities" (one level of subfolder allowed, e.g. references/ref_000.png); 404 for
// anything else.
Handled serve_face_picture(const Request& request, const std::filesystem::path& avatar, const std::string& folder,
                           const std::string& file);

// GET /api/sources/<id>/video: the source's video file from the workspace, honouring a single
// byte range (206 with Content-Range; 416 outside the file). HttpError 404 for an unknown source.
Handled serve_source_video(const Request& request, const std::filesystem::path& avatar, int64_t source_id);

// The renders of `say` in renders/, newest first: {"renders": [{"name", "video", "text",
// "duration_s", "voice", "made_at", "size_bytes"}]} ("text" from the sidecar renders/NAME.json
// that record_render writes; empty for a render made without one).
nlohmann::json list_renders(const std::filesystem::path& avatar);

// Writes renders/NAME.json beside a finished render: the text it says and what POST /api/say
// answered (duration, sentences, voice), so that the list survives a reload and a restart.
void record_render(const std::filesystem::path& avatar, const std::string& text, const nlohmann::json& answer);

}  // namespace dself::server::detail
