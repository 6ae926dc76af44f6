// SPDX-License-Identifier: Apache-2.0
// test_chaos.cpp: the short chaos soak (tools/chaos.py): a recruitment run whose pool
// spawns a specialist, on 2 and 3 ranks, hit at random moments by kill -9 of a rank,
// SIGUSR1, a stalled rank and a kill inside a checkpoint write, resumed with --resume
// auto (sometimes on the other world size) until it finishes: losses equal the
// uninterrupted run's (bit for bit on an unchanged world), the same decisions, no
// partial checkpoint, no process outliving its job. The seed is printed for a rerun.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <string>

#include "tests/test_util.h"

TEST(Chaos, FaultsAtRandomMomentsLeaveTheRunAsIfUninterrupted) {
  const char* b = std::getenv("LOCALIST_BIN");
  const std::string bin = b ? b : "localist";
  const auto seed = std::chrono::system_clock::now().time_since_epoch().count() % 100000;
  localist::test::TempDir dir;
  const std::string cmd = "/usr/bin/python3 " + localist::test::source_dir() + "/tools/chaos.py --bin " + bin +
                          " --work " + dir.path() + " --faults 4 --worlds 2,3 --steps 80 --seed " +
                          std::to_string(seed);
  std::printf("chaos seed %ld: %s\n", static_cast<long>(seed), cmd.c_str());
  const auto r = localist::test::run_command(cmd + " 2>&1");
  ASSERT_EQ(r.status, 0) << "seed " << seed << "\n" << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j.at("failures").empty()) << r.out;
  EXPECT_GE(j.at("faults_survived").get<int>(), 4) << r.out;
  // The uninterrupted run spawns a specialist: the faults hit a pool that grows.
  EXPECT_FALSE(j.at("accepted_in_reference").empty()) << r.out;
  std::printf("faults survived %d in %.1f s, longest fault to exit %s s\n", j.at("faults_survived").get<int>(),
              j.at("wall_s").get<double>(), j.at("longest_fault_to_exit_s").dump().c_str());
}
