// SPDX-License-Identifier: Apache-2.0
// error.h: the exception types every layer throws for bad input. The `localist`
// command turns them into one line on stderr and an exit status (2 for config and
// usage errors, 1 for everything else); nothing else in the code prints errors.
#pragma once
#include <stdexcept>
#include <string>

namespace localist {

// Exit statuses shared by every verb (docs/operations.md lists them).
constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // bad input data, I/O, runtime failure
constexpr int kExitConfig = 2;   // bad config file, flag or option value

// A failure with a message meant for the user: what went wrong, where, and a hint.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, int exit_code = kExitFailure)
      : std::runtime_error(message), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// A config file or command-line value that is malformed or out of range.
class ConfigError : public Error {
 public:
  explicit ConfigError(const std::string& message) : Error(message, kExitConfig) {}
};

}  // namespace localist
