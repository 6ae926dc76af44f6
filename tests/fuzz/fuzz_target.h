// SPDX-License-Identifier: Apache-2.0
// fuzz_target.h: a fuzz target written once, built two ways. With clang and
// -DLOCALIST_FUZZ=ON (tools/fuzz.sh) each target is a libFuzzer harness of its own;
// in every build the targets are also linked into localist_fuzz_replay, which runs the
// committed corpora (tests/fuzz/corpus/<target>/) as a CI test, so a crash once found
// stays fixed. A target returns normally for any input: bad input must be a
// localist::Error (a one-line message for the user), anything else escaping is a bug.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#ifdef LOCALIST_FUZZ_LIBFUZZER
#define LOCALIST_FUZZ_TARGET(name) extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
#else
namespace localist::fuzz {
using TargetFn = int (*)(const uint8_t*, size_t);
bool register_target(const char* name, TargetFn fn);
}  // namespace localist::fuzz
#define LOCALIST_FUZZ_TARGET(name)                                                                        \
  static int fuzz_##name##_one(const uint8_t* data, size_t size);                                         \
  static const bool fuzz_##name##_registered = localist::fuzz::register_target(#name, fuzz_##name##_one); \
  static int fuzz_##name##_one(const uint8_t* data, size_t size)
#endif

namespace localist::fuzz {

inline std::string text_of(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

// The structured targets' input format: fields separated by 0xFF bytes, padded with
// empty fields to at least `min_fields`.
inline std::vector<std::string> split_fields(const uint8_t* data, size_t size, size_t min_fields) {
  std::vector<std::string> f(1);
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == 0xFF)
      f.emplace_back();
    else
      f.back() += static_cast<char>(data[i]);
  }
  if (f.size() < min_fields) f.resize(min_fields);
  return f;
}

// A private scratch directory on a tmpfs (/dev/shm when present) for targets that
// read files, made once per process and emptied by the caller per input.
std::string scratch_dir();

}  // namespace localist::fuzz
