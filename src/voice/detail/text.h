// Helpers shared by the voice stage's files.
#pragma once

#include <string_view>

namespace dself::voice {

// Whether text has a letter or digit to say (not only punctuation and spaces).
bool has_something_to_say(std::string_view text);

}  // namespace dself::voice
