// SPDX-License-Identifier: Apache-2.0
// fused_routing.cpp: see fused_routing.h. Saves the input, r (rows x a) and π; rows are
// split in fixed blocks whose partial dW_r and dA add in a fixed order, so results do not
// depend on the thread count.
#include "model/fused_routing.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <torch/csrc/autograd/custom_function.h>

#include <string>
#include <vector>

#include "core/check.h"
#include "core/error.h"
#include "model/cpu_capability.h"
#include "model/fused_routing_kernel.h"
#include "model/kernel_parallel.h"

namespace localist {
namespace {

int64_t route_blocks(int64_t rows) { return (rows + fused::kRouteRows - 1) / fused::kRouteRows; }

template <typename S>
fused::RouteProblem<S> route_problem(const at::Tensor& x, const at::Tensor& w, const at::Tensor& anchors, double tau,
                                     const at::Tensor& r, const at::Tensor& pi) {
  fused::RouteProblem<S> p;
  p.d = x.size(1), p.a = w.size(0), p.K = anchors.size(0);
  p.x = x.data_ptr<S>(), p.w = w.data_ptr<S>(), p.anchors = anchors.data_ptr<S>();
  p.inv_tau = static_cast<S>(1.0 / tau);
  p.r = r.data_ptr<S>(), p.pi = pi.data_ptr<S>();
  return p;
}

struct RoutingFunction : public torch::autograd::Function<RoutingFunction> {
  // Outputs: π, and the router vectors r (not differentiable: traces read them).
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                                                const at::Tensor& w, const at::Tensor& anchors, double tau) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const int64_t rows = x.size(0);
    auto r = at::empty({rows, w.size(0)}, x.options());
    auto pi = at::empty({rows, anchors.size(0)}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_routing_forward", [&] {
      const auto p = route_problem<scalar_t>(x, w, anchors, tau, r, pi);
      kernel_parallel_for(route_blocks(rows), [&](int64_t begin, int64_t end) {
        for (int64_t k = begin; k < end; ++k) {
          const int64_t r0 = k * fused::kRouteRows, r1 = std::min(rows, r0 + fused::kRouteRows);
          fused_kernels_use_avx2() ? fused::AVX2::route_forward(p, r0, r1) : fused::DEFAULT::route_forward(p, r0, r1);
        }
      });
    });
    ctx->save_for_backward({x, w, anchors, r, pi});
    ctx->saved_data["tau"] = tau;
    ctx->mark_non_differentiable({r});
    return {pi, r};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &w = saved[1], &anchors = saved[2], &r = saved[3], &pi = saved[4];
    const double tau = ctx->saved_data["tau"].toDouble();
    const int64_t rows = x.size(0), a = w.size(0), K = anchors.size(0), blocks = route_blocks(rows);
    const auto dpi = grads[0].contiguous();
    auto dx = at::empty_like(x);
    auto dw = at::empty({blocks, a, x.size(1)}, x.options());
    auto da = at::empty({blocks, K, a}, x.options());
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "fused_routing_backward", [&] {
      auto p = route_problem<scalar_t>(x, w, anchors, tau, r, pi);
      p.dpi = dpi.data_ptr<scalar_t>(), p.dx = dx.data_ptr<scalar_t>();
      scalar_t *dwp = dw.data_ptr<scalar_t>(), *dap = da.data_ptr<scalar_t>();
      kernel_parallel_for(blocks, [&](int64_t begin, int64_t end) {
        std::vector<scalar_t> scratch(static_cast<size_t>(fused::route_scratch_size(a, K)));
        for (int64_t k = begin; k < end; ++k) {
          const int64_t r0 = k * fused::kRouteRows, r1 = std::min(rows, r0 + fused::kRouteRows);
          scalar_t *bw = dwp + k * a * p.d, *ba = dap + k * K * a;
          fused_kernels_use_avx2() ? fused::AVX2::route_backward(p, r0, r1, bw, ba, scratch.data())
                                   : fused::DEFAULT::route_backward(p, r0, r1, bw, ba, scratch.data());
        }
      });
    });
    return {dx, dw.sum(0), da.sum(0), at::Tensor()};
  }
};

}  // namespace

bool fused_routing_supported(const at::Tensor& xn) {
  // Under CPU autocast the kernels' own products would come out in bf16: not theirs to serve.
  return xn.device().is_cpu() && (xn.scalar_type() == at::kFloat || xn.scalar_type() == at::kDouble) &&
         !at::autocast::is_autocast_enabled(at::kCPU);
}

FusedRouting fused_routing(const at::Tensor& xn, const at::Tensor& router_w, const at::Tensor& anchors, double tau) {
  RECORD_FUNCTION("localist::fused_routing", std::vector<c10::IValue>());  // named in profiles
  if (!fused_routing_supported(xn)) throw Error("the fused routing runs on CPU float or double tensors");
  LOCALIST_CHECK(xn.size(-1) == router_w.size(1) && anchors.size(1) == router_w.size(0), "fused routing: input width ",
                 xn.size(-1), ", router ", router_w.size(0), " x ", router_w.size(1), ", anchors of width ",
                 anchors.size(1));
  auto sizes = xn.sizes().vec();
  const auto x2 = xn.reshape({-1, xn.size(-1)}).contiguous();
  const auto dtype = x2.scalar_type();
  const auto outs = RoutingFunction::apply(x2, router_w.to(dtype).contiguous(), anchors.to(dtype).contiguous(), tau);
  FusedRouting r;
  sizes.back() = anchors.size(0);
  r.pi = outs[0].view(sizes);
  sizes.back() = router_w.size(0);
  r.router = outs[1].view(sizes);
  return r;
}

}  // namespace localist
