// SPDX-License-Identifier: Apache-2.0
// test_util.h: helpers shared by the test suites: a self-deleting temporary
// directory, file writing, the repository root and running a command for its
// exit status and output.
#pragma once
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace localist::test {

inline std::string source_dir() {
  const char* s = std::getenv("LOCALIST_SOURCE_DIR");
  return s ? s : LOCALIST_TEST_SOURCE_DIR;
}

inline std::string corpus(const std::string& name) { return source_dir() + "/corpora/" + name; }

inline std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

// The project venv's python (CTest sets LOCALIST_PYTHON) running a script of tools/ on `args`.
inline std::string tools_python(const std::string& script, const std::string& args) {
  return env_or_empty("LOCALIST_PYTHON") + " " + source_dir() + "/tools/" + script + " " + args + " 2>&1";
}

// The `localist` binary the end-to-end suites run (CTest sets LOCALIST_BIN).
inline std::string localist_bin() {
  const char* b = std::getenv("LOCALIST_BIN");
  return b ? b : "localist";
}

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "localist-test-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  // LOCALIST_TEST_KEEP=1 keeps the folders (their paths are printed) for a post-mortem.
  ~TempDir() {
    if (const char* keep = std::getenv("LOCALIST_TEST_KEEP"); keep && std::string(keep) == "1") {
      std::fprintf(stderr, "kept %s\n", path_.c_str());
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

struct CommandResult {
  int status = -1;
  std::string out;  // stdout and stderr together unless redirected by the command
};

// Runs a shell command; returns its exit status and captured stdout.
inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// The training losses of a run's metrics.jsonl, in the order they were logged.
inline std::vector<double> step_losses(const std::string& metrics_path) {
  std::vector<double> out;
  std::istringstream in(read_text(metrics_path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"event\":\"step\"") == std::string::npos) continue;
    const size_t p = line.find("\"loss\":");
    out.push_back(std::stod(line.substr(p + 7)));
  }
  return out;
}

// The numeric `field` of every `event` record of a metrics stream, in order (records
// without the field are skipped).
inline std::vector<double> event_values(const std::string& metrics_path, const std::string& event,
                                        const std::string& field) {
  std::vector<double> out;
  std::istringstream in(read_text(metrics_path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.find("\"event\":\"" + event + "\"") == std::string::npos) continue;
    const size_t p = line.find("\"" + field + "\":");
    if (p == std::string::npos) continue;
    out.push_back(std::stod(line.substr(p + field.size() + 3)));
  }
  return out;
}

}  // namespace localist::test
