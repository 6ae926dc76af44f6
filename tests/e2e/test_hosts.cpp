// SPDX-License-Identifier: Apache-2.0
// test_hosts.cpp: several hosts simulated on one machine (tools/netns_hosts.sh: network
// namespaces for the hosts and for the head node that runs mpirun, joined by veth links to
// a bridge in a namespace of its own, created and removed by name; nothing is added to the
// machine's own network): OpenMPI launches into them through a launch agent that enters
// the namespace (tools/netns_agent.sh), MPI runs over TCP between them, and a user's
// `launch/mpirun.sh --hostfile` trains with the losses of one host and local ranks
// counted per host; a host lost mid-run (its link removed) ends the job within 2x the
// collective timeout naming the lost ranks, and the run resumes from its last checkpoint
// on the hosts left. Skipped (exit 77) only where namespaces cannot be made (not root).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include "tests/test_util.h"

namespace fs = std::filesystem;
using localist::test::read_text;
using localist::test::run_command;
using localist::test::TempDir;
using Clock = std::chrono::steady_clock;

namespace {

std::string source() { return localist::test::source_dir(); }
std::string bin() { return localist::test::localist_bin(); }
constexpr int kTimeoutS = 15;  // distributed.timeout_s of these runs

class Hosts : public ::testing::Test {
 public:
  static std::string tag_, net_, skip_reason_;

 protected:
  static void SetUpTestSuite() {
    tag_ = "lh" + std::to_string(::getpid() % 100000);
    net_ = std::to_string(100 + ::getpid() % 150);
    if (::geteuid() != 0) {
      skip_reason_ = "network namespaces need root";
      return;
    }
    const auto up = run_command(source() + "/tools/netns_hosts.sh up " + tag_ + " 2 " + net_ + " 2>&1");
    if (up.status != 0) {
      skip_reason_ = "network namespaces cannot be made here: " + up.out;
      run_command(source() + "/tools/netns_hosts.sh down " + tag_ + " 2>&1");
    }
  }
  static void TearDownTestSuite() { run_command(source() + "/tools/netns_hosts.sh down " + tag_ + " 2>&1"); }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    localist::test::write_text(dir_ / "t.txt",
                               read_text(localist::test::corpus("tinyshakespeare.txt")).substr(0, 60000));
    localist::test::write_text(
        dir_ / "c.yaml",
        "run:\n  dir: run\ndata:\n  shard_dir: shards\n  sources:\n    - {name: t, path: t.txt, split: blank_line}\n"
        "model:\n  context: 32\n  d_model: 32\n  head_dim: 8\ntrain:\n  steps: 300\n  global_batch: 8\n"
        "  micro_batch: 2\n  log_every: 1\n  checkpoint_every: 10\n  eval_every: 0\ndistributed:\n  timeout_s: " +
            std::to_string(kTimeoutS) + "\n");
    localist::test::write_text(dir_ / "hosts2", tag_ + "h1 slots=2\n" + tag_ + "h2 slots=2\n");
    localist::test::write_text(dir_ / "hosts1", tag_ + "h1 slots=2\n");
    ASSERT_EQ(sh(bin() + " prepare c.yaml").status, 0);
  }
  // On the head node, with what a user sets for a cluster of such hosts: the launch agent
  // instead of ssh, TCP on the hosts' own network.
  std::string hosts_env() const {
    const std::string subnet = "10.77." + net_ + ".0/24";
    return "ip netns exec " + tag_ + "h0 env LOCALIST=" + bin() + " OMPI_MCA_plm_rsh_agent=" + source() +
           "/tools/netns_agent.sh OMPI_MCA_btl=tcp,self " + "OMPI_MCA_btl_tcp_if_include=" + subnet +
           " OMPI_MCA_oob_tcp_if_include=" + subnet + " LOCALIST_ABORT_GRACE_S=5 ";
  }
  localist::test::CommandResult sh(const std::string& cmd) const {
    return run_command("cd '" + dir_.path() + "' && OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " + cmd +
                       " 2>&1");
  }
  TempDir dir_;
};
std::string Hosts::tag_, Hosts::net_, Hosts::skip_reason_;

double max_rel_diff(const std::vector<double>& a, const std::vector<double>& b, size_t n) {
  double worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / std::max(1e-12, std::abs(b[i])));
  return worst;
}

}  // namespace

TEST_F(Hosts, TrainAcrossHostsAsOnOneAndCountLocalRanksPerHost) {
  const auto one = sh("LOCALIST=" + bin() + " timeout -k 5 300 " + source() +
                      "/launch/mpirun.sh -n 4 c.yaml "
                      "--set run.dir=one --set train.steps=30");
  ASSERT_EQ(one.status, 0) << one.out;
  const auto two = sh(hosts_env() + "timeout -k 5 300 " + source() +
                      "/launch/mpirun.sh -n 4 --hostfile hosts2 c.yaml "
                      "--set run.dir=two --set train.steps=30");
  ASSERT_EQ(two.status, 0) << two.out;
  EXPECT_NE(two.out.find("--hostfile hosts2"), std::string::npos) << two.out;
  const auto a = localist::test::step_losses(dir_ / "one/metrics.jsonl");
  const auto b = localist::test::step_losses(dir_ / "two/metrics.jsonl");
  ASSERT_EQ(a.size(), 30u);
  ASSERT_EQ(b.size(), 30u);
  const double worst = max_rel_diff(b, a, 30);
  EXPECT_LE(worst, 1e-5);
  std::printf("losses over 2 hosts vs 1 host, 4 ranks: max relative difference %.3g\n", worst);
  // Each rank's local rank is its place on its own host (the device it would bind).
  const auto info = sh(hosts_env() + "timeout -k 5 60 mpirun -np 4 --hostfile hosts2 " + bin() + " info");
  ASSERT_EQ(info.status, 0) << info.out;
  auto count = [&](const std::string& s) {
    size_t n = 0;
    for (size_t at = info.out.find(s); at != std::string::npos; at = info.out.find(s, at + 1)) ++n;
    return n;
  };
  EXPECT_EQ(count("local rank 0 of 2"), 2u) << info.out;
  EXPECT_EQ(count("local rank 1 of 2"), 2u) << info.out;
}

TEST_F(Hosts, ALostHostEndsTheJobNamingItsRanksAndTheRunResumesOnTheRest) {
  const auto ref = sh("LOCALIST=" + bin() + " timeout -k 5 300 " + source() +
                      "/launch/mpirun.sh -n 2 c.yaml "
                      "--set run.dir=ref");
  ASSERT_EQ(ref.status, 0) << ref.out;
  localist::test::CommandResult job;
  std::thread t([&] {
    job = sh(hosts_env() + "timeout -k 5 300 " + source() + "/launch/mpirun.sh -n 4 --hostfile hosts2 c.yaml");
  });
  const fs::path first = dir_ / "run/checkpoints/step-00000010/index.h5";
  for (int i = 0; i < 600 && !fs::exists(first); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_TRUE(fs::exists(first)) << "no checkpoint at step 10";
  const auto lost = Clock::now();
  ASSERT_EQ(run_command(source() + "/tools/netns_hosts.sh unlink " + tag_ + " 2").status, 0);
  t.join();
  const double ended_s = std::chrono::duration<double>(Clock::now() - lost).count();
  EXPECT_NE(job.status, 0) << job.out;
  EXPECT_NE(job.status, 124) << "the job outlived the test's own timeout";
  // Named by the ranks left (their collective timed out) or by mpirun.sh (mpirun lost the
  // host's daemon first): whichever comes first, the message names ranks 2 and 3.
  EXPECT_NE(job.out.find("world rank(s) 2, 3"), std::string::npos) << job.out;
  EXPECT_LT(ended_s, 2.0 * kTimeoutS) << job.out;
  std::printf("host lost: the job ended %.1f s later (collective timeout %d s)\n", ended_s, kTimeoutS);
  // Nothing of the job is left on the host that is still up.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(run_command("ip netns pids " + tag_ + "h1 | wc -l").out, "0\n");
  // The run resumes from its last checkpoint on the remaining host (4 ranks -> 2).
  const auto resumed = sh(hosts_env() + "timeout -k 5 300 " + source() +
                          "/launch/mpirun.sh -n 2 --hostfile hosts1 "
                          "c.yaml --resume auto");
  ASSERT_EQ(resumed.status, 0) << resumed.out;
  const auto want = localist::test::step_losses(dir_ / "ref/metrics.jsonl");
  const auto got = localist::test::step_losses(dir_ / "run/metrics.jsonl");
  ASSERT_EQ(want.size(), 300u);
  ASSERT_EQ(got.size(), 300u) << "one record per step: what the lost attempt logged after its checkpoint is cut";
  EXPECT_LE(max_rel_diff(got, want, 300), 1e-5);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int status = RUN_ALL_TESTS();
  if (status == 0 && !Hosts::skip_reason_.empty()) {
    std::fprintf(stderr, "e2e_hosts skipped: %s\n", Hosts::skip_reason_.c_str());
    return 77;
  }
  return status;
}
