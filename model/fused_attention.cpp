// SPDX-License-Identifier: Apache-2.0
// fused_attention.cpp: see fused_attention.h. The autograd function saves qkv, the
// biases, the gate, each query's log-sum-exp and Ω's per-group factors (B,H,T,K): linear
// in T. Threads take (sequence, head, query tile) forward and (sequence, head) backward,
// so every gradient row has one writer and the result does not depend on the thread count.
#include "model/fused_attention.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <vector>

#include "core/check.h"
#include "core/error.h"
#include "model/cpu_capability.h"
#include "model/fused_attention_kernel.h"
#include "model/kernel_parallel.h"

namespace localist {
namespace {

template <typename S>
double run_forward_tile(const fused::Problem<S>& p, int64_t b, int64_t h, int64_t i0, int64_t i1, S* scratch) {
  return fused_kernels_use_avx2() ? fused::AVX2::forward_tile(p, b, h, i0, i1, scratch)
                                  : fused::DEFAULT::forward_tile(p, b, h, i0, i1, scratch);
}

template <typename S>
void run_backward_head(const fused::Problem<S>& p, int64_t b, int64_t h, S* scratch) {
  fused_kernels_use_avx2() ? fused::AVX2::backward_head(p, b, h, scratch)
                           : fused::DEFAULT::backward_head(p, b, h, scratch);
}

// Absent optional inputs travel as empty tensors: autograd functions take no undefined input.
bool given(const at::Tensor& t) { return t.numel() > 0; }

template <typename S>
fused::Problem<S> problem_of(const at::Tensor& qkv, const at::Tensor& beta, const at::Tensor& gate,
                             const at::Tensor& targets, double rho, double scale, const at::Tensor& hard,
                             const at::Tensor& head_block, const at::Tensor& counts, int64_t heads, int64_t blocks) {
  fused::Problem<S> p;
  p.B = qkv.size(0), p.T = qkv.size(1), p.H = heads, p.dh = qkv.size(2) / (3 * heads), p.K = blocks;
  p.qkv = qkv.data_ptr<S>();
  p.beta = given(beta) ? beta.data_ptr<S>() : nullptr;
  p.gate = given(gate) ? gate.data_ptr<S>() : nullptr;
  p.targets = given(targets) ? targets.data_ptr<bool>() : nullptr;
  p.rho = static_cast<S>(rho), p.scale = static_cast<S>(scale);
  if (given(counts)) {
    p.hard = hard.data_ptr<int64_t>(), p.head_block = head_block.data_ptr<int64_t>();
    p.counts = counts.data_ptr<int32_t>();
  }
  return p;
}

int64_t tiles_of(int64_t T) { return (T + fused::kFusedTile - 1) / fused::kFusedTile; }

struct FusedAttentionFunction : public torch::autograd::Function<FusedAttentionFunction> {
  // Inputs: qkv, beta and gate (or empty), then the constants. Outputs: heads, Ω.
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& qkv,
                                                const at::Tensor& beta, const at::Tensor& gate,
                                                const at::Tensor& targets, const at::Tensor& hard,
                                                const at::Tensor& head_block, const at::Tensor& counts, int64_t heads,
                                                int64_t blocks, double scale, double rho) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const int64_t B = qkv.size(0), T = qkv.size(1), dh = qkv.size(2) / (3 * heads);
    auto out = at::empty({B, T, heads, dh}, qkv.options());
    auto lse = at::empty({B, heads, T}, qkv.options());
    auto coef = at::empty({given(counts) ? B * heads * T * blocks : 0}, qkv.options());
    const int64_t tiles = tiles_of(T), n = B * heads * tiles;
    std::vector<double> omega_parts(static_cast<size_t>(n), 0.0);
    AT_DISPATCH_FLOATING_TYPES(qkv.scalar_type(), "fused_attention_forward", [&] {
      auto p = problem_of<scalar_t>(qkv, beta, gate, targets, rho, scale, hard, head_block, counts, heads, blocks);
      p.out = out.data_ptr<scalar_t>(), p.lse = lse.data_ptr<scalar_t>();
      if (given(counts)) p.omega_coef = coef.data_ptr<scalar_t>();
      kernel_parallel_for(n, [&](int64_t begin, int64_t end) {
        std::vector<scalar_t> scratch(static_cast<size_t>(fused::scratch_size(T, dh)));
        for (int64_t w = begin; w < end; ++w) {
          const int64_t t = w % tiles, bh = w / tiles, h = bh % heads, b = bh / heads;
          const int64_t i0 = t * fused::kFusedTile, i1 = std::min(T, i0 + fused::kFusedTile);
          omega_parts[static_cast<size_t>(w)] = run_forward_tile(p, b, h, i0, i1, scratch.data());
        }
      });
    });
    double omega_sum = 0;
    for (double v : omega_parts) omega_sum += v;  // fixed order: independent of the thread count
    const double queries = static_cast<double>(B * heads * T);
    auto omega = at::scalar_tensor(given(counts) ? omega_sum / queries : 0.0, qkv.options());
    ctx->save_for_backward({qkv, beta, gate, targets, hard, head_block, counts, lse, coef});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["blocks"] = blocks;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["rho"] = rho;
    if (!given(counts)) ctx->mark_non_differentiable({omega});
    return {out, omega};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &qkv = saved[0], &beta = saved[1], &gate = saved[2], &targets = saved[3], &hard = saved[4],
               &head_block = saved[5], &counts = saved[6], &lse = saved[7], &coef = saved[8];
    const int64_t heads = ctx->saved_data["heads"].toInt(), blocks = ctx->saved_data["blocks"].toInt();
    const double scale = ctx->saved_data["scale"].toDouble(), rho = ctx->saved_data["rho"].toDouble();
    const int64_t B = qkv.size(0), T = qkv.size(1), dh = qkv.size(2) / (3 * heads);
    auto dqkv = at::zeros_like(qkv);
    at::Tensor dbeta = given(beta) ? at::empty_like(beta) : at::Tensor();
    at::Tensor dgate = given(gate) ? at::empty_like(gate) : at::Tensor();
    const at::Tensor dout = grads[0].defined() ? grads[0].contiguous() : at::zeros({B, T, heads, dh}, qkv.options());
    const double omega_grad =
        grads[1].defined() && given(counts) ? grads[1].item<double>() / static_cast<double>(B * heads * T) : 0.0;
    AT_DISPATCH_FLOATING_TYPES(qkv.scalar_type(), "fused_attention_backward", [&] {
      auto p = problem_of<scalar_t>(qkv, beta, gate, targets, rho, scale, hard, head_block, counts, heads, blocks);
      p.lse = lse.data_ptr<scalar_t>();
      if (given(counts)) p.omega_coef = coef.data_ptr<scalar_t>();
      p.dout = dout.data_ptr<scalar_t>(), p.dqkv = dqkv.data_ptr<scalar_t>();
      p.dbeta = dbeta.defined() ? dbeta.data_ptr<scalar_t>() : nullptr;
      p.dgate = dgate.defined() ? dgate.data_ptr<scalar_t>() : nullptr;
      p.omega_grad = omega_grad;
      kernel_parallel_for(B * heads, [&](int64_t begin, int64_t end) {
        std::vector<scalar_t> scratch(static_cast<size_t>(fused::scratch_size(T, dh)));
        for (int64_t w = begin; w < end; ++w) run_backward_head(p, w / heads, w % heads, scratch.data());
      });
    });
    return {dqkv,         dbeta,        dgate,        at::Tensor(), at::Tensor(), at::Tensor(),
            at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

bool fused_attention_supported(const at::Tensor& qkv) {
  // Under CPU autocast the kernels' own products would come out in bf16: not theirs to serve.
  return qkv.device().is_cpu() && (qkv.scalar_type() == at::kFloat || qkv.scalar_type() == at::kDouble) &&
         !at::autocast::is_autocast_enabled(at::kCPU);
}

const char* fused_attention_capability() { return fused_kernels_use_avx2() ? "AVX2" : "DEFAULT"; }

AttentionKernelOutput fused_attention(const AttentionKernelInput& in) {
  RECORD_FUNCTION("localist::fused_attention", std::vector<c10::IValue>());  // named in profiles
  if (!fused_attention_supported(in.qkv)) throw Error("the fused attention runs on CPU float or double tensors");
  const int64_t B = in.qkv.size(0), T = in.qkv.size(1);
  LOCALIST_CHECK(in.heads > 0 && in.qkv.size(2) == 3 * in.heads * in.head_dim, "fused attention: qkv width ",
                 in.qkv.size(2), " is not 3 x ", in.heads, " heads x ", in.head_dim);
  const auto qkv = in.qkv.contiguous();
  const auto none = at::empty({0}, qkv.options());
  const auto beta = in.key_bias.defined() ? in.key_bias.to(qkv.scalar_type()).contiguous() : none;
  const auto gate = in.gate.defined() ? in.gate.to(qkv.scalar_type()).contiguous() : none;
  const auto targets = in.rule_targets.defined() ? in.rule_targets.to(at::kBool).contiguous() : none;
  at::Tensor hard = none, head_block = none, counts = none;
  if (in.hard.defined()) {
    hard = in.hard.to(at::kLong).contiguous();
    head_block = in.head_block.to(at::kLong).contiguous();
    counts = at::one_hot(hard, in.blocks).cumsum(1).to(at::kInt).contiguous();  // (B,T,K)
  }
  LOCALIST_CHECK(!in.key_bias.defined() || (beta.size(0) == B && beta.size(1) == T && beta.size(2) == in.heads),
                 "fused attention: the key bias is not (B, T, H)");
  LOCALIST_CHECK(!in.gate.defined() || (gate.size(0) == B && gate.size(1) == T && gate.size(2) == in.heads),
                 "fused attention: the gate is not (B, T, H)");
  const auto outs = FusedAttentionFunction::apply(qkv, beta, gate, targets, hard, head_block, counts, in.heads,
                                                  in.blocks, in.scale, in.rho);
  AttentionKernelOutput r;
  r.heads = outs[0];
  if (in.hard.defined()) r.omega = outs[1];
  return r;
}

}  // namespace localist
