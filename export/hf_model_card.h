// SPDX-License-Identifier: Apache-2.0
// hf_model_card.h: an exported model's README.md in the Hugging Face model-card
// convention: YAML front matter (licence, tags, datasets, model-index with the held-out
// results), then intended use and limits, training data and licences, "Model
// Examination" (the dial sweep), "Factors" (results by domain), the recruitment and
// spawn log, parameters and compute, the method's papers and the software that wrote it.
// Limits: a data source's licence is read from a README.md table row naming its file
// beside it; otherwise the card says it is not recorded.
#pragma once
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "data/data_config.h"

namespace localist {

struct HfCardInput {
  std::string name;          // the model's name (the LLM's, or the run's)
  nlohmann::json card;       // report_model_card's JSON
  nlohmann::json sweep;      // eval_metrics_json rows, one per λ, on the held-out windows
  nlohmann::json by_domain;  // {domain: eval_metrics_json} at the default dial (may be empty)
  std::vector<double> dial;  // the default λ per layer
  std::vector<SourceConfig> sources;
  std::string heldout_what;  // what the held-out windows are
};

std::string hf_model_card(const HfCardInput& in);
// The licence of a text file from a README.md beside it ("" when none names the file).
std::string source_licence(const std::string& path);

}  // namespace localist
