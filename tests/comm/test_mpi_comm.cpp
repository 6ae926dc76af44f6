// SPDX-License-Identifier: Apache-2.0
// test_mpi_comm.cpp: the MPI Communicator under a real mpirun (1-4 ranks): every
// collective gives exact results, including sizes that do not divide evenly, for
// float, double and int64; non-blocking all-reduce; point-to-point ring; sub-groups; the world agrees with the
// launcher; a peer that never sends turns into a CommTimeout instead of a hang.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <chrono>

#include "comm/launch_env.h"
#include "comm/mpi_communicator.h"
#include "tests/main/mpi_gtest_main.h"

using namespace localist;

namespace {
std::shared_ptr<Communicator> g_world = nullptr;
struct WorldSetter : ::testing::Environment {
  void SetUp() override { g_world = localist::test::mpi_test_world(); }
  void TearDown() override { g_world.reset(); }
};
const auto* const kWorldSetter = ::testing::AddGlobalTestEnvironment(new WorldSetter);
}  // namespace

TEST(MpiComm, WorldMatchesTheLauncher) {
  const LaunchEnv env = launch_env_detect();
  EXPECT_EQ(g_world->size(), env.world_size);
  EXPECT_EQ(g_world->rank(), env.rank);
}

TEST(MpiComm, AllReduceExactForUnevenSizesAndTypes) {
  const int64_t n = g_world->size(), r = g_world->rank();
  for (int64_t len : {1, 7, 1001}) {
    for (auto type : {at::kFloat, at::kDouble, at::kLong}) {
      const auto base = at::arange(len, at::kLong);
      auto t = (base + 1000 * r).to(type);
      g_world->all_reduce(t, ReduceOp::kSum, "sum");
      const auto expect = (base * n + 1000 * n * (n - 1) / 2).to(type);
      EXPECT_TRUE(at::equal(t, expect)) << "len " << len << " type " << at::toString(type);
      auto m = (base + 1000 * r).to(type);
      g_world->all_reduce(m, ReduceOp::kMax, "max");
      EXPECT_TRUE(at::equal(m, (base + 1000 * (n - 1)).to(type)));
    }
    auto a = at::full({len}, static_cast<double>(r + 1), at::kDouble);
    g_world->all_reduce(a, ReduceOp::kAvg, "avg");
    EXPECT_TRUE(at::allclose(a, at::full({len}, (n + 1) / 2.0, at::kDouble), 0, 1e-15));
  }
}

TEST(MpiComm, NonBlockingAllReduceCompletesExactlyAndInOrder) {
  const int64_t n = g_world->size(), r = g_world->rank();
  std::vector<at::Tensor> ts;
  std::vector<std::shared_ptr<CommWork>> works;
  for (int64_t len : {3, 1001, 65537}) {
    ts.push_back((at::arange(len, at::kLong) + r).to(at::kFloat));
    works.push_back(g_world->all_reduce_async(ts.back(), ReduceOp::kSum, "async sum"));
  }
  auto avg = at::full({5}, static_cast<double>(r), at::kDouble);
  works.push_back(g_world->all_reduce_async(avg, ReduceOp::kAvg, "async avg"));
  // test() drives progress; the first work may finish before the last is waited on.
  const auto t0 = std::chrono::steady_clock::now();
  while (!works.front()->test()) {
    ASSERT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 30.0);
  }
  for (auto& w : works) w->wait();
  for (auto& w : works) EXPECT_TRUE(w->test());
  for (const auto& t : ts) {
    const auto expect = (at::arange(t.numel(), at::kLong) * n + n * (n - 1) / 2).to(at::kFloat);
    EXPECT_TRUE(at::equal(t, expect)) << t.numel();
  }
  EXPECT_TRUE(at::allclose(avg, at::full({5}, (n - 1) / 2.0, at::kDouble), 0, 1e-15));
}

TEST(MpiComm, BroadcastGatherScatter) {
  const int n = g_world->size(), r = g_world->rank();
  for (int root = 0; root < n; ++root) {
    auto t = at::full({5}, r == root ? 42.0 + root : -1.0, at::kDouble);
    g_world->broadcast(t, root, "bcast");
    EXPECT_TRUE(at::equal(t, at::full({5}, 42.0 + root, at::kDouble)));
  }
  const auto mine = at::arange(3, at::kLong) + 10 * r;
  const auto all = g_world->all_gather(mine, "gather");
  ASSERT_EQ(all.sizes(), (std::vector<int64_t>{n, 3}));
  for (int q = 0; q < n; ++q) EXPECT_TRUE(at::equal(all[q], at::arange(3, at::kLong) + 10 * q));
  // reduce_scatter: rows r*3..r*3+2 of the sum of every rank's (n*3, 2) tensor.
  const auto in = at::arange(n * 3 * 2, at::kDouble).view({n * 3, 2}) * (r + 1);
  const auto out = g_world->reduce_scatter(in, ReduceOp::kSum, "rs");
  const auto expect = at::arange(n * 3 * 2, at::kDouble).view({n * 3, 2}).narrow(0, r * 3, 3) * (n * (n + 1) / 2);
  EXPECT_TRUE(at::equal(out, expect));
  if (n > 1) {
    EXPECT_THROW(g_world->reduce_scatter(at::zeros({n * 3 + 1}, at::kDouble), ReduceOp::kSum, "bad"), Error);
  }
}

TEST(MpiComm, RingAndSubGroups) {
  const int n = g_world->size(), r = g_world->rank();
  if (n > 1) {
    auto got = at::empty({4}, at::kFloat);
    const auto mine = at::full({4}, static_cast<float>(r), at::kFloat);
    if (r % 2 == 0) {
      g_world->send(mine, (r + 1) % n, 7, "ring");
      g_world->recv(got, (r + n - 1) % n, 7, "ring");
    } else {
      g_world->recv(got, (r + n - 1) % n, 7, "ring");
      g_world->send(mine, (r + 1) % n, 7, "ring");
    }
    EXPECT_TRUE(at::equal(got, at::full({4}, static_cast<float>((r + n - 1) % n), at::kFloat)));
  }
  auto group = g_world->split(r % 2, r, r % 2 ? "odd" : "even");
  EXPECT_EQ(group->size(), r % 2 ? n / 2 : (n + 1) / 2);
  EXPECT_EQ(group->rank(), r / 2);
  auto t = at::full({1}, static_cast<int64_t>(r), at::kLong);
  group->all_reduce(t, ReduceOp::kSum, "group sum");
  int64_t expect = 0;
  for (int q = r % 2; q < n; q += 2) expect += q;
  EXPECT_EQ(t.item<int64_t>(), expect);
  g_world->barrier("end");
}

TEST(MpiComm, APeerThatNeverSendsTimesOut) {
  auto quick = g_world->split(0, g_world->rank(), "quick");
  quick->set_timeout(0.5);
  auto t = at::zeros({2}, at::kFloat);
  const auto start = std::chrono::steady_clock::now();
  try {
    quick->recv(t, (quick->rank() + 1) % quick->size(), 99, "never sent");
    FAIL() << "recv returned without a sender";
  } catch (const CommTimeout& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("recv from rank"), std::string::npos) << m;
    EXPECT_NE(m.find("'never sent' in group 'quick'"), std::string::npos) << m;
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(s, 2 * 0.5 + 0.5);  // within 2x the timeout, + slack for a loaded machine
  g_world->barrier("after timeout");
}

// A call MPI itself refuses (a negative tag) returns an error code instead of aborting
// the job (MPI_ERRORS_RETURN), and the error names the MPI function, the operation and
// MPI's reason.
TEST(MpiComm, AnMpiErrorIsAOneLineErrorNamingTheCall) {
  auto t = at::zeros({2}, at::kFloat);
  try {
    g_world->send(t, g_world->rank(), -5, "bad tag");
    FAIL() << "MPI accepted a negative tag";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("MPI_Isend failed in send to rank"), std::string::npos) << m;
    EXPECT_NE(m.find("'bad tag' in group 'world'"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
  g_world->barrier("after the refused call");
}
