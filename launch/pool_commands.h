// SPDX-License-Identifier: Apache-2.0
// pool_commands.h: the parts of `eval` and `generate` that answer with a pool of LLMs:
// the pool evaluation of a checkpoint (every held-out domain × LLM, and the pool routed
// by tag, argmin code length, mixture and oracle; pool.csv and pool.json), and which LLM
// a prompt goes to by its code length under each LLM.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "launch/loaded_checkpoint.h"

namespace localist {

// Each LLM's prior: its share of the training data by source weight (domains go to their
// owner at `step`, the rest to main), in the order of `llms`.
std::vector<double> pool_priors(const RunConfig& cfg, int64_t step, const std::vector<std::string>& llms);
int run_pool_eval(LoadedCheckpoint& c, double dial, const std::string& rules_path, const std::string& out_dir,
                  int64_t windows, int64_t route_prefix);
// Scores the prompt under every LLM (bits of its tokens after the first), prints them and
// returns the LLM with the shortest code length.
std::string route_prompt(LoadedCheckpoint& c, const std::vector<uint32_t>& ids, double dial,
                         const std::string& rules_path);

}  // namespace localist
