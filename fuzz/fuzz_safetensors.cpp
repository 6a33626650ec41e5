// Fuzzes the safetensors reader: any bytes either parse or throw InputError. What parses is
// converted to floats or ints and written back, which must parse again to the same tensors.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace st = dself::safetensors;
  st::File file;
  try {
    file = st::from_bytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz.safetensors");
  } catch (const dself::InputError&) {
    return 0;
  }
  for (const auto& [name, tensor] : file.tensors) {
    const bool is_float = tensor.dtype == st::DType::F32 || tensor.dtype == st::DType::F16 ||
                          tensor.dtype == st::DType::BF16;
    if (is_float) {
      if (st::to_floats(tensor, name).size() != size_t(tensor.element_count())) std::abort();
    } else if (st::to_ints(tensor, name).size() != size_t(tensor.element_count())) {
      std::abort();
    }
  }
  const st::File again = st::from_bytes(st::to_bytes(file), "fuzz.safetensors written back");
  if (again.tensors.size() != file.tensors.size() || again.metadata != file.metadata) std::abort();
  for (const auto& [name, tensor] : file.tensors) {
    const st::Tensor& other = again.tensors.at(name);
    if (other.dtype != tensor.dtype || other.shape != tensor.shape || other.bytes != tensor.bytes) std::abort();
  }
  return 0;
}
