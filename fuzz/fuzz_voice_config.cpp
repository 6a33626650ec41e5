// Fuzzes the trained voice's configuration readers (config.json, normalization.json): any text
// either parses or throws InputError. What parses is in range: the model's sizes within their
// limits, the normalisation finite with positive deviations.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "core/error.h"
#include "voice/detail/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    dself::voice::VoiceConfig config = dself::voice::parse_voice_config(text, "fuzz/config.json");
    const auto& m = config.model;
    if (m.dim < 4 || m.kernel_size % 2 == 0 || m.reduction < 1 || !(m.dropout >= 0 && m.dropout < 1)) std::abort();
  } catch (const dself::InputError&) {
  }
  const nlohmann::json json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded()) return 0;
  try {
    dself::voice::Normalization n = dself::voice::normalization_from_json(json, "fuzz/normalization.json");
    if (!std::isfinite(n.lf0_mean) || !(n.lf0_std > 0) || !std::isfinite(n.lf0_std)) std::abort();
    for (float v : n.mcep_std) {
      if (!(v > 0) || !std::isfinite(v)) std::abort();
    }
  } catch (const dself::InputError&) {
  }
  return 0;
}
