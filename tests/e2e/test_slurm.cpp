// SPDX-License-Identifier: Apache-2.0
// test_slurm.cpp: launching as users do, against a real single-node Slurm
// (tools/local_slurm.sh: slurmctld + slurmd on localhost, config in a temporary
// directory, stopped by PID): launch/slurm/train.sbatch trains and checkpoints on 2
// tasks; `scancel --signal=USR1` makes it checkpoint, requeue and finish with the
// losses of an uninterrupted run; srun --mpi=pmix and mpirun inside an allocation
// work; bad launches (srun without PMIx, a mesh that does not divide the world, a
// hostfile with too few slots) fail in under 10 s naming the problem. Every Slurm call
// is wrapped in `timeout`. Skipped, with the reason, only where Slurm cannot start (the
// process then exits 77, which CTest reports as Skipped).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <thread>

#include <unistd.h>

#include "tests/test_util.h"

namespace fs = std::filesystem;
using localist::test::read_text;
using localist::test::run_command;
using localist::test::TempDir;
using Clock = std::chrono::steady_clock;

namespace {

std::string source() { return localist::test::source_dir(); }
std::string bin() { return localist::test::localist_bin(); }

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

class Slurm : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    slurm_dir_ = new TempDir;
    const char* nodes = std::getenv("LOCALIST_SLURM_NODES");
    nodes_ = nodes ? std::atoi(nodes) : 1;
    std::string start = "timeout 60 " + source() + "/tools/local_slurm.sh start '" + slurm_dir_->path() + "/slurm' 4";
    if (nodes_ > 1) {
      // Several nodes: simulated hosts (tools/netns_hosts.sh), slurmctld on the head node,
      // one slurmd per host; every Slurm client runs on the head.
      tag_ = "ls" + std::to_string(::getpid() % 100000);
      const std::string net = std::to_string(100 + ::getpid() % 150);
      const auto up = run_command(source() + "/tools/netns_hosts.sh up " + tag_ + " " + std::to_string(nodes_) + " " +
                                  net + " 2>&1");
      if (::geteuid() != 0 || up.status != 0) {
        skip_reason_ = "simulated hosts need root and network namespaces: " + up.out;
        return;
      }
      start = "timeout 60 " + source() + "/tools/local_slurm.sh start-hosts '" + slurm_dir_->path() + "/slurm' " +
              tag_ + " " + net + " " + std::to_string(nodes_) + " 2";
      client_ = "ip netns exec " + tag_ + "h0 ";
    }
    const auto r = run_command(start + " 2>&1");
    if (r.status != 0) {
      skip_reason_ = "a local Slurm could not be started here: " + r.out;
      return;
    }
    ::setenv("SLURM_CONF", (slurm_dir_->path() + "/slurm/slurm.conf").c_str(), 1);
  }
  static void TearDownTestSuite() {
    run_command("timeout 30 " + source() + "/tools/local_slurm.sh stop '" + slurm_dir_->path() + "/slurm' 2>&1");
    if (!tag_.empty()) run_command(source() + "/tools/netns_hosts.sh down " + tag_ + " 2>&1");
    delete slurm_dir_;
    slurm_dir_ = nullptr;
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
    // The small model of the CLI tests, long enough for a signal to land mid-run.
    localist::test::write_text(
        dir_ / "c.yaml",
        "run:\n  dir: run\ndata:\n  shard_dir: shards\n  sources:\n    - name: text\n      path: " +
            localist::test::corpus("tinyshakespeare.txt") +
            "\n      split: blank_line\nmodel:\n  context: 32\n  d_model: 32\n  head_dim: 8\n  dropout: 0.1\n"
            "train:\n  global_batch: 8\n  micro_batch: 4\n  steps: 300\n  log_every: 1\n  eval_every: 0\n"
            "  checkpoint_every: 100\n  dial: 0.5\n");
    ASSERT_EQ(sh(bin() + " prepare c.yaml").status, 0);
  }
  // A command run in the test's directory, stderr folded into the output.
  localist::test::CommandResult sh(const std::string& cmd) {
    return run_command("cd '" + dir_.path() + "' && " + cmd + " 2>&1");
  }
  std::string sbatch(const std::string& args, const std::string& env = "") {
    return "LOCALIST=" + bin() + " " + env + " " + client_ + "timeout 60 sbatch --parsable --output=job-%j.out " +
           tasks() + source() + "/launch/slurm/train.sbatch c.yaml " + args;
  }
  // Two tasks in all, spread over the nodes.
  static std::string tasks() {
    return nodes_ > 1 ? "--nodes=" + std::to_string(nodes_) + " --ntasks-per-node=" + std::to_string(2 / nodes_) + " "
                      : "";
  }
  // JobState=... of a job (empty once Slurm has forgotten it).
  std::string job_field(const std::string& job, const std::string& field) {
    const auto r = run_command(client_ + "timeout 10 scontrol show job " + job + " 2>&1");
    std::smatch m;
    const std::regex re(field + "=(\\S+)");
    return std::regex_search(r.out, m, re) ? m[1].str() : "";
  }
  // Polls until the job has ended (or `limit_s` passes); returns its final state.
  std::string wait_job(const std::string& job, double limit_s) {
    const auto t0 = Clock::now();
    std::string state;
    while (seconds_since(t0) < limit_s) {
      state = job_field(job, "JobState");
      if (state == "COMPLETED" || state == "FAILED" || state == "CANCELLED" || state == "TIMEOUT") return state;
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    return "still " + state + " after " + std::to_string(limit_s) + " s";
  }
  static TempDir* slurm_dir_;
  static int nodes_;
  static std::string tag_, client_;  // simulated hosts' tag; the prefix that runs a client on the head
  TempDir dir_;

 public:
  static std::string skip_reason_;
};
TempDir* Slurm::slurm_dir_ = nullptr;
int Slurm::nodes_ = 1;
std::string Slurm::tag_, Slurm::client_, Slurm::skip_reason_;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

// The reference is an uninterrupted run under `srun --mpi=pmix` directly; the batch job
// (with LOCALIST_SLURM_NODES=2: on two simulated nodes, one task each, e2e_slurm_2nodes)
// is signalled (USR1, as --signal=USR1@T does before the time limit) after 40 steps:
// every rank checkpoints, exits 75, the script requeues the job, and the second attempt
// resumes and ends with the reference's losses, every step bit for bit.
TEST_F(Slurm, APreemptionSignalCheckpointsRequeuesAndFinishesLikeAnUninterruptedRun) {
  auto ref = sh("OMP_NUM_THREADS=1 " + client_ + "timeout 120 srun " + tasks() + "-n2 --mpi=pmix " + bin() +
                " train c.yaml --set run.dir=ref");
  ASSERT_EQ(ref.status, 0) << ref.out;
  const auto want = localist::test::step_losses(dir_ / "ref/metrics.jsonl");
  ASSERT_EQ(want.size(), 300u);

  const std::string job = trim(sh(sbatch("--set run.dir=pre")).out);
  ASSERT_FALSE(job.empty());
  const auto t0 = Clock::now();
  while (localist::test::step_losses(dir_ / "pre/metrics.jsonl").size() < 40 && seconds_since(t0) < 60) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(run_command(client_ + "timeout 10 scancel --signal=USR1 " + job).status, 0);
  const std::string state = wait_job(job, 120);
  const std::string out = read_text(dir_ / ("job-" + job + ".out"));
  ASSERT_EQ(state, "COMPLETED") << out;
  EXPECT_EQ(job_field(job, "Restarts"), "1") << out;
  EXPECT_NE(out.find("exit 75); requeuing job " + job), std::string::npos) << out;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(out, m, std::regex("stopped by signal 10 before step (\\d+)"))) << out;
  const int stopped_at = std::stoi(m[1]);
  EXPECT_GT(stopped_at, 0);
  EXPECT_LT(stopped_at, 300);
  const std::string step_dir = "step-" + std::string(8 - m[1].str().size(), '0') + m[1].str();
  EXPECT_NE(out.find("resuming from pre/checkpoints/" + step_dir + " (step " + m[1].str()), std::string::npos) << out;
  const auto got = localist::test::step_losses(dir_ / "pre/metrics.jsonl");
  ASSERT_EQ(got.size(), 300u) << "steps before the stop, then the resumed ones";
  for (size_t i = 0; i < 300; ++i)
    ASSERT_EQ(got[i], want[i]) << "step " << i << " (stopped before " << stopped_at << ")";
}

// sbatch --wait with the template as shipped (srun --mpi=pmix) and with mpirun inside
// the allocation: both train on 2 tasks and leave a final checkpoint.
TEST_F(Slurm, TheBatchTemplateTrainsWithSrunAndWithMpirunInsideTheAllocation) {
  for (const std::string launcher : {"srun", "mpirun"}) {
    const std::string run = "b-" + launcher;
    const auto r =
        sh("LOCALIST=" + bin() + " LOCALIST_LAUNCHER=" + launcher + " timeout 120 sbatch --wait --output=" + run +
           ".out " + source() + "/launch/slurm/train.sbatch c.yaml --set run.dir=" + run + " --set train.steps=30");
    const std::string out = read_text(dir_ / (run + ".out"));
    EXPECT_EQ(r.status, 0) << r.out << out;
    EXPECT_NE(out.find("attempt 1 on localhost: " + launcher), std::string::npos) << out;
    EXPECT_NE(out.find(": 30 steps in"), std::string::npos) << out;
    EXPECT_TRUE(fs::exists(dir_ / (run + "/checkpoints/step-00000030/index.h5"))) << launcher;
    EXPECT_EQ(localist::test::step_losses(dir_ / (run + "/metrics.jsonl")).size(), 30u) << launcher;
  }
}

// A rank stopped after its MPI_Finalize, on its way out, and the first of its host (so
// no rank of the job can see it): srun's --wait in the template ends it, and the job fails
// rather than hanging, with its run complete and no requeue.
TEST_F(Slurm, TheTemplateEndsARankStoppedOnItsWayOut) {
  const auto t0 = Clock::now();
  const auto r = sh("LOCALIST=" + bin() +
                    " LOCALIST_TEST_FAULT=exitstop:rank=0:at=exit LOCALIST_EXIT_WAIT_S=5 timeout 120 sbatch --wait "
                    "--output=stop.out " +
                    source() + "/launch/slurm/train.sbatch c.yaml --set run.dir=stop --set train.steps=10");
  const double seconds = seconds_since(t0);
  const std::string out = read_text(dir_ / "stop.out");
  EXPECT_NE(r.status, 0) << r.out << out;
  EXPECT_LT(seconds, 60.0) << out;
  EXPECT_NE(out.find("stops itself (SIGSTOP)"), std::string::npos) << out;
  EXPECT_EQ(out.find("requeuing"), std::string::npos) << out;
  EXPECT_TRUE(fs::exists(dir_ / "stop/checkpoints/step-00000010/index.h5")) << out;
}

// Launches that cannot work fail fast, naming the problem: srun without PMIx, a
// block-parallel mesh that does not divide the world, a hostfile with too few slots;
// launch/mpirun.sh runs 2 local ranks by one command.
TEST_F(Slurm, BadLaunchesFailInUnderTenSeconds) {
  auto timed = [&](const std::string& cmd) {
    const auto t0 = Clock::now();
    auto r = sh(cmd);
    return std::make_pair(r, seconds_since(t0));
  };
  auto [none, none_s] = timed("timeout 60 srun -n2 --mpi=none " + bin() + " train c.yaml --set run.dir=x1");
  EXPECT_NE(none.status, 0);
  EXPECT_NE(none.out.find("use `srun --mpi=pmix`"), std::string::npos) << none.out;
  EXPECT_LT(none_s, 10.0);
  auto [bp3, bp3_s] = timed("timeout 60 srun -n2 --mpi=pmix " + bin() +
                            " train c.yaml --set run.dir=x2 --set distributed.block_parallel=3");
  EXPECT_EQ(bp3.status, 2) << bp3.out;
  EXPECT_NE(bp3.out.find("block_parallel 3 does not divide 2 ranks"), std::string::npos) << bp3.out;
  EXPECT_LT(bp3_s, 10.0);
  localist::test::write_text(dir_ / "hosts", "localhost slots=2\n");
  auto [slots, slots_s] = timed("LOCALIST=" + bin() + " timeout 60 " + source() +
                                "/launch/mpirun.sh -n 4 --hostfile hosts c.yaml --set run.dir=x3");
  EXPECT_EQ(slots.status, 2) << slots.out;
  EXPECT_NE(slots.out.find("-n 4 but hosts offers 2 slot(s) on 1 host(s)"), std::string::npos) << slots.out;
  EXPECT_LT(slots_s, 10.0);
  for (const char* d : {"x1", "x2", "x3"}) EXPECT_FALSE(fs::exists(dir_ / (std::string(d) + "/checkpoints"))) << d;

  auto ok = sh("LOCALIST=" + bin() + " timeout 120 " + source() +
               "/launch/mpirun.sh -n 2 c.yaml --set run.dir=m2 "
               "--set train.steps=10");
  EXPECT_EQ(ok.status, 0) << ok.out;
  EXPECT_NE(ok.out.find("mpirun -np 2 -x OMP_NUM_THREADS"), std::string::npos) << ok.out;
  EXPECT_EQ(localist::test::step_losses(dir_ / "m2/metrics.jsonl").size(), 10u);
}

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int status = RUN_ALL_TESTS();
  if (status == 0 && !Slurm::skip_reason_.empty()) {
    std::fprintf(stderr, "e2e_slurm skipped: %s\n", Slurm::skip_reason_.c_str());
    return 77;
  }
  return status;
}
