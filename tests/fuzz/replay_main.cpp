// SPDX-License-Identifier: Apache-2.0
// replay_main.cpp: localist_fuzz_replay, the CI side of fuzzing: every registered target
// (fuzz_target.h) runs every file of its corpus, tests/fuzz/corpus/<target>/ under the
// source directory. A crash or an escaping exception aborts the test; a target without
// a corpus fails it. Usage: localist_fuzz_replay [TARGET...] (default: all).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "tests/fuzz/fuzz_target.h"

namespace localist::fuzz {

static std::map<std::string, TargetFn>& registry() {
  static std::map<std::string, TargetFn> r;
  return r;
}

bool register_target(const char* name, TargetFn fn) {
  registry()[name] = fn;
  return true;
}

}  // namespace localist::fuzz

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  const char* src = std::getenv("LOCALIST_SOURCE_DIR");
  const fs::path root = fs::path(src ? src : LOCALIST_TEST_SOURCE_DIR) / "tests/fuzz/corpus";
  std::vector<std::string> wanted(argv + 1, argv + argc);
  int failed = 0;
  for (const auto& [name, fn] : localist::fuzz::registry()) {
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), name) == wanted.end()) continue;
    const fs::path dir = root / name;
    std::vector<fs::path> files;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
      if (e.is_regular_file()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      std::fprintf(stderr, "fuzz replay: target %s has no corpus in %s\n", name.c_str(), dir.c_str());
      ++failed;
      continue;
    }
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      const std::string bytes((std::istreambuf_iterator<char>(in)), {});
      fn(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    }
    std::printf("fuzz replay: %-14s %zu inputs, no crash\n", name.c_str(), files.size());
  }
  return failed ? 1 : 0;
}
