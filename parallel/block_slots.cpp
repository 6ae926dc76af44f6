// SPDX-License-Identifier: Apache-2.0
// block_slots.cpp: see block_slots.h.
#include "parallel/block_slots.h"

namespace localist {

std::vector<at::Tensor> block_slot_views_of(const at::Tensor& t, int which, const ModelConfig& c, int64_t row) {
  const int64_t n = c.heads_per_block * c.head_dim;
  if (which == 2) return {t.narrow(1, row * n, n)};
  const int64_t all = t.size(0) / 3;  // k_max slots' rows, or the rows a block-parallel rank holds
  const auto rows = which == 0 ? t.view({3, all, t.size(1)}) : t.view({3, all});
  std::vector<at::Tensor> v;
  for (int64_t j = 0; j < 3; ++j) v.push_back(rows[j].narrow(0, row * n, n));
  return v;
}

std::vector<at::Tensor> block_slot_views(const at::Tensor& qkv_w, const at::Tensor& qkv_b, const at::Tensor& out_w,
                                         const ModelConfig& c, int64_t row) {
  std::vector<at::Tensor> v = block_slot_views_of(qkv_w, 0, c, row);
  for (auto& x : block_slot_views_of(qkv_b, 1, c, row)) v.push_back(x);
  v.push_back(block_slot_views_of(out_w, 2, c, row).front());
  return v;
}

std::vector<at::Tensor> block_slot_params(const LocalistLayer& l, const ModelConfig& c, int64_t slot) {
  return block_slot_views(l.qkv_w, l.qkv_b, l.out_w, c, l.row(slot));
}

std::vector<at::Tensor> block_slot_grads(const LocalistLayer& l, const ModelConfig& c, int64_t slot) {
  return block_slot_views(l.qkv_w.grad(), l.qkv_b.grad(), l.out_w.grad(), c, l.row(slot));
}

std::vector<at::Tensor> block_slot_moments(const LocalistLayer& l, const ModelConfig& c, int64_t slot,
                                           const MomentsOf& moments) {
  const auto w = moments(l.qkv_w), b = moments(l.qkv_b), o = moments(l.out_w);
  if (w.size() != 2 || b.size() != 2 || o.size() != 2) return {};
  const int64_t r = l.row(slot);
  auto out = block_slot_views(w[0], b[0], o[0], c, r);
  for (auto& v : block_slot_views(w[1], b[1], o[1], c, r)) out.push_back(v);
  return out;
}

}  // namespace localist
