// SPDX-License-Identifier: Apache-2.0
// check.h: LOCALIST_CHECK(condition, message parts...) for invariants of the code itself
// (c10's TORCH_INTERNAL_ASSERT, where `Error` is its TORCH_CHECK): a failure is a bug
// in localist, not something the user can fix, so it throws InternalError, which the
// `localist` command reports as an internal error with where it happened and a request
// for a report. Limits: the condition is always evaluated (also in release builds).
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace localist {

// A broken invariant: never derived from Error, so no handler mistakes it for bad input.
class InternalError : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {

// "folder/file.cpp" from a path: where the check sits, without the build machine's prefix.
inline std::string check_site(const char* file) {
  const std::string path(file);
  const auto last = path.rfind('/');
  if (last == std::string::npos || last == 0) return path;
  const auto parent = path.rfind('/', last - 1);
  return parent == std::string::npos ? path : path.substr(parent + 1);
}

template <typename... Parts>
[[noreturn]] void check_failed(const char* file, int line, const char* condition, const Parts&... parts) {
  std::ostringstream s;
  s << "check failed at " << check_site(file) << ":" << line << " (" << condition << ")";
  s << ": ";
  (s << ... << parts);
  s << "; this is a localist bug";
  throw InternalError(s.str());
}

}  // namespace detail
}  // namespace localist

// The message (required: what broke) is streamed from its parts, only on failure.
#define LOCALIST_CHECK(condition, ...)                                                               \
  do {                                                                                               \
    if (!(condition)) ::localist::detail::check_failed(__FILE__, __LINE__, #condition, __VA_ARGS__); \
  } while (false)
