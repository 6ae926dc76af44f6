// SPDX-License-Identifier: Apache-2.0
// export_check.h: what the e2e suites run to hold `localist export --format hf` to
// localist itself: the export, localist's own outputs for the same LLM
// (localist_export_reference) and tests/export/check_hf_export.py in the project's venv
// (transformers), with the round trip against the checkpoint's HDF5 files and, for a
// prompt, greedy generation against `localist generate`.
#pragma once
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace localist::test {

// A word for a POSIX shell, whatever bytes it holds.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct ExportCheck {
  int status = -1;
  std::string out;
};

// What check_hf_export.py needs for one exported directory, prepared in `dir`: localist's
// reference outputs for LLM `llm` of `checkpoint` (a checkpoint directory), and with a
// `prompt`, `localist generate`'s greedy text at λ = 0.5 (in a file: it is bytes). Returns
// the check's arguments (`flags` appended; `text_file`: windows from that text, not random
// ids), or the failure of a step.
struct ExportCheckJob {
  std::string args;    // one line of a check_hf_export.py --batch file
  ExportCheck failed;  // status != -1 when preparing failed
};

inline ExportCheckJob export_check_job(const std::string& dir, const std::string& checkpoint, const std::string& llm,
                                       const std::string& exported, const std::string& prompt,
                                       const std::string& flags = "", const std::string& text_file = "") {
  const std::string cd = "cd '" + dir + "' && ";
  const std::string ref = exported + ".reference.safetensors";
  ExportCheckJob job;
  CommandResult r = run_command(cd + env_or_empty("LOCALIST_EXPORT_REFERENCE") + " " + checkpoint + " " + llm + " " +
                                ref + " " + text_file + " 2>&1");
  if (r.status != 0) {
    job.failed = {r.status, "localist_export_reference: " + r.out};
    return job;
  }
  job.args = exported + " " + ref + " --checkpoint " + checkpoint + " " + llm + " " + flags;
  if (!prompt.empty()) {
    const std::string expected = exported + ".generated.txt";
    const CommandResult g =
        run_command(cd + localist_bin() + " generate --checkpoint " + checkpoint + " --llm " + llm + " --prompt " +
                    shell_quote(prompt) + " --top-k 1 --max-tokens 24 --dial 0.5 2>/dev/null");
    if (g.status != 0) {
      job.failed = {g.status, "localist generate: " + g.out};
      return job;
    }
    std::string text = g.out;
    if (!text.empty() && text.back() == '\n') text.pop_back();
    write_text(dir + "/" + expected, text);
    job.args += " --generate " + shell_quote(prompt) + " " + expected + " 0.5 24";
  }
  return job;
}

// Runs check_hf_export.py once (one process: torch and transformers load once) on every
// job; a job that failed to prepare is the result.
inline ExportCheck export_check_run(const std::string& dir, const std::vector<ExportCheckJob>& jobs) {
  std::string batch;
  for (const auto& j : jobs) {
    if (j.failed.status != -1) return j.failed;
    batch += j.args + "\n";
  }
  write_text(dir + "/export-checks.txt", batch);
  const CommandResult r = run_command("cd '" + dir + "' && " + env_or_empty("LOCALIST_PYTHON") + " " + source_dir() +
                                      "/tests/export/check_hf_export.py --batch export-checks.txt 2>&1");
  return {r.status, r.out};
}

// One directory: export_check_job, then export_check_run.
inline ExportCheck export_check(const std::string& dir, const std::string& checkpoint, const std::string& llm,
                                const std::string& exported, const std::string& prompt, const std::string& flags = "",
                                const std::string& text_file = "") {
  return export_check_run(dir, {export_check_job(dir, checkpoint, llm, exported, prompt, flags, text_file)});
}

}  // namespace localist::test
