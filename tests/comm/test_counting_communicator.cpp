// SPDX-License-Identifier: Apache-2.0
// test_counting_communicator.cpp: comm/counting_communicator.h on the in-process double:
// every call reaches the other ranks unchanged, each group's payload bytes are counted
// by hand's arithmetic (the sender's side), split groups under their own name, and the
// timeout is the wrapped group's too.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "comm/counting_communicator.h"
#include "comm/in_process_group.h"

TEST(CountingCommunicator, CountsWhatEachRankHandsToEachGroup) {
  std::vector<std::map<std::string, int64_t>> counted(4);
  std::vector<double> sums(4), timeouts(4);
  const auto outcomes = localist::in_process_run(4, [&](std::shared_ptr<localist::Communicator> world) {
    auto counts = std::make_shared<localist::CommByteCounts>();
    auto c = std::make_shared<localist::CountingCommunicator>(world, counts);
    const int r = c->rank();
    auto t = at::full({10}, static_cast<float>(r + 1));
    c->all_reduce(t, localist::ReduceOp::kSum, "ten floats");  // 40 bytes
    sums[r] = t[0].item<double>();
    auto half = c->split(r % 2, r, "half[" + std::to_string(r % 2) + "]");
    auto d = at::zeros({3}, at::kDouble);
    half->broadcast(d, 0, "three doubles");                    // 24 bytes on the root only
    half->all_gather(at::zeros({2}, at::kLong), "two longs");  // 16 bytes each
    half->set_timeout(7.5);
    timeouts[r] = half->timeout_s();
    counted[r] = counts->snapshot();
  });
  for (const auto& o : outcomes) ASSERT_TRUE(o.ok) << o.error;
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(sums[r], 10.0);  // 1 + 2 + 3 + 4: the call went through
    const std::string half = "half[" + std::to_string(r % 2) + "]";
    EXPECT_EQ(counted[r].at("world"), 40) << r;
    EXPECT_EQ(counted[r].at(half), (r < 2 ? 24 : 0) + 16) << r;  // ranks 0 and 1 are their half's root
    EXPECT_EQ(timeouts[r], 7.5);
  }
}
