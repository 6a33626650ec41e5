// A libtorch module's parameters <-> safetensors (core/safetensors.h), by their dotted names.
#pragma once

#include <torch/nn.h>

#include <string>

#include "core/safetensors.h"

namespace dself::voice {

// F32 tensors of every parameter and buffer, named as named_parameters() names them.
safetensors::File module_tensors(const torch::nn::Module& module);

// Copies the file's tensors into the module's parameters and buffers. Throws InputError naming
// `where` for a missing tensor or one of another shape (a model of another configuration).
void load_module_tensors(torch::nn::Module& module, const safetensors::File& file, const std::string& where);

// A tensor <-> safetensors F32 (contiguous CPU copy).
safetensors::Tensor to_safetensor(const torch::Tensor& tensor);
torch::Tensor from_safetensor(const safetensors::Tensor& tensor, const std::string& name);

}  // namespace dself::voice
