// SPDX-License-Identifier: Apache-2.0
// export_command.h: `localist export --format hf`: a checkpoint's LLM (or its whole pool)
// as a Hugging Face model directory that transformers loads with trust_remote_code
// (docs/export.md), with a model card filled from the checkpoint and a held-out dial sweep;
// `--format gpt2`: one LLM's λ = 0 reading as a plain GPT2LMHeadModel (export/gpt2_export.h).
// Limits: CPU only (exporting needs no accelerator); the output appears whole or not at all.
#pragma once
#include <cstdint>
#include <string>

namespace localist {

struct ExportArgs {
  std::string checkpoint, llm, format = "hf", out, dtype = "fp32";
  bool pool = false;
  int64_t windows = 0;  // held-out windows per source for the card's sweep (0: train.eval_windows)
};

int run_export(const ExportArgs& args);

}  // namespace localist
