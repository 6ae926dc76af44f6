// SPDX-License-Identifier: Apache-2.0
// test_in_process_group.cpp: the N-rank in-process Communicator double, and through it
// the code above comm/ that talks to other ranks: collectives against values computed
// here from every rank's known inputs; split groups ordered by key; faults (a rank that
// fails or stalls on its k-th call) become a named error on that rank and a timeout on
// the others that names the missing rank; GradientSync's sums equal a float64 reference
// and a stalled peer ends its wait; a block map change moves parameters and Adam moments
// bit for bit and zeroes the giver's moments.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/optim/adamw.h>

#include <chrono>

#include "checkpoint/checkpoint.h"
#include "comm/in_process_group.h"
#include "model/localist_model.h"
#include "parallel/block_parallel.h"
#include "parallel/grad_sync.h"
#include "tests/block_parallel_util.h"

using namespace localist;

namespace {

void expect_all_ok(const std::vector<RankOutcome>& out) {
  for (size_t r = 0; r < out.size(); ++r) EXPECT_TRUE(out[r].ok) << "rank " << r << ": " << out[r].error;
}

at::Tensor value_of(int rank, int64_t n) { return at::arange(n, at::kDouble).mul(rank + 1).add(0.25 * rank).sin(); }

}  // namespace

TEST(InProcessGroup, CollectivesEqualTheValuesComputedFromEveryRanksInput) {
  const int n = 3;
  const auto out = in_process_run(n, [&](std::shared_ptr<Communicator> c) {
    const int r = c->rank();
    auto sum = value_of(r, 6), avg = value_of(r, 6), mx = value_of(r, 6);
    c->all_reduce(sum, ReduceOp::kSum, "sum");
    c->all_reduce(avg, ReduceOp::kAvg, "avg");
    c->all_reduce(mx, ReduceOp::kMax, "max");
    at::Tensor ref = value_of(0, 6), ref_max = value_of(0, 6);
    for (int q = 1; q < n; ++q) ref = ref + value_of(q, 6), ref_max = at::maximum(ref_max, value_of(q, 6));
    EXPECT_LE((sum - ref).abs().max().item<double>(), 1e-12);
    EXPECT_LE((avg - ref / n).abs().max().item<double>(), 1e-12);
    EXPECT_TRUE(at::equal(mx, ref_max));
    auto b = value_of(r, 4);
    c->broadcast(b, 1, "bcast");
    EXPECT_TRUE(at::equal(b, value_of(1, 4)));
    const auto g = c->all_gather(value_of(r, 2), "gather");
    for (int q = 0; q < n; ++q) EXPECT_TRUE(at::equal(g[q], value_of(q, 2)));
    const auto rs = c->reduce_scatter(value_of(r, 6), ReduceOp::kSum, "scatter");
    EXPECT_LE((rs - ref.narrow(0, 2 * r, 2)).abs().max().item<double>(), 1e-12);
    // A ring of point-to-point messages.
    c->send(value_of(r, 3), (r + 1) % n, 7, "ring");
    auto got = at::zeros({3}, at::kDouble);
    c->recv(got, (r + n - 1) % n, 7, "ring");
    EXPECT_TRUE(at::equal(got, value_of((r + n - 1) % n, 3)));
    // Split: even and odd ranks, ordered by a key that reverses them.
    const auto sub = c->split(r % 2, -r, "parity");
    EXPECT_EQ(sub->size(), r % 2 == 0 ? 2 : 1);
    EXPECT_EQ(sub->rank(), r == 0 ? 1 : 0);  // rank 2 has the smaller key among {0, 2}
    auto one = at::ones({1}, at::kDouble);
    sub->all_reduce(one, ReduceOp::kSum, "parity sum");
    EXPECT_EQ(one.item<double>(), sub->size());
    c->barrier("end");
  });
  expect_all_ok(out);
}

TEST(InProcessGroup, AStalledRankIsNamedByTheOthersTimeoutAndAFailingRankByItsError) {
  const auto t0 = std::chrono::steady_clock::now();
  const auto stalled = in_process_run(3,
                                      [](std::shared_ptr<Communicator> c) {
                                        auto t = at::ones({2}, at::kFloat);
                                        c->all_reduce(t, ReduceOp::kSum, "first");
                                        c->all_reduce(t, ReduceOp::kSum, "second (step 4)");
                                      },
                                      /*timeout_s=*/0.5, {{2, 2, CommFault::Kind::kStall}});
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(waited, 5.0) << "the survivors must end at their timeout";
  for (int r : {0, 1}) {
    ASSERT_TRUE(stalled[r].timed_out) << stalled[r].error;
    EXPECT_NE(stalled[r].error.find("all_reduce 'second (step 4)' in group 'world'"), std::string::npos)
        << stalled[r].error;
    EXPECT_NE(stalled[r].error.find("rank(s) 2 of the group did not arrive"), std::string::npos) << stalled[r].error;
  }
  EXPECT_NE(stalled[2].error.find("injected stall"), std::string::npos) << stalled[2].error;

  const auto failed = in_process_run(2,
                                     [](std::shared_ptr<Communicator> c) {
                                       const auto sub = c->split(0, c->rank(), "all");  // call 1
                                       auto t = at::ones({2}, at::kFloat);
                                       sub->all_reduce(t, ReduceOp::kSum, "inside the split group");  // call 2
                                     },
                                     0.5, {{1, 2, CommFault::Kind::kFail}});
  EXPECT_NE(failed[1].error.find("injected failure: world rank 1 fails in all_reduce 'inside the split group'"),
            std::string::npos)
      << failed[1].error;
  ASSERT_TRUE(failed[0].timed_out) << failed[0].error;
  EXPECT_NE(failed[0].error.find("in group 'all'"), std::string::npos) << failed[0].error;

  // A split is bounded by the timeout too.
  const auto split = in_process_run(2, [](std::shared_ptr<Communicator> c) { c->split(0, 0, "late"); }, 0.3,
                                    {{0, 1, CommFault::Kind::kStall}});
  ASSERT_TRUE(split[1].timed_out) << split[1].error;
  EXPECT_NE(split[1].error.find("split 'split into 'late''"), std::string::npos) << split[1].error;
}

TEST(InProcessGroup, RanksThatDisagreeOnTheCallOrderAreTold) {
  const auto out = in_process_run(
      2,
      [](std::shared_ptr<Communicator> c) {
        auto t = at::ones({1}, at::kFloat);
        if (c->rank() == 0)
          c->all_reduce(t, ReduceOp::kSum, "gradients");
        else
          c->broadcast(t, 0, "parameters");
      },
      0.5);
  const std::string both = out[0].error + " | " + out[1].error;
  EXPECT_NE(both.find("ranks disagree on the call order"), std::string::npos) << both;
}

TEST(InProcessGroup, GradientSyncSumsOverRanksAndEndsOnAStalledPeer) {
  auto inputs = [](int r, int m) { return at::arange(14, at::kDouble).mul(0.1 * (r + 1)).add(0.37 * m - 0.5).sin(); };
  auto loss_of = [&](const at::Tensor& a, const at::Tensor& b, int r, int m) {
    const auto x = inputs(r, m).view({2, 7}).to(a.scalar_type());
    return at::tanh(x.matmul(a)).sum() + (b * inputs(r, m + 3).narrow(0, 0, 3).to(b.scalar_type())).sum();
  };
  const int n = 3;
  const auto out = in_process_run(n, [&](std::shared_ptr<Communicator> c) {
    auto gen = at::detail::createCPUGenerator(1);
    auto a = at::randn({7, 3}, gen, at::kFloat).requires_grad_(true);
    auto b = at::randn({3}, gen, at::kFloat).requires_grad_(true);
    auto unused = at::randn({5}, gen, at::kFloat).requires_grad_(true);
    GradientSync sync(c, {a, b, unused}, /*bucket_bytes=*/32);
    EXPECT_GE(sync.bucket_count(), 2);
    loss_of(a, b, c->rank(), 0).backward();
    sync.arm("gradients (step 0)");
    loss_of(a, b, c->rank(), 1).backward();
    sync.finish();
    auto ad = a.detach().to(at::kDouble).requires_grad_(true), bd = b.detach().to(at::kDouble).requires_grad_(true);
    for (int r = 0; r < n; ++r) {
      for (int m = 0; m < 2; ++m) loss_of(ad, bd, r, m).backward();
    }
    EXPECT_LE((a.grad().to(at::kDouble) - ad.grad()).abs().max().item<double>(), 1e-5);
    EXPECT_LE((b.grad().to(at::kDouble) - bd.grad()).abs().max().item<double>(), 1e-5);
    EXPECT_FALSE(unused.grad().defined());
  });
  expect_all_ok(out);

  // Rank 1 stalls on its first bucket: the others' wait ends with the step and the rank named.
  const auto stall = in_process_run(2,
                                    [&](std::shared_ptr<Communicator> c) {
                                      auto gen = at::detail::createCPUGenerator(1);
                                      auto a = at::randn({7, 3}, gen, at::kFloat).requires_grad_(true);
                                      auto b = at::randn({3}, gen, at::kFloat).requires_grad_(true);
                                      GradientSync sync(c, {a, b}, 32);
                                      sync.arm("gradients (step 9)");
                                      loss_of(a, b, c->rank(), 0).backward();
                                      sync.finish();
                                    },
                                    0.5, {{1, 1, CommFault::Kind::kStall}});
  ASSERT_TRUE(stall[0].timed_out) << stall[0].error;
  EXPECT_NE(stall[0].error.find("all_reduce 'gradients (step 9), bucket 1 of 2'"), std::string::npos) << stall[0].error;
  EXPECT_NE(stall[0].error.find("rank(s) 1 of the group did not arrive"), std::string::npos) << stall[0].error;
}

// The block-move check (tests/block_parallel_util.h) on the in-process double, 3 ranks.
TEST(InProcessGroup, ABlockMapChangeMovesParametersAndMomentsBitForBit) {
  const auto out = in_process_run(3, [&](std::shared_ptr<Communicator> world) {
    localist::test::expect_block_moves_bit_for_bit(world, {1, 8, 20});
  });
  expect_all_ok(out);
}
