// safetensors files (Hugging Face's weight format): an 8-byte little-endian header length, a JSON
// header naming each tensor's dtype, shape and byte range, then the raw little-endian tensor
// bytes. Torch-free, so any stage can read and write weights (the voice, Whisper, chat LMs).
// ref: https://github.com/huggingface/safetensors (README, "Format")
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace dself::safetensors {

enum class DType { F32, F16, BF16, I32, I64 };
const char* dtype_name(DType dtype);  // "F32", ...
size_t dtype_size(DType dtype);       // bytes per element

// One tensor: its elements as raw little-endian bytes, row-major.
struct Tensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::string bytes;
  int64_t element_count() const;
};

struct File {
  std::map<std::string, Tensor> tensors;          // by name (written in name order)
  std::map<std::string, std::string> metadata;    // the header's "__metadata__" (strings only)
};

// A float tensor of this shape from `values` (element_count values), stored as `dtype`
// (F16/BF16 rounded to nearest even).
Tensor from_floats(std::span<const float> values, std::vector<int64_t> shape, DType dtype = DType::F32);
Tensor from_ints(std::span<const int64_t> values, std::vector<int64_t> shape, DType dtype = DType::I64);

// The elements as float (F32/F16/BF16) or int64 (I32/I64). Throws InputError for another dtype.
std::vector<float> to_floats(const Tensor& tensor, const std::string& name = "tensor");
std::vector<int64_t> to_ints(const Tensor& tensor, const std::string& name = "tensor");

// Serialises to the file's bytes.
std::string to_bytes(const File& file);
// Parses a file's bytes; `where` names it in errors. Throws InputError for a truncated file, a
// bad header, an unknown dtype, or byte ranges that do not match the shapes.
File from_bytes(const std::string& bytes, const std::string& where);

// Writes atomically (temporary name, then rename). Throws EnvironmentError.
void write(const std::filesystem::path& path, const File& file);
// Reads a whole file. Throws InputError naming the file when it is missing or malformed.
File read(const std::filesystem::path& path);

// The tensor `name` with exactly `shape`; throws InputError naming `where`, the tensor and both
// shapes otherwise (a checkpoint from another configuration).
const Tensor& expect(const File& file, const std::string& name, const std::vector<int64_t>& shape,
                     const std::string& where);

}  // namespace dself::safetensors
