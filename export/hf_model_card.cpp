// SPDX-License-Identifier: Apache-2.0
// hf_model_card.cpp: see hf_model_card.h.
#include "export/hf_model_card.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace localist {
namespace fs = std::filesystem;
namespace {

double num(const nlohmann::json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<double>() : 0.0;
}

// A YAML double-quoted scalar (JSON's escaping is valid YAML).
std::string quoted(const std::string& s) { return nlohmann::json(s).dump(); }

std::string front_matter(const HfCardInput& in) {
  std::string y =
      "---\nlibrary_name: transformers\npipeline_tag: text-generation\ntags:\n  - localist\n"
      "  - custom_code\n  - interpretability\n";
  y += "model-index:\n  - name: " + quoted(in.name) + "\n    results:\n";
  for (const auto& row : in.sweep) {
    y += fmt::format(
        "      - task:\n          type: text-generation\n          name: held-out language modelling at dial {:.2f}\n"
        "        dataset:\n          type: localist-heldout\n          name: {}\n        metrics:\n"
        "          - type: perplexity\n            value: {:.6f}\n          - type: bits_per_byte\n"
        "            value: {:.6f}\n",
        num(row, "dial"), quoted(in.heldout_what), num(row, "perplexity"), num(row, "bits_per_byte"));
  }
  return y + "---\n\n";
}

std::string sweep_table(const nlohmann::json& sweep) {
  std::string s =
      "| λ | perplexity | bits/byte | attention entropy (bits) | routing entropy (bits) | own-block "
      "fidelity | I(π) (bits) |\n|---|---|---|---|---|---|---|\n";
  for (const auto& r : sweep) {
    s += fmt::format("| {:.2f} | {:.4f} | {:.4f} | {:.3f} | {:.3f} | {:.4f} | {:.3f} |\n", num(r, "dial"),
                     num(r, "perplexity"), num(r, "bits_per_byte"), num(r, "attn_entropy_bits"),
                     num(r, "routing_entropy_bits"), num(r, "own_fidelity_mass"), num(r, "mutual_info_bits"));
  }
  return s;
}

std::string data_section(const HfCardInput& in) {
  std::string s = "## Training data\n\n| source | file | domain | used for | licence |\n|---|---|---|---|---|\n";
  for (const auto& src : in.sources) {
    const std::string lic = source_licence(src.path);
    s += fmt::format("| {} | `{}` | {} | {} | {} |\n", src.name, src.path, src.domain.empty() ? src.name : src.domain,
                     src.train ? "training" : "held out",
                     lic.empty() ? "not recorded (no README.md beside the file names it)" : lic);
  }
  return s + "\n";
}

std::string log_section(const nlohmann::json& card) {
  std::string s = "## Capacity growth: recruitment and spawn log\n\n";
  const auto& log = card.value("recruitment_log", nlohmann::json::array());
  if (log.empty()) s += "No block recruitment decision was logged.\n\n";
  for (const auto& d : log) s += "- block recruitment: `" + d.dump() + "`\n";
  if (card.contains("pool")) {
    for (const auto& e : card["pool"].value("log", nlohmann::json::array())) s += "- pool: `" + e.dump() + "`\n";
  }
  return s + "\n";
}

}  // namespace

std::string source_licence(const std::string& path) {
  const fs::path readme = fs::path(path).parent_path() / "README.md";
  std::ifstream f(readme);
  const std::string file = fs::path(path).filename().string();
  for (std::string line; std::getline(f, line);) {
    if (line.rfind("|", 0) != 0 || line.find(file) == std::string::npos) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    for (std::string cell; std::getline(ss, cell, '|');) cells.push_back(cell);
    if (cells.empty()) continue;
    std::string lic = cells.back();
    lic.erase(0, lic.find_first_not_of(' '));
    lic.erase(lic.find_last_not_of(' ') + 1);
    return lic;
  }
  return "";
}

std::string hf_model_card(const HfCardInput& in) {
  const auto& c = in.card;
  std::string dial;
  for (double v : in.dial) dial += fmt::format("{}{:.2f}", dial.empty() ? "" : ", ", v);
  std::string s = front_matter(in);
  s += "# " + in.name + "\n\nA localist language model trained with localist " +
       c["software"].value("version", std::string("?")) + " (commit " +
       c["software"].value("commit", std::string("?")) +
       "). Its representations move from *localist* (semantic blocks of heads stand for concepts; attention "
       "stays inside the block a token is routed to) at λ = 1 to *distributed* (a standard transformer) at λ = 0, "
       "by the locality dial λ, chosen per call without reloading.\n\n";
  s += "```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
       "model = AutoModelForCausalLM.from_pretrained(DIR, trust_remote_code=True)\n"
       "out = model(ids, dial=1.0, output_attentions=True, output_routing=True)  # dial: a value or one per "
       "layer\n```\n\n";
  s += "## Intended use and limits\n\nResearch on interpretable language models and audits of how a model routes "
       "and attends: the dial, the routing of every token (`output_routing=True`), the attention each token used "
       "(`output_attentions=True`) and rules (route and point rules, a domain tag) are inputs of `forward`. Not "
       "evaluated for any downstream task, safety or bias; trained on the small corpora below, it is not a "
       "general-purpose assistant. The default dial is the one it was trained at: " +
       dial + " (per layer).\n\n";
  s += data_section(in);
  s += "## Model Examination: the dial sweep\n\nHeld-out " + in.heldout_what + ", at each λ (every layer):\n\n" +
       sweep_table(in.sweep) + "\n";
  if (in.by_domain.is_object() && !in.by_domain.empty()) {
    s += "## Factors: results by domain\n\nAt the default dial:\n\n| domain | perplexity | bits/byte | tokens "
         "|\n|---|---|---|---|\n";
    for (const auto& [domain, r] : in.by_domain.items()) {
      s += fmt::format("| {} | {:.4f} | {:.4f} | {:.0f} |\n", domain, num(r, "perplexity"), num(r, "bits_per_byte"),
                       num(r, "tokens"));
    }
    s += "\n";
  }
  s += log_section(c);
  const auto& p = c.value("parameters", nlohmann::json::object());
  const auto& ck = c.value("checkpoint", nlohmann::json::object());
  s += fmt::format(
      "## Parameters and compute\n\n{} parameters allocated, {} in use ({} shared, {} per block; "
      "{} active blocks of {} slots). Trained for {} steps on {} tokens. Model section: `{}`.\n\n",
      p.value("allocated", int64_t(0)), p.value("active", int64_t(0)), p.value("shared", int64_t(0)),
      p.value("per_block", int64_t(0)), c.value("blocks", nlohmann::json::array()).size(),
      c.value("model", nlohmann::json::object()).value("k_max", int64_t(0)), ck.value("step", int64_t(0)),
      ck.value("tokens_seen", int64_t(0)), c.value("model", nlohmann::json::object()).dump());
  s += "## The method\n\n";
  for (const auto& m : c.value("method", nlohmann::json::array())) {
    s += "- " + m.value("author", std::string()) + ", \"" + m.value("title", std::string()) +
         "\", arXiv:" + m.value("arxiv", std::string()) + "\n";
  }
  s += "\n## Software\n\nExported by localist " + c["software"].value("version", std::string("?")) + " (commit " +
       c["software"].value("commit", std::string("?")) + ") from checkpoint step " +
       std::to_string(ck.value("step", int64_t(0))) + ", LLM `" + ck.value("llm", std::string("main")) +
       "`. The model code (modeling_localist.py) is plain PyTorch and is the reference for what the weights mean.\n";
  return s;
}

}  // namespace localist
