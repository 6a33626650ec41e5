// Fuzzes the WebVTT/SRT parser: any text either parses or throws InputError; anything else
// (another exception, a sanitizer report, a hang) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/error.h"
#include "transcript/transcript.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    dself::transcript::parse_captions(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.vtt");
  } catch (const dself::InputError&) {
  }
  return 0;
}
