#include "core/safetensors.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

namespace dself::safetensors {

static_assert(std::endian::native == std::endian::little, "safetensors are little-endian; so is every host dself runs on");

namespace {

// A header larger than this is not a weight file (the format's own limit is 100 MB).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

uint32_t float_bits(float f) { return std::bit_cast<uint32_t>(f); }
float bits_float(uint32_t b) { return std::bit_cast<float>(b); }

// ref: IEEE 754 binary16; round to nearest even, overflow to infinity, subnormals kept.
uint16_t float_to_half(float f) {
  const uint32_t x = float_bits(f);
  const uint32_t sign = (x >> 16) & 0x8000;
  const int32_t exponent = int32_t((x >> 23) & 0xff);
  uint32_t mantissa = x & 0x7fffff;
  if (exponent == 0xff) return uint16_t(sign | 0x7c00 | (mantissa ? 0x200 : 0));  // inf / nan
  int32_t e = exponent - 127 + 15;
  if (e >= 0x1f) return uint16_t(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return uint16_t(sign);
    mantissa |= 0x800000;
    const int shift = 14 - e;
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1))) ++half;
    return uint16_t(sign | half);
  }
  uint32_t half = (uint32_t(e) << 10) | (mantissa >> 13);
  const uint32_t rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;  // may carry into the exponent: correct
  return uint16_t(sign | half);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  if (exponent == 0x1f) return bits_float(sign | 0x7f800000 | (mantissa << 13));
  if (exponent == 0) {
    if (mantissa == 0) return bits_float(sign);
    int e = -1;
    do {
      ++e;
      mantissa <<= 1;
    } while (!(mantissa & 0x400));
    return bits_float(sign | uint32_t(127 - 15 - e) << 23 | (mantissa & 0x3ff) << 13);
  }
  return bits_float(sign | (exponent + 127 - 15) << 23 | mantissa << 13);
}

uint16_t float_to_bf16(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7fffffff) > 0x7f800000) return uint16_t((x >> 16) | 0x40);  // nan stays nan
  return uint16_t((x + 0x7fff + ((x >> 16) & 1)) >> 16);                  // round to nearest even
}

float bf16_to_float(uint16_t b) { return bits_float(uint32_t(b) << 16); }

DType parse_dtype(const std::string& name, const std::string& where) {
  for (DType d : {DType::F32, DType::F16, DType::BF16, DType::I32, DType::I64})
    if (name == dtype_name(d)) return d;
  throw InputError(fmt::format("{}: unsupported dtype \"{}\" (dself reads F32, F16, BF16, I32, I64)", where, name));
}

}  // namespace

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
  }
  return "?";
}

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::F16:
    case DType::BF16: return 2;
    case DType::F32:
    case DType::I32: return 4;
    case DType::I64: return 8;
  }
  return 0;
}

int64_t Tensor::element_count() const {
  // A 0 anywhere holds nothing, whatever the other dimensions (which need not fit a product).
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Tensor from_floats(std::span<const float> values, std::vector<int64_t> shape, DType dtype) {
  Tensor t{dtype, std::move(shape), {}};
  if (t.element_count() != int64_t(values.size()))
    throw std::logic_error(fmt::format("safetensors: {} values for shape [{}]", values.size(), fmt::join(t.shape, ", ")));
  t.bytes.resize(values.size() * dtype_size(dtype));
  char* out = t.bytes.data();
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::F32) {
      std::memcpy(out + 4 * i, &values[i], 4);
    } else if (dtype == DType::F16 || dtype == DType::BF16) {
      const uint16_t h = dtype == DType::F16 ? float_to_half(values[i]) : float_to_bf16(values[i]);
      std::memcpy(out + 2 * i, &h, 2);
    } else {
      throw std::logic_error("safetensors::from_floats: integer dtype");
    }
  }
  return t;
}

Tensor from_ints(std::span<const int64_t> values, std::vector<int64_t> shape, DType dtype) {
  Tensor t{dtype, std::move(shape), {}};
  if (t.element_count() != int64_t(values.size()))
    throw std::logic_error(fmt::format("safetensors: {} values for shape [{}]", values.size(), fmt::join(t.shape, ", ")));
  t.bytes.resize(values.size() * dtype_size(dtype));
  for (size_t i = 0; i < values.size(); ++i) {
    if (dtype == DType::I64) {
      std::memcpy(t.bytes.data() + 8 * i, &values[i], 8);
    } else if (dtype == DType::I32) {
      const int32_t v = int32_t(values[i]);
      std::memcpy(t.bytes.data() + 4 * i, &v, 4);
    } else {
      throw std::logic_error("safetensors::from_ints: float dtype");
    }
  }
  return t;
}

std::vector<float> to_floats(const Tensor& tensor, const std::string& name) {
  const size_t n = size_t(tensor.element_count());
  std::vector<float> out(n);
  const char* in = tensor.bytes.data();
  for (size_t i = 0; i < n; ++i) {
    uint16_t h;
    switch (tensor.dtype) {
      case DType::F32: std::memcpy(&out[i], in + 4 * i, 4); break;
      case DType::F16: std::memcpy(&h, in + 2 * i, 2); out[i] = half_to_float(h); break;
      case DType::BF16: std::memcpy(&h, in + 2 * i, 2); out[i] = bf16_to_float(h); break;
      default: throw InputError(fmt::format("{}: dtype {} where a float tensor was expected", name, dtype_name(tensor.dtype)));
    }
  }
  return out;
}

std::vector<int64_t> to_ints(const Tensor& tensor, const std::string& name) {
  const size_t n = size_t(tensor.element_count());
  std::vector<int64_t> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (tensor.dtype == DType::I64) {
      std::memcpy(&out[i], tensor.bytes.data() + 8 * i, 8);
    } else if (tensor.dtype == DType::I32) {
      int32_t v;
      std::memcpy(&v, tensor.bytes.data() + 4 * i, 4);
      out[i] = v;
    } else {
      throw InputError(fmt::format("{}: dtype {} where an integer tensor was expected", name, dtype_name(tensor.dtype)));
    }
  }
  return out;
}

std::string to_bytes(const File& file) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  uint64_t offset = 0;
  for (const auto& [name, t] : file.tensors) {
    if (t.bytes.size() != size_t(t.element_count()) * dtype_size(t.dtype))
      throw std::logic_error(fmt::format("safetensors: tensor {} holds {} bytes for its shape", name, t.bytes.size()));
    header[name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // the data starts 8-byte aligned, as the reference writer does
  const uint64_t n = json.size();
  std::string out(8, '\0');
  std::memcpy(out.data(), &n, 8);
  out.reserve(8 + n + offset);
  out += json;
  for (const auto& [name, t] : file.tensors) out += t.bytes;
  return out;
}

File from_bytes(const std::string& bytes, const std::string& where) {
  if (bytes.size() < 8)
    throw InputError(fmt::format("{}: truncated safetensors file ({} bytes, shorter than its 8-byte header length)", where,
                                 bytes.size()));
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  if (header_size > kMaxHeaderBytes || header_size > bytes.size() - 8)
    throw InputError(fmt::format("{}: not a safetensors file or truncated: header of {} bytes in a {}-byte file", where,
                                 header_size, bytes.size()));
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.substr(8, header_size));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(fmt::format("{}: bad safetensors header: {}", where, e.what()));
  }
  if (!header.is_object()) throw InputError(fmt::format("{}: bad safetensors header: not a JSON object", where));
  const uint64_t data_size = bytes.size() - 8 - header_size;
  const char* data = bytes.data() + 8 + header_size;
  File file;
  for (const auto& [name, entry] : header.items()) {
    try {
      if (name == "__metadata__") {
        for (const auto& [key, value] : entry.items()) file.metadata[key] = value.get<std::string>();
        continue;
      }
      Tensor t;
      t.dtype = parse_dtype(entry.at("dtype").get<std::string>(), where);
      t.shape = entry.at("shape").get<std::vector<int64_t>>();
      for (int64_t d : t.shape)
        if (d < 0) throw InputError(fmt::format("{}: tensor {} has a negative dimension", where, name));
      // Bound the element count by the data section as it grows, so that a forged shape cannot
      // overflow element_count() (found by fuzz/fuzz_safetensors). A shape with a 0 holds nothing.
      if (std::find(t.shape.begin(), t.shape.end(), 0) == t.shape.end()) {
        uint64_t max_elements = data_size / dtype_size(t.dtype);
        for (int64_t d : t.shape) {
          if (uint64_t(d) > max_elements)
            throw InputError(fmt::format("{}: tensor {} of shape [{}] is larger than the file's {}-byte data section",
                                         where, name, fmt::join(t.shape, ", "), data_size));
          max_elements /= uint64_t(d);
        }
      }
      const auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      if (offsets.size() != 2 || offsets[0] > offsets[1])
        throw InputError(fmt::format("{}: tensor {} has bad data_offsets", where, name));
      if (offsets[1] > data_size)
        throw InputError(fmt::format("{}: truncated: tensor {} ends at byte {} of a {}-byte data section", where, name,
                                     offsets[1], data_size));
      const uint64_t expected = uint64_t(t.element_count()) * dtype_size(t.dtype);
      if (offsets[1] - offsets[0] != expected)
        throw InputError(fmt::format("{}: tensor {} of shape [{}] {} needs {} bytes but holds {}", where, name,
                                     fmt::join(t.shape, ", "), dtype_name(t.dtype), expected, offsets[1] - offsets[0]));
      t.bytes.assign(data + offsets[0], offsets[1] - offsets[0]);
      file.tensors.emplace(name, std::move(t));
    } catch (const nlohmann::json::exception& e) {
      throw InputError(fmt::format("{}: bad safetensors header entry \"{}\": {}", where, name, e.what()));
    }
  }
  return file;
}

void write(const std::filesystem::path& path, const File& file) { write_file_atomic(path, to_bytes(file)); }

File read(const std::filesystem::path& path) { return from_bytes(read_file(path), path.string()); }

const Tensor& expect(const File& file, const std::string& name, const std::vector<int64_t>& shape,
                     const std::string& where) {
  auto it = file.tensors.find(name);
  if (it == file.tensors.end()) throw InputError(fmt::format("{}: no tensor \"{}\"", where, name));
  if (it->second.shape != shape)
    throw InputError(fmt::format("{}: tensor \"{}\" has shape [{}] where [{}] was expected (a model of another "
                                 "configuration?)",
                                 where, name, fmt::join(it->second.shape, ", "), fmt::join(shape, ", ")));
  return it->second;
}

}  // namespace dself::safetensors
