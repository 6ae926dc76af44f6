// SPDX-License-Identifier: Apache-2.0
// checkpoint_commands.h: the verbs that read a trained checkpoint: `eval` (a sweep over
// dial values, or a pool's domain x LLM table and its routers), `generate` (sampling at
// one dial, the LLM of a pool chosen by name, domain or code length) and `inspect` (a
// checkpoint's or a token shard's contents, every checksum verified).
#pragma once
#include <cstdint>
#include <string>

namespace localist {

// eval's default dial: a sweep; a pool is evaluated at one value, the checkpoint's own
// unless --dial is given.
constexpr const char* kDefaultEvalDial = "0:1:0.1";

struct EvalArgs {
  std::string checkpoint, dial = kDefaultEvalDial, dial_profile = "uniform", out_dir, rules_path, device = "auto";
  int64_t windows = 0;            // held-out windows per held-out source (0: train.eval_windows)
  bool by_domain = false;         // the pool table also for a one-LLM checkpoint
  bool no_domain_routes = false;  // route every token by the learned router
  std::string llm;                // one LLM of a pool checkpoint
  int64_t route_prefix = 16;      // argmin routing's prefix length
};

struct GenerateArgs {
  std::string checkpoint, prompt, dial = "0", dial_profile = "uniform", rules_path, domain, llm, device = "auto";
  uint64_t seed = 1;
  double temperature = 1.0;
  int top_k = 0, max_tokens = 200;
  bool show_attention = false;
};

int run_eval(const EvalArgs& args);
int run_generate(const GenerateArgs& args);
// A token shard file, or a checkpoint directory (or its run directory).
int run_inspect(const std::string& path);

}  // namespace localist
