#include "voice/detail/weights.h"

#include <fmt/format.h>

#include <cstring>

#include "core/error.h"

namespace dself::voice {

safetensors::Tensor to_safetensor(const torch::Tensor& tensor) {
  const auto t = tensor.detach().to(torch::kCPU, torch::kFloat).contiguous();
  safetensors::Tensor out;
  out.dtype = safetensors::DType::F32;
  out.shape.assign(t.sizes().begin(), t.sizes().end());
  out.bytes.assign(static_cast<const char*>(t.data_ptr()), size_t(t.numel()) * sizeof(float));
  return out;
}

torch::Tensor from_safetensor(const safetensors::Tensor& tensor, const std::string& name) {
  const auto values = safetensors::to_floats(tensor, name);
  return torch::from_blob(const_cast<float*>(values.data()), tensor.shape, torch::kFloat).clone();
}

safetensors::File module_tensors(const torch::nn::Module& module) {
  safetensors::File file;
  for (const auto& p : module.named_parameters()) file.tensors[p.key()] = to_safetensor(p.value());
  for (const auto& b : module.named_buffers()) file.tensors[b.key()] = to_safetensor(b.value());
  return file;
}

void load_module_tensors(torch::nn::Module& module, const safetensors::File& file, const std::string& where) {
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& name, torch::Tensor& target) {
    std::vector<int64_t> shape(target.sizes().begin(), target.sizes().end());
    const auto& t = safetensors::expect(file, name, shape, where);
    target.copy_(from_safetensor(t, where + ": " + name));
  };
  for (auto& p : module.named_parameters()) load(p.key(), p.value());
  for (auto& b : module.named_buffers()) load(b.key(), b.value());
}

}  // namespace dself::voice
