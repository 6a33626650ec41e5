// Text made safe for markup: HTML, SVG and WebVTT cue text share the same three escapes.
#pragma once

#include <string>
#include <string_view>

namespace dself {

// Escapes &, < and > (and " when escape_quotes: needed in HTML attributes, not in WebVTT).
std::string escape_markup(std::string_view text, bool escape_quotes = true);

}  // namespace dself
