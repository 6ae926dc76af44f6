// SPDX-License-Identifier: Apache-2.0
// test_model_flops.cpp: model/model_flops.h against hand counts for two shapes (the
// arithmetic written out below), and its growth with the active blocks.
#include <gtest/gtest.h>

#include "model/model_flops.h"

TEST(ModelFlops, EqualsAHandCountForTwoShapes) {
  localist::ModelConfig a;  // d 128, 2 layers, context 128, 4 blocks of 1 head of 32, d_a 8, FFN 512, bytes
  a.d_model = 128, a.n_layers = 2, a.context = 128, a.heads_per_block = 1, a.head_dim = 32, a.anchor_dim = 8;
  a.ffn_mult = 4;
  // A = 4·1·32 = 128. Per layer: qkv 3·128·128 = 49,152; out 128·128 = 16,384; router
  // 8·128 = 1,024; anchors 4·8 = 32; FFN 2·512·128 = 131,072: 197,664. Two layers
  // 395,328 + head 258·128 = 33,024: 428,352 weights · 6 = 2,570,112; attention
  // 12·2·128·128 = 393,216. Total 2,963,328.
  EXPECT_EQ(localist::model_flops_per_token(a, 4, 258), 2963328.0);

  localist::ModelConfig
      b;  // d 256, 4 layers, context 256, 6 active blocks of 2 heads of 16, d_a 4, FFN 512, GPT-2 vocabulary
  b.d_model = 256, b.n_layers = 4, b.context = 256, b.heads_per_block = 2, b.head_dim = 16, b.anchor_dim = 4;
  b.ffn_mult = 2, b.k_max = 8;
  // A = 6·2·16 = 192. Per layer: qkv 3·192·256 = 147,456; out 256·192 = 49,152; router
  // 4·256 = 1,024; anchors 6·4 = 24; FFN 2·512·256 = 262,144: 459,800. Four layers
  // 1,839,200 + head 50,257·256 = 12,865,792: 14,704,992 · 6 = 88,229,952; attention
  // 12·4·192·256 = 2,359,296. Total 90,589,248.
  EXPECT_EQ(localist::model_flops_per_token(b, 6, 50257), 90589248.0);
}

TEST(ModelFlops, AnActiveBlockAddsItsHeadsWork) {
  localist::ModelConfig m;
  // One more block of h_b·d_h = 32 units: q/k/v and output 4·32·d weights, one anchor of
  // d_a, and 12·L·32·T for its attention; the rest is unchanged.
  const double one = localist::model_flops_per_token(m, 5, 300) - localist::model_flops_per_token(m, 4, 300);
  const double L = m.n_layers, d = m.d_model, T = m.context, u = m.heads_per_block * m.head_dim;
  EXPECT_EQ(one, 6 * L * (4 * u * d + m.anchor_dim) + 12 * L * u * T);
}
