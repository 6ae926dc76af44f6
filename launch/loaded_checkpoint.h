// SPDX-License-Identifier: Apache-2.0
// loaded_checkpoint.h: a trained checkpoint opened for `eval` and `generate`: its run
// config, tokenizer and one LLM of its pool as a model on the chosen device (main by
// default; any other by name), and the rules it answers with (the rules file plus the
// routes of blocks recruited for a domain).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "checkpoint/checkpoint.h"
#include "data/tokenizer.h"
#include "launch/run_config.h"
#include "model/localist_model.h"
#include "model/rules.h"
#include "trainer/evaluate.h"

namespace localist {

struct LoadedCheckpoint {
  std::string dir;
  RunConfig cfg;
  CheckpointMeta meta;
  std::shared_ptr<const CheckpointContents> contents;
  std::string llm = "main";  // the LLM `model` holds
  std::shared_ptr<LocalistModel> model;
  std::unique_ptr<Tokenizer> tokenizer;
  std::vector<DomainRoute> domain_routes;  // blocks recruited for a domain: its tokens route there
  at::Device device = at::kCPU;

  std::vector<std::string> llm_names() const;
  // Switches `model` (and the domain routes) to LLM `name`; throws naming the pool's LLMs.
  void select(const std::string& name);
};

LoadedCheckpoint load_checkpoint(const std::string& path, const std::string& device_name);
// The dial the checkpoint was trained at: its schedule's value per layer at its step
// (0 on every layer when it did not record one).
std::vector<double> checkpoint_trained_dial(const LoadedCheckpoint& c);
// Throws naming the domains of the checkpoint's data when `domain` (non-empty) is not one.
void checkpoint_require_domain(const LoadedCheckpoint& c, const std::string& domain);
// Evaluation inputs for this checkpoint's model (`texts`: its tokenizer's, kept alive by the caller).
EvalInputs eval_inputs_for(const LoadedCheckpoint& c, const std::vector<std::string>& texts);
// The rules file's rules with the checkpoint's domain routes in front (unless `plain`).
RuleSet rules_for(const LoadedCheckpoint& c, const std::string& rules_path, bool plain, std::string* described);

}  // namespace localist
