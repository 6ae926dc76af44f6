// SPDX-License-Identifier: Apache-2.0
// loaded_checkpoint.cpp: see loaded_checkpoint.h.
#include "launch/loaded_checkpoint.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "core/error.h"
#include "core/logging.h"
#include "pool/pool.h"
#include "recruitment/recruiter.h"
#include "run/torch_runtime.h"
#include "trainer/device.h"

namespace localist {

std::vector<std::string> LoadedCheckpoint::llm_names() const {
  std::vector<std::string> out;
  for (const auto& l : contents->llms) out.push_back(l.name);
  return out;
}

void LoadedCheckpoint::select(const std::string& name) {
  const LlmCheckpoint& l = contents->llm(name);  // throws naming the pool
  model = checkpoint_model(*contents, cfg.model, device, name);
  domain_routes = recruited_domain_routes(l.recruitment, cfg.model.k_max);
  llm = name;
}

LoadedCheckpoint load_checkpoint(const std::string& path, const std::string& device_name) {
  LoadedCheckpoint c;
  c.dir = checkpoint_resolve(path);
  c.contents = std::make_shared<const CheckpointContents>(checkpoint_read(c.dir));
  c.cfg = run_config_parse(c.contents->config_yaml, c.dir + "/config.yaml", 0);
  pool_add_spawned(c.cfg.pool, *c.contents);  // the config names only the declared LLMs
  c.meta = c.contents->meta;
  logging_init({0, 1, c.cfg.run.log_level, ""});
  torch_set_threads(static_cast<int>(c.cfg.train.threads));
  c.device = at::Device(trainer_device_name(device_name));
  TokenizerConfig tc = c.cfg.data.tokenizer;
  if (!tokenizer_stored_file(tc.kind).empty()) tc.model = c.dir + "/" + tokenizer_stored_file(tc.kind);
  c.tokenizer = tokenizer_create(tc, {}, "");
  if (c.tokenizer->hash() != c.meta.tokenizer_hash) {
    throw Error(c.dir + ": the tokenizer does not match the one the model was trained with");
  }
  c.select("main");
  return c;
}

std::vector<double> checkpoint_trained_dial(const LoadedCheckpoint& c) {
  const auto d = c.contents->state.value("schedules", nlohmann::json::object()).value("dial", nlohmann::json());
  std::vector<double> out(c.cfg.model.n_layers, 0.0);
  if (d.is_array() && d.size() == out.size()) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = d[i].get<double>();
  } else if (d.is_number()) {
    std::fill(out.begin(), out.end(), d.get<double>());
  }
  return out;
}

void checkpoint_require_domain(const LoadedCheckpoint& c, const std::string& domain) {
  const auto& sources = c.cfg.data.sources;
  if (domain.empty() ||
      std::any_of(sources.begin(), sources.end(), [&](const SourceConfig& s) { return s.domain == domain; })) {
    return;
  }
  std::vector<std::string> names;
  for (const auto& s : sources) {
    if (!s.domain.empty() && std::find(names.begin(), names.end(), s.domain) == names.end()) names.push_back(s.domain);
  }
  throw ConfigError(fmt::format("--domain {}: not a domain of this model's data (its sources' domains: {})", domain,
                                fmt::join(names, ", ")));
}

EvalInputs eval_inputs_for(const LoadedCheckpoint& c, const std::vector<std::string>& texts) {
  EvalInputs in;
  in.token_texts = &texts;
  for (const auto& t : texts) in.token_bytes.push_back(static_cast<int64_t>(t.size()));
  in.pad_id = c.tokenizer->pad_id();
  in.device = c.device;
  in.batch = c.cfg.train.micro_batch;
  return in;
}

RuleSet rules_for(const LoadedCheckpoint& c, const std::string& rules_path, bool plain, std::string* described) {
  RuleSet rules;
  if (!rules_path.empty()) rules = RuleSet::load(rules_path, c.cfg.model.k_max);
  std::string d = rules_path.empty() ? "" : ", rules " + rules_path;
  if (!plain && !c.domain_routes.empty()) {
    rules = rules.with_domain_routes(c.domain_routes);
    d += ", domain routes";
    for (const auto& r : c.domain_routes) d += fmt::format(" {}->block {}", r.domain, r.slot);
  }
  if (described) *described = d;
  return rules;
}

}  // namespace localist
