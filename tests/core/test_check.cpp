// SPDX-License-Identifier: Apache-2.0
// test_check.cpp: LOCALIST_CHECK tells a bug from a user error: it throws InternalError
// (never an Error, which the command reports as bad input), names the file, line and
// condition, and builds its message only when the check fails.
#include <gtest/gtest.h>

#include <string>

#include "core/check.h"
#include "core/error.h"

namespace localist {
namespace {

int g_built = 0;
int counted() { return ++g_built; }

TEST(Check, AHoldingInvariantBuildsNoMessage) {
  g_built = 0;
  LOCALIST_CHECK(1 + 1 == 2, "never built: ", counted());
  EXPECT_EQ(g_built, 0);
}

TEST(Check, ABrokenInvariantIsAnInternalErrorWithItsSite) {
  const int rows = 3;
  const int line = __LINE__ + 2;
  try {
    LOCALIST_CHECK(rows < 2, "block map: ", rows, " rows for ", 1.5, " blocks");
    FAIL() << "no throw";
  } catch (const Error&) {
    FAIL() << "a broken invariant must not read as a user error";
  } catch (const InternalError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m, "check failed at core/test_check.cpp:" + std::to_string(line) +
                     " (rows < 2): block map: 3 rows for 1.5 blocks; this is a localist bug");
  }
}

TEST(Check, TheSiteIsTheFolderAndFile) {
  EXPECT_EQ(detail::check_site("/home/ci/localist/parallel/block_parallel.cpp"), "parallel/block_parallel.cpp");
  EXPECT_EQ(detail::check_site("grad_sync.cpp"), "grad_sync.cpp");
  EXPECT_EQ(detail::check_site("/grad_sync.cpp"), "/grad_sync.cpp");
}

}  // namespace
}  // namespace localist
