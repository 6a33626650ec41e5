#include "hf/torch.h"

#include <torch/types.h>

#include <cstring>

namespace dself::hf {

torch::Tensor to_torch(const safetensors::Tensor& tensor, const std::string& name) {
  auto out = torch::empty(tensor.shape, torch::kFloat);
  if (tensor.dtype == safetensors::DType::F32) {
    std::memcpy(out.data_ptr<float>(), tensor.bytes.data(), tensor.bytes.size());
    return out;
  }
  const auto values = safetensors::to_floats(tensor, name);
  std::memcpy(out.data_ptr<float>(), values.data(), values.size() * sizeof(float));
  return out;
}

safetensors::Tensor from_torch(const torch::Tensor& tensor, safetensors::DType dtype) {
  const auto t = tensor.detach().to(torch::kCPU, torch::kFloat).contiguous();
  std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
  return safetensors::from_floats(std::span<const float>(t.data_ptr<float>(), size_t(t.numel())), std::move(shape),
                                  dtype);
}

}  // namespace dself::hf
