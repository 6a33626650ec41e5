// Checkpoint tensors ↔ libtorch tensors.
#pragma once

#include <torch/torch.h>

#include <string>

#include "core/safetensors.h"

namespace dself::hf {

// A float32 CPU tensor of the same shape from an F32, F16 or BF16 tensor; throws InputError
// naming `name` for an integer dtype.
torch::Tensor to_torch(const safetensors::Tensor& tensor, const std::string& name = "tensor");
// A tensor stored as `dtype` (F32, F16 or BF16; rounded to nearest even).
safetensors::Tensor from_torch(const torch::Tensor& tensor, safetensors::DType dtype = safetensors::DType::F32);

// a·bᵀ for a float [..., k] and b [n, k]: through libtorch's oneDNN for 16 rows or more, a
// vectorised dot per row below (Debian's libtorch multiplies through the reference BLAS, ~10×
// slower); with gradients on (fine-tuning), a custom autograd function whose backward's products
// take the same path. Results equal torch::matmul's to rounding.
torch::Tensor matmul_nt(const torch::Tensor& a, const torch::Tensor& b);
// A Linear layer's forward through matmul_nt.
torch::Tensor linear(const torch::nn::Linear& layer, const torch::Tensor& x);

}  // namespace dself::hf
