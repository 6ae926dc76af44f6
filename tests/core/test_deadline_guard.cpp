// SPDX-License-Identifier: Apache-2.0
// test_deadline_guard.cpp: core/deadline_guard.h in a forked child: a guard whose
// deadline passes ends the process with status 1 and one line naming the call, at the
// deadline (not at the end of the blocked call); a guard released in time does nothing.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "core/deadline_guard.h"

namespace {

struct ChildResult {
  int status = -1;
  double seconds = 0;
  std::string err;
};

// Runs body in a child with stderr captured; the child exits 0 after it.
template <typename F>
ChildResult in_child(F body) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    body();
    std::_Exit(0);
  }
  ::close(fds[1]);
  ChildResult r;
  char buf[512];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof(buf))) > 0) r.err.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

}  // namespace

TEST(DeadlineGuard, EndsTheProcessAtItsDeadlineNamingTheCall) {
  const auto r = in_child([] {
    localist::DeadlineGuard g("MPI_Finalize", 0.3);
    std::this_thread::sleep_for(std::chrono::seconds(5));  // the call that never returns
  });
  EXPECT_EQ(r.status, 1);
  EXPECT_LT(r.seconds, 3.0);
  EXPECT_GE(r.seconds, 0.25);
  EXPECT_NE(r.err.find("MPI_Finalize did not return within"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;  // one line
}

TEST(DeadlineGuard, ReleasedInTimeDoesNothing) {
  const auto r = in_child([] {
    { localist::DeadlineGuard g("MPI_Init", 2.0); }
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  });
  EXPECT_EQ(r.status, 0);
  EXPECT_TRUE(r.err.empty()) << r.err;
}
