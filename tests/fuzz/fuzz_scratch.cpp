// SPDX-License-Identifier: Apache-2.0
// fuzz_scratch.cpp: the scratch directory of the file-reading fuzz targets (fuzz_target.h):
// on /dev/shm so that a million inputs never touch a disk; removed at exit.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/fuzz/fuzz_target.h"

namespace localist::fuzz {

std::string scratch_dir() {
  static const std::string dir = [] {
    namespace fs = std::filesystem;
    const fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    const fs::path d = base / ("localist-fuzz-" + std::to_string(::getpid()));
    fs::create_directories(d);
    static const std::string keep = d.string();
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(keep, ec);
    });
    return d.string();
  }();
  return dir;
}

}  // namespace localist::fuzz
