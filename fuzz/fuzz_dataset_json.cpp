// Fuzzes the speech dataset reader (utterances.json): any JSON value either reads or throws InputError.
// Text that is not JSON at all is the JSON parser's to refuse, so it is skipped.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "speech/speech.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const nlohmann::json json = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  try {
    dself::speech::dataset_from_json(json);
  } catch (const dself::InputError&) {
  }
  return 0;
}
