// SPDX-License-Identifier: Apache-2.0
// file_util.h: whole-file reads with clear errors, and atomic writes (temporary name
// in the same directory, fsync, rename) so that no reader ever sees a partial file.
// Limits: POSIX rename semantics; the target directory must already exist.
#pragma once
#include <string>

namespace localist {

// Reads a file's bytes; throws localist::Error naming the path when it cannot.
std::string read_file(const std::string& path);

// Writes `content` to `path` atomically (tmp + fsync + rename).
void write_file_atomic(const std::string& path, const std::string& content);

// A temporary sibling name for `path`, unique to this process: path.tmp.<pid>.
std::string temp_sibling(const std::string& path);

// Renames tmp -> path after fsync of tmp; throws localist::Error on failure.
void commit_temp_file(const std::string& tmp, const std::string& path);

}  // namespace localist
