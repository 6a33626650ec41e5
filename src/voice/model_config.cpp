#include "voice/detail/model_config.h"

#include <fmt/format.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace dself::voice {

nlohmann::json to_json(const AcousticModelOptions& o) {
  return {{"phone_count", o.phone_count},       {"dim", o.dim},
          {"encoder_layers", o.encoder_layers}, {"decoder_layers", o.decoder_layers},
          {"kernel_size", o.kernel_size},       {"predictor_dim", o.predictor_dim},
          {"reduction", o.reduction},           {"dropout", o.dropout}};
}

AcousticModelOptions model_options_from_json(const nlohmann::json& json, const std::string& where) {
  AcousticModelOptions o;
  auto get = [&](const char* key, int64_t lo, int64_t hi) {
    if (!json.contains(key) || !json.at(key).is_number_integer())
      throw InputError(fmt::format("{}: model.{} is missing or not an integer", where, key));
    const int64_t v = json.at(key).get<int64_t>();
    if (v < lo || v > hi) throw InputError(fmt::format("{}: model.{} = {} is outside {}..{}", where, key, v, lo, hi));
    return v;
  };
  o.phone_count = get("phone_count", 2, 1000);
  o.dim = get("dim", 4, 4096);
  o.encoder_layers = get("encoder_layers", 0, 64);
  o.decoder_layers = get("decoder_layers", 0, 64);
  o.kernel_size = get("kernel_size", 1, 31);
  if (o.kernel_size % 2 == 0) throw InputError(fmt::format("{}: model.kernel_size must be odd", where));
  o.predictor_dim = get("predictor_dim", 4, 4096);
  o.reduction = get("reduction", 1, 16);
  if (json.contains("dropout")) {
    // A probability: libtorch refuses anything else when the model is built (found by
    // fuzz/fuzz_voice_config: 5.1 was taken).
    if (!json.at("dropout").is_number() || !(json.at("dropout").get<double>() >= 0) ||
        !(json.at("dropout").get<double>() < 1)) {
      throw InputError(fmt::format("{}: model.dropout must be a number from 0 to below 1", where));
    }
    o.dropout = json.at("dropout").get<double>();
  }
  return o;
}

nlohmann::json to_json(const Normalization& n) {
  return {{"mcep_mean", n.mcep_mean}, {"mcep_std", n.mcep_std}, {"lf0_mean", n.lf0_mean},
          {"lf0_std", n.lf0_std},     {"bap_mean", n.bap_mean}, {"bap_std", n.bap_std}};
}

namespace {

// A JSON number as a float: finite and within float's range (a larger double converted to float
// is undefined behaviour), else InputError naming the field.
float finite_float(const nlohmann::json& value, const std::string& where, const char* field) {
  if (!value.is_number()) throw InputError(fmt::format("{}: {} is not a number", where, field));
  const double v = value.get<double>();
  if (!std::isfinite(v) || std::abs(v) > 1e30) {
    throw InputError(fmt::format("{}: {} = {} is not a usable value", where, field, v));
  }
  return static_cast<float>(v);
}

std::vector<float> finite_floats(const nlohmann::json& json, const std::string& where, const char* field,
                                 size_t size) {
  if (!json.contains(field) || !json.at(field).is_array() || json.at(field).size() != size) {
    throw InputError(fmt::format("{}: {} must be a list of {} numbers", where, field, size));
  }
  std::vector<float> values;
  for (const auto& v : json.at(field)) values.push_back(finite_float(v, where, field));
  return values;
}

void require_positive(const std::vector<float>& values, const std::string& where, const char* field) {
  for (float v : values) {
    if (!(v > 0)) throw InputError(fmt::format("{}: {} holds {}; deviations must be above 0", where, field, v));
  }
}

}  // namespace

// Every value finite and within float's range, the deviations above 0: the model divides by them.
Normalization normalization_from_json(const nlohmann::json& json, const std::string& where) {
  if (!json.is_object()) throw InputError(fmt::format("{}: malformed normalisation stats: not a JSON object", where));
  Normalization n;
  n.mcep_mean = finite_floats(json, where, "mcep_mean", kMcepDims);
  n.mcep_std = finite_floats(json, where, "mcep_std", kMcepDims);
  n.bap_mean = finite_floats(json, where, "bap_mean", kBapDims);
  n.bap_std = finite_floats(json, where, "bap_std", kBapDims);
  if (!json.contains("lf0_mean") || !json.contains("lf0_std")) {
    throw InputError(fmt::format("{}: malformed normalisation stats: lf0_mean and lf0_std are needed", where));
  }
  n.lf0_mean = finite_float(json.at("lf0_mean"), where, "lf0_mean");
  n.lf0_std = finite_float(json.at("lf0_std"), where, "lf0_std");
  require_positive(n.mcep_std, where, "mcep_std");
  require_positive(n.bap_std, where, "bap_std");
  require_positive({n.lf0_std}, where, "lf0_std");
  return n;
}

VoiceConfig parse_voice_config(std::string_view text, const std::string& where) {
  const nlohmann::json config = nlohmann::json::parse(text, nullptr, false);
  if (config.is_discarded() || !config.is_object()) {
    throw InputError(fmt::format("{}: not a JSON object; train the voice again with `dself train voice`", where));
  }
  VoiceConfig parsed;
  try {
    if (config.at("format") != "dself-voice")
      throw InputError(fmt::format("{}: not a dself voice model (format {})", where,
                                   config.at("format").dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
    parsed.phones = config.at("phones").get<std::vector<std::string>>();
    parsed.speech_s = config.at("speech_s").get<double>();
    parsed.model = model_options_from_json(config.at("model"), where);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: malformed voice config: {}", where, e.what()));
  }
  if (!std::isfinite(parsed.speech_s) || parsed.speech_s < 0) {
    throw InputError(fmt::format("{}: speech_s = {} is not a number of seconds", where, parsed.speech_s));
  }
  return parsed;
}

}  // namespace dself::voice
