// SPDX-License-Identifier: Apache-2.0
// test_process_exit_watch.cpp: comm/process_exit_watch.h against real processes: a
// stopped child is reported (state T) after the bound, a child that exits is not, and a
// process named with another start time (a reused pid) counts as gone.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <thread>

#include "comm/process_exit_watch.h"

using namespace localist;

namespace {

// A child that stops itself, and its id as its parent sees it.
ProcessId stopped_child() {
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::raise(SIGSTOP);
    std::_Exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, WUNTRACED);  // stopped
  return process_id_of(static_cast<int>(pid));
}

}  // namespace

TEST(ProcessExitWatch, AStoppedProcessIsReportedAfterTheBoundAndAnExitedOneIsNot) {
  const ProcessId child = stopped_child();
  ASSERT_GT(child.start_ticks, 0u);
  EXPECT_EQ(process_state(child), 'T');
  const auto t0 = std::chrono::steady_clock::now();
  const auto left = wait_for_processes_to_exit({child}, 0.3);
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].pid, child.pid);
  EXPECT_EQ(left[0].state, 'T');
  EXPECT_GE(waited, 0.3);
  EXPECT_LT(waited, 2.0);

  // Another start time: not this process (a reused pid), so not waited for.
  ProcessId other = child;
  other.start_ticks += 1;
  EXPECT_EQ(process_state(other), 0);

  // Ended (a zombie until reaped counts as exited): the wait returns at once.
  ::kill(child.pid, SIGKILL);
  const auto t1 = std::chrono::steady_clock::now();
  EXPECT_TRUE(wait_for_processes_to_exit({child}, 5.0).empty());
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count(), 2.0);
  int status = 0;
  ::waitpid(child.pid, &status, 0);
  EXPECT_EQ(process_state(child), 0);
}

TEST(ProcessExitWatch, ThisProcessMatchesItself) {
  const ProcessId me = this_process();
  EXPECT_EQ(me.pid, static_cast<int>(::getpid()));
  EXPECT_GT(me.start_ticks, 0u);
  EXPECT_EQ(process_state(me), 'R');
}
