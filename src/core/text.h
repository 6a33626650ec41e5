// Text helpers: markup escapes (HTML, SVG and WebVTT cue text share the same three), and the
// UTF-8 check and Windows-1252 conversion for text files of unknown encoding (captions).
#pragma once

#include <string>
#include <string_view>

namespace dself {

// ASCII letters lowered; other bytes (UTF-8 included) kept as they are.
std::string ascii_lower(std::string text);

// Escapes &, < and > (and " when escape_quotes: needed in HTML attributes, not in WebVTT).
std::string escape_markup(std::string_view text, bool escape_quotes = true);

// Whether text is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, <= U+10FFFF).
bool is_utf8(std::string_view text);

// Windows-1252 (a superset of Latin-1's printable characters, what Windows editors save as
// "ANSI") to UTF-8. The five bytes it leaves undefined become U+FFFD.
std::string windows1252_to_utf8(std::string_view text);

}  // namespace dself
