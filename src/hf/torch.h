// Checkpoint tensors ↔ libtorch tensors.
#pragma once

// Declarations need only the tensor type: <torch/torch.h> costs ~15 s of compile per file.
#include <ATen/core/Tensor.h>

#include <string>

#include "core/safetensors.h"

namespace dself::hf {

// A float32 CPU tensor of the same shape from an F32, F16 or BF16 tensor; throws InputError
// naming `name` for an integer dtype.
at::Tensor to_torch(const safetensors::Tensor& tensor, const std::string& name = "tensor");
// A tensor stored as `dtype` (F32, F16 or BF16; rounded to nearest even).
safetensors::Tensor from_torch(const at::Tensor& tensor, safetensors::DType dtype = safetensors::DType::F32);

// a·bᵀ for a float [..., k] and b [n, k]: through libtorch's oneDNN for 16 rows or more, a
// vectorised dot per row below (Debian's libtorch multiplies through the reference BLAS, ~10×
// slower); torch::matmul when gradients are on. Results equal torch::matmul's to rounding.
at::Tensor matmul_nt(const at::Tensor& a, const at::Tensor& b);
// x·weightᵀ + bias (bias may be undefined) through matmul_nt: a Linear layer's forward.
at::Tensor linear(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias);

}  // namespace dself::hf
