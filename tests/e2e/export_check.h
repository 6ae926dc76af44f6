// SPDX-License-Identifier: Apache-2.0
// export_check.h: what the e2e suites run to hold `localist export --format hf` to
// localist itself: the export, localist's own outputs for the same LLM
// (localist_export_reference) and tests/export/check_hf_export.py in the project's venv
// (transformers), with the round trip against the checkpoint's HDF5 files and, for a
// prompt, greedy generation against `localist generate`.
#pragma once
#include <cstdlib>
#include <string>

#include "tests/test_util.h"

namespace localist::test {

inline std::string env_or_empty(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

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

// Runs in `dir`: checks the exported LLM directory `exported` of `checkpoint` (a checkpoint
// directory) as LLM `llm`; `prompt` non-empty: also greedy generation at λ = 0.5;
// `flags`: more check_hf_export.py flags; `text_file`: windows from that text, not random ids.
inline ExportCheck export_check(const std::string& dir, const std::string& checkpoint, const std::string& llm,
                                const std::string& exported, const std::string& prompt, const std::string& flags = "",
                                const std::string& text_file = "") {
  const std::string cd = "cd '" + dir + "' && ";
  const std::string ref = exported + ".reference.safetensors";
  CommandResult r = run_command(cd + env_or_empty("LOCALIST_EXPORT_REFERENCE") + " " + checkpoint + " " + llm + " " +
                                ref + " " + text_file + " 2>&1");
  if (r.status != 0) return {r.status, "localist_export_reference: " + r.out};
  std::string args = exported + " " + ref + " --checkpoint " + checkpoint + " " + llm + " " + flags;
  if (!prompt.empty()) {
    const CommandResult g =
        run_command(cd + localist_bin() + " generate --checkpoint " + checkpoint + " --llm " + llm + " --prompt " +
                    shell_quote(prompt) + " --top-k 1 --max-tokens 24 --dial 0.5 2>/dev/null");
    if (g.status != 0) return {g.status, "localist generate: " + g.out};
    std::string text = g.out;
    if (!text.empty() && text.back() == '\n') text.pop_back();
    args += " --generate " + shell_quote(prompt) + " " + shell_quote(text) + " 0.5 24";
  }
  r = run_command(cd + env_or_empty("LOCALIST_PYTHON") + " " + source_dir() + "/tests/export/check_hf_export.py " +
                  args + " 2>&1");
  return {r.status, r.out};
}

}  // namespace localist::test
