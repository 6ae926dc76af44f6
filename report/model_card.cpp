// SPDX-License-Identifier: Apache-2.0
// model_card.cpp: see model_card.h.
#include "report/model_card.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "core/build_info.h"
#include "recruitment/mdl.h"

namespace localist {
namespace {

// The method's sources (DESIGN.md): the report says where the formulas come from.
nlohmann::json method_sources() {
  return nlohmann::json::array({
      {{"arxiv", "2510.09338"},
       {"title", "Localist LLMs — A Mathematical Framework for Dynamic Locality Control"},
       {"author", "J. Diederich"}},
      {{"arxiv", "2510.17358"}, {"title", "Localist LLMs with Recruitment Learning"}, {"author", "J. Diederich"}},
      {{"arxiv", "2511.03559"},
       {"title", "First Experiments with Localist Language Models"},
       {"author", "J. Diederich"}},
  });
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(std::move(j));
  }
  return out;
}

double mean_dial(const nlohmann::json& d) {
  if (d.is_number()) return d.get<double>();
  if (!d.is_array() || d.empty()) return 0;
  double s = 0;
  for (const auto& v : d) s += v.get<double>();
  return s / static_cast<double>(d.size());
}

}  // namespace

nlohmann::json report_model_card(const CheckpointContents& c, const std::string& llm_name, LocalistModel& model) {
  const ModelConfig& mc = model.config();
  const LlmCheckpoint& llm = c.llm(llm_name);
  const int64_t per_block = mdl_block_parameters(mc);
  const auto active = model.active_slots();
  const int64_t allocated = model.parameter_count();
  const int64_t shared = allocated - mc.k_max * per_block;
  nlohmann::json card;
  card["software"] = {{"name", "localist"}, {"version", build_version()}, {"commit", build_commit()}};
  card["method"] = method_sources();
  card["checkpoint"] = {{"dir", c.dir},
                        {"format_version", c.format_version},
                        {"step", c.meta.step},
                        {"tokens_seen", c.meta.tokens_seen},
                        {"vocabulary", c.meta.vocab_size},
                        {"tokenizer", c.meta.tokenizer_kind},
                        {"llm", llm_name}};
  nlohmann::json files = nlohmann::json::array();
  for (const auto& [name, info] : c.files.items()) {
    // checkpoint_read verified each file's size and SHA-256 against the index before this.
    files.push_back({{"name", name}, {"bytes", info.at("bytes")}, {"sha256", info.at("sha256")}, {"verified", true}});
  }
  card["files"] = std::move(files);
  card["config_yaml"] = c.config_yaml;
  card["model"] = {{"d_model", mc.d_model},       {"n_layers", mc.n_layers},
                   {"context", mc.context},       {"heads_per_block", mc.heads_per_block},
                   {"head_dim", mc.head_dim},     {"k_max", mc.k_max},
                   {"anchor_dim", mc.anchor_dim}, {"tau", mc.tau},
                   {"gamma", mc.gamma},           {"rho", mc.rho}};
  card["parameters"] = {{"allocated", allocated},
                        {"shared", shared},
                        {"per_block", per_block},
                        {"active", shared + static_cast<int64_t>(active.size()) * per_block}};
  const AnchorCode& a = model.anchor_code();
  card["anchors"] = {
      {"kind", a.kind}, {"dim", a.dim}, {"k_max", a.k_max}, {"coherence", a.coherence}, {"welch_bound", a.welch_bound}};
  // Blocks: recruited ones from the accepted decisions of the log, the rest initial.
  std::map<int64_t, nlohmann::json> recruited;
  const auto log = json_lines(llm.recruitment_log);
  for (const auto& d : log) {
    if (d.value("accepted", false) && d.contains("slot")) recruited[d.at("slot").get<int64_t>()] = d;
  }
  nlohmann::json blocks = nlohmann::json::array();
  for (int64_t slot : active) {
    nlohmann::json b = {{"slot", slot}, {"origin", recruited.count(slot) ? "recruited" : "initial"}};
    if (recruited.count(slot)) {
      const auto& d = recruited.at(slot);
      b["step"] = d.value("step", int64_t(0));
      b["domain"] = d.value("route_domain", std::string());
      b["decision"] = d;
    }
    blocks.push_back(std::move(b));
  }
  card["blocks"] = std::move(blocks);
  card["recruitment_log"] = log;
  if (c.llms.size() > 1 || c.state.contains("pool_log")) {
    nlohmann::json llms = nlohmann::json::array();
    for (const auto& l : c.llms) {
      nlohmann::json e = l.info.is_object() ? l.info : nlohmann::json::object();
      e["name"] = l.name;
      e["active_blocks"] = l.map.slots();
      llms.push_back(std::move(e));
    }
    card["pool"] = {{"llms", std::move(llms)}, {"log", c.state.value("pool_log", nlohmann::json::array())}};
  }
  return card;
}

namespace {

// Each part of the logged steps' time (time_ms), averaged over the steps after the first
// (start-up); empty for records written before the split existed.
nlohmann::json mean_step_time(const std::map<int64_t, nlohmann::json>& by_step) {
  std::map<std::string, double> sum;
  int64_t n = 0;
  for (auto it = by_step.begin(); it != by_step.end(); ++it) {
    const nlohmann::json& t = it->second.at("time_ms");
    if (it == by_step.begin() || !t.is_object()) continue;
    for (const auto& [part, ms] : t.items()) {
      if (ms.is_number()) sum[part] += ms.get<double>();
    }
    ++n;
  }
  nlohmann::json mean = nlohmann::json::object();
  for (const auto& [part, total] : sum) mean[part] = total / static_cast<double>(n);
  if (n > 0) mean["steps"] = n;
  return mean;
}

}  // namespace

std::string report_metrics_path(const std::string& checkpoint_dir) {
  namespace fs = std::filesystem;
  return (fs::path(checkpoint_dir).lexically_normal().parent_path().parent_path() / "metrics.jsonl").string();
}

nlohmann::json report_training_curves(const std::string& path, int64_t last_step) {
  std::ifstream in(path);
  if (!in) return {{"found", false}, {"path", path}};
  // (llm, step) -> point; later lines win (files older than the resume cut may hold a step twice).
  std::map<std::string, std::map<int64_t, nlohmann::json>> points;
  nlohmann::json events = nlohmann::json::array();
  int64_t unreadable = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      ++unreadable;  // a line cut by a crash
      continue;
    }
    const std::string event = j.value("event", "");
    const int64_t step = j.value("step", int64_t(-1));
    if (step > last_step) continue;
    if (event == "step") {
      points[j.value("llm", std::string("main"))][step] = {{"step", step},
                                                           {"loss", j.value("loss", 0.0)},
                                                           {"bits_per_token", j.value("bits_per_token", 0.0)},
                                                           {"dial", mean_dial(j.value("dial", nlohmann::json()))},
                                                           {"active_blocks", j.value("active_blocks", 0)},
                                                           {"mfu", j.contains("mfu") ? j["mfu"] : nlohmann::json()},
                                                           {"time_ms", j.value("time_ms", nlohmann::json())}};
    } else if (event == "recruitment" || event == "pool_recruitment" || event == "eval") {
      events.push_back(j);
    }
  }
  if (unreadable > 0) spdlog::warn("{}: {} unreadable line(s) skipped", path, unreadable);
  nlohmann::json llms = nlohmann::json::object();
  for (const auto& [name, by_step] : points) {
    nlohmann::json s = {{"step", nlohmann::json::array()},           {"loss", nlohmann::json::array()},
                        {"bits_per_token", nlohmann::json::array()}, {"dial", nlohmann::json::array()},
                        {"active_blocks", nlohmann::json::array()},  {"mfu", nlohmann::json::array()}};
    for (const auto& [step, p] : by_step) {
      for (auto& [key, arr] : s.items()) arr.push_back(p.at(key));
    }
    s["time_ms"] = mean_step_time(by_step);
    llms[name] = std::move(s);
  }
  return {{"found", true},
          {"path", path},
          {"llms", std::move(llms)},
          {"events", std::move(events)},
          {"unreadable_lines", unreadable}};
}

}  // namespace localist
