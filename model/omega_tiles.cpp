// SPDX-License-Identifier: Apache-2.0
// omega_tiles.cpp: see omega_tiles.h. A custom autograd function: forward sums the tiles
// under no_grad; backward rebuilds each tile's small graph and asks autograd for its
// gradient, so at most one tile's (B,H,rows,keys) tensors live at a time.
#include "model/omega_tiles.h"

#include <ATen/ATen.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <limits>

#include "core/check.h"

namespace localist {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

int64_t rows_per_tile(const at::Tensor& q, int64_t wanted) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2);
  if (wanted > 0) return std::min(wanted, T);
  constexpr int64_t kLogitsPerTile = int64_t{1} << 22;
  return std::clamp<int64_t>(kLogitsPerTile / std::max<int64_t>(1, B * H * T), 1, T);
}

// Σ over the tile's (sequence, head, query) of Ω(h, i), for queries [t0, t0 + n) against
// keys [0, t0 + n): the causal keys only.
at::Tensor tile_sum(const at::Tensor& q_tile, const at::Tensor& k_keys, int64_t t0, const at::Tensor& targets,
                    double rho, const at::Tensor& onehot_keys, const at::Tensor& sizes_tile, const at::Tensor& off) {
  const int64_t n = q_tile.size(2), keys = k_keys.size(2);
  auto z = at::matmul(q_tile, k_keys.transpose(-2, -1));  // (B,H,n,keys)
  if (targets.numel() > 0) z = z + rho * targets.narrow(1, t0, n).narrow(2, 0, keys).unsqueeze(1).to(z.scalar_type());
  const auto opts = q_tile.options().dtype(at::kLong);
  const auto future = at::arange(keys, opts).unsqueeze(0) > (at::arange(n, opts) + t0).unsqueeze(1);
  z = z.masked_fill(future, -std::numeric_limits<double>::infinity());
  const auto alpha = at::softmax(z, -1);
  const auto sq_sum = at::matmul(alpha * alpha, onehot_keys.unsqueeze(1));  // (B,H,n,K)
  // sqrt has an infinite slope at 0: clamp inside, and empty groups contribute 0.
  const auto norm = at::where(sizes_tile > 0, at::sqrt(at::clamp_min(sq_sum, 1e-30)), at::zeros_like(sq_sum));
  return (off * at::sqrt(sizes_tile) * norm).sum();
}

struct TileContext {
  at::Tensor onehot, sizes, off;  // (B,T,K) one-hot key blocks, (B,1,T,K) |G_k(i)|, (1,H,1,K)
};

TileContext tile_context(const at::Tensor& q, const at::Tensor& hard, const at::Tensor& head_block, int64_t blocks) {
  TileContext c;
  c.onehot = at::one_hot(hard, blocks).to(q.scalar_type());
  c.sizes = c.onehot.cumsum(1).unsqueeze(1);
  c.off = (1.0 - at::one_hot(head_block, blocks).to(q.scalar_type())).view({1, -1, 1, blocks});
  return c;
}

struct OmegaTiles : public torch::autograd::Function<OmegaTiles> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& q, const at::Tensor& k, const at::Tensor& targets,
                            double rho, const at::Tensor& hard, const at::Tensor& head_block, int64_t blocks,
                            int64_t tile_rows) {
    at::AutoDispatchBelowADInplaceOrView guard;
    const int64_t T = q.size(2), rows = rows_per_tile(q, tile_rows);
    const TileContext c = tile_context(q, hard, head_block, blocks);
    auto total = at::zeros({}, q.options());
    for (int64_t t0 = 0; t0 < T; t0 += rows) {
      const int64_t n = std::min(rows, T - t0);
      total = total + tile_sum(q.narrow(2, t0, n), k.narrow(2, 0, t0 + n), t0, targets, rho,
                               c.onehot.narrow(1, 0, t0 + n), c.sizes.narrow(2, t0, n), c.off);
    }
    ctx->save_for_backward({q, k, targets, hard, head_block});
    ctx->saved_data["rho"] = rho;
    ctx->saved_data["blocks"] = blocks;
    ctx->saved_data["rows"] = rows;
    return total / static_cast<double>(q.size(0) * q.size(1) * T);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q = saved[0], &k = saved[1], &targets = saved[2];
    const double rho = ctx->saved_data["rho"].toDouble();
    const int64_t blocks = ctx->saved_data["blocks"].toInt(), rows = ctx->saved_data["rows"].toInt();
    const int64_t T = q.size(2);
    const TileContext c = tile_context(q, saved[3], saved[4], blocks);
    const auto scale = grads[0] / static_cast<double>(q.size(0) * q.size(1) * T);
    auto dq = at::zeros_like(q), dk = at::zeros_like(k);
    at::AutoGradMode enable(true);
    for (int64_t t0 = 0; t0 < T; t0 += rows) {
      const int64_t n = std::min(rows, T - t0);
      const auto q_tile = q.narrow(2, t0, n).detach().requires_grad_(true);
      const auto k_keys = k.narrow(2, 0, t0 + n).detach().requires_grad_(true);
      const auto sum =
          tile_sum(q_tile, k_keys, t0, targets, rho, c.onehot.narrow(1, 0, t0 + n), c.sizes.narrow(2, t0, n), c.off);
      const auto g = torch::autograd::grad({sum}, {q_tile, k_keys}, {scale});
      dq.narrow(2, t0, n).copy_(g[0]);
      dk.narrow(2, 0, t0 + n).add_(g[1]);
    }
    return {dq, dk, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor penalty_omega_tiled(const OmegaTileInput& in) {
  LOCALIST_CHECK(in.q.dim() == 4 && in.k.sizes() == in.q.sizes() && in.hard.dim() == 2 && in.blocks > 0,
                 "omega tiles: q ", in.q.sizes(), ", k ", in.k.sizes(), ", hard ", in.hard.sizes(), ", blocks ",
                 in.blocks);
  // An empty tensor, not an undefined one, stands for "no point rules": autograd's
  // function machinery wants every tensor argument defined.
  const auto targets = in.rule_targets.defined() ? in.rule_targets : at::empty({0}, in.q.options().dtype(at::kBool));
  return OmegaTiles::apply(in.q, in.k, targets, in.rho, in.hard, in.head_block, in.blocks, in.tile_rows);
}

}  // namespace localist
