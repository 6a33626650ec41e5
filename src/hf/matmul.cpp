// Products with a transposed right side (x Wᵀ), the model's one heavy operation, made fast on
// Debian's CPU libtorch. That libtorch is built against the generic (netlib) BLAS, which runs a
// float GEMM at about 1.5 GFLOPS here; its built-in oneDNN (MKL-DNN) runs the same product at
// 15-30 GFLOPS, and a plain vectorised dot product per output row beats both for one row (a
// decode step is memory-bound). With gradients on (training) or off the CPU, torch::matmul.
// Used by the chat LMs and Whisper alike.
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/types.h>

#include "hf/torch.h"

namespace dself::hf {

namespace {

// Vectorised by the compiler for AVX2+FMA where the CPU has it (GCC function multiversioning),
// plain SSE2 otherwise; eight partial sums keep the order of additions fixed.
__attribute__((target_clones("avx2,fma", "default"))) float dot(const float* a, const float* b, int64_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int j = 0; j < 8; ++j) s[j] += a[i + j] * b[i + j];
  }
  float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
  for (; i < n; ++i) t += a[i] * b[i];
  return t;
}

torch::Tensor rows_times_weight(const torch::Tensor& x, const torch::Tensor& w) {
  const int64_t m = x.size(0), in = x.size(1), out = w.size(0);
  auto y = torch::empty({m, out});
  const float* W = w.data_ptr<float>();
  const float* X = x.data_ptr<float>();
  float* Y = y.data_ptr<float>();
  // Chunks of at least ~64k multiply-adds, so that small products stay on one thread.
  const int64_t grain = std::max<int64_t>(1, 65536 / std::max<int64_t>(in, 1));
  at::parallel_for(0, out, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = 0; r < m; ++r) {
      for (int64_t o = begin; o < end; ++o) Y[r * out + o] = dot(W + o * in, X + r * in, in);
    }
  });
  return y;
}

// a·bᵀ with gradients, each of its three products through the fast path (gradients off inside a
// custom function's forward and backward): da = g·b, db = gᵀ·a (ref: torch/csrc/autograd/
// FunctionsManual.cpp mm_mat1_backward / mm_mat2_backward). Fine-tuning Whisper's decoder trains
// through it: the reference BLAS made a tiny.en step about 7.7 s on one thread (docs/STT.md).
struct MatmulNt : torch::autograd::Function<MatmulNt> {
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b) {
    ctx->save_for_backward({a, b});
    torch::NoGradGuard no_grad;
    return matmul_nt(a, b);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    torch::NoGradGuard no_grad;
    const auto saved = ctx->get_saved_variables();
    const auto &a = saved[0], &b = saved[1];
    const auto g = grads[0].reshape({-1, grads[0].size(-1)}).contiguous();
    torch::Tensor da, db;
    if (ctx->needs_input_grad(0)) da = matmul_nt(g, b.t().contiguous()).view(a.sizes());
    if (ctx->needs_input_grad(1))
      db = matmul_nt(g.t().contiguous(), a.reshape({-1, a.size(-1)}).t().contiguous());
    return {da, db};
  }
};

}  // namespace

torch::Tensor matmul_nt(const torch::Tensor& a, const torch::Tensor& b) {
  if (torch::GradMode::is_enabled() && (a.requires_grad() || b.requires_grad()) && a.is_cpu() && b.is_cpu() &&
      a.scalar_type() == torch::kFloat && b.scalar_type() == torch::kFloat && b.dim() == 2 && a.dim() >= 2)
    return MatmulNt::apply(a, b);
  if (torch::GradMode::is_enabled() && !a.requires_grad() && !b.requires_grad()) {
    torch::NoGradGuard no_grad;  // nothing to differentiate (a frozen layer before any adapter): the fast path
    return matmul_nt(a, b);
  }
  if (a.dim() > 2 && !torch::GradMode::is_enabled() && a.is_cpu() && a.scalar_type() == torch::kFloat) {
    auto sizes = a.sizes().vec();
    sizes.back() = b.size(0);
    return matmul_nt(a.reshape({-1, a.size(-1)}), b).view(sizes);
  }
  if (torch::GradMode::is_enabled() || !a.is_cpu() || a.scalar_type() != torch::kFloat || a.dim() != 2) {
    return torch::matmul(a, b.t());
  }
  auto x = a.contiguous();
  auto w = b.contiguous();
  if (x.size(0) < 16) return rows_times_weight(x, w);
  return torch::mkldnn_linear(x.to_mkldnn(), w.to_mkldnn(), {}).to_dense();
}

}  // namespace dself::hf

namespace dself::hf {

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  auto y = matmul_nt(x, weight);
  return bias.defined() ? y + bias : y;
}

}  // namespace dself::hf
