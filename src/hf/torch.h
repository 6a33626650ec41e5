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

}  // namespace dself::hf
