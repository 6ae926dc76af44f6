// SPDX-License-Identifier: Apache-2.0
// fused_ffn.cpp: see fused_ffn.h. Saves x, w and the pre-activation (what at::linear +
// at::gelu keep too); rows are split in fixed blocks, so results do not depend on the
// thread count.
#include "model/fused_ffn.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <vector>

#include "core/check.h"
#include "core/error.h"
#include "model/cpu_capability.h"
#include "model/fused_ffn_kernel.h"
#include "model/kernel_parallel.h"

namespace localist {
namespace {

int64_t row_blocks(int64_t rows) { return (rows + fused::kFfnRows - 1) / fused::kFfnRows; }

struct LinearBiasGelu : public torch::autograd::Function<LinearBiasGelu> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x2, const at::Tensor& w,
                            const at::Tensor& b) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto pre = at::mm(x2, w.t());  // (rows, out), bias added by the kernel
    auto out = at::empty_like(pre);
    const int64_t rows = pre.size(0), cols = pre.size(1);
    const auto bias = b.contiguous();
    AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "linear_bias_gelu_forward", [&] {
      scalar_t *p = pre.data_ptr<scalar_t>(), *o = out.data_ptr<scalar_t>();
      const scalar_t* bp = bias.data_ptr<scalar_t>();
      kernel_parallel_for(row_blocks(rows), [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          const int64_t r0 = k * fused::kFfnRows, r1 = std::min(rows, r0 + fused::kFfnRows);
          fused_kernels_use_avx2() ? fused::AVX2::bias_gelu_forward(p, o, bp, r0, r1, cols)
                                   : fused::DEFAULT::bias_gelu_forward(p, o, bp, r0, r1, cols);
        }
      });
    });
    ctx->save_for_backward({x2, w, pre});
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x2 = saved[0], &w = saved[1], &pre = saved[2];
    const auto dout = grads[0].contiguous();
    const int64_t rows = pre.size(0), cols = pre.size(1), blocks = row_blocks(rows);
    auto dpre = at::empty_like(pre);
    auto partial = at::empty({blocks, cols}, pre.options());  // one bias-gradient row per block
    AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "linear_bias_gelu_backward", [&] {
      const scalar_t *g = dout.data_ptr<scalar_t>(), *p = pre.data_ptr<scalar_t>();
      scalar_t *d = dpre.data_ptr<scalar_t>(), *db = partial.data_ptr<scalar_t>();
      kernel_parallel_for(blocks, [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          const int64_t r0 = k * fused::kFfnRows, r1 = std::min(rows, r0 + fused::kFfnRows);
          fused_kernels_use_avx2() ? fused::AVX2::bias_gelu_backward(g, p, d, db + k * cols, r0, r1, cols)
                                   : fused::DEFAULT::bias_gelu_backward(g, p, d, db + k * cols, r0, r1, cols);
        }
      });
    });
    return {at::mm(dpre, w), at::mm(dpre.t(), x2), partial.sum(0)};
  }
};

}  // namespace

bool fused_ffn_supported(const at::Tensor& x) {
  // Under CPU autocast the kernels' own products would come out in bf16: not theirs to serve.
  return x.device().is_cpu() && (x.scalar_type() == at::kFloat || x.scalar_type() == at::kDouble) &&
         !at::autocast::is_autocast_enabled(at::kCPU);
}

at::Tensor linear_bias_gelu(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  RECORD_FUNCTION("localist::linear_bias_gelu", std::vector<c10::IValue>());  // named in profiles
  if (!fused_ffn_supported(x)) throw Error("the fused FFN runs on CPU float or double tensors");
  LOCALIST_CHECK(x.size(-1) == w.size(1) && b.size(0) == w.size(0), "fused FFN: input width ", x.size(-1),
                 " against a weight of ", w.size(0), " x ", w.size(1));
  auto sizes = x.sizes().vec();
  const auto x2 = x.reshape({-1, x.size(-1)}).contiguous();
  sizes.back() = w.size(0);
  return LinearBiasGelu::apply(x2, w, b).view(sizes);
}

}  // namespace localist
