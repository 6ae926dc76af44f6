// SPDX-License-Identifier: Apache-2.0
// dial_config.cpp: see dial_config.h.
#include "launch/dial_config.h"

#include <limits>
#include <memory>

namespace localist {
namespace {

std::vector<double> parse_dial_value(const StrictMap& owner, const YAML::Node& n, const std::string& path) {
  std::vector<double> v;
  if (n.IsSequence()) {
    if (n.size() == 0) owner.fail_at(n, path, "a per-layer dial needs one value per layer");
    for (size_t i = 0; i < n.size(); ++i)
      v.push_back(yaml_to_double(owner, n[i], path + "[" + std::to_string(i) + "]"));
  } else {
    v.push_back(yaml_to_double(owner, n, path));
  }
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] < 0.0 || v[i] > 1.0) {
      const YAML::Node& at = n.IsSequence() ? n[i] : n;
      owner.fail_at(at, path, "dial value " + YAML::Dump(at) + " is outside [0, 1]");
    }
  }
  return v;
}

DialSchedule parse_schedule(StrictMap& train) {
  DialSchedule d;
  YAML::Node n = train.get_node("dial");
  const std::string path = train.key_path("dial");
  if (!n.IsDefined() || n.IsNull()) return d;
  if (!n.IsMap()) {
    d.value = parse_dial_value(train, n, path);
    return d;
  }
  StrictMap m(n, path, std::make_shared<const std::string>(train.file()));
  d.kind = m.get_string("schedule", "constant", {"constant", "linear", "cosine", "points", "stages", "uniform"});
  if (d.kind == "constant") {
    if (!m.has("value")) m.fail("", "a constant dial schedule needs a value");
    d.value = parse_dial_value(m, m.get_node("value"), m.key_path("value"));
  } else if (d.kind == "linear" || d.kind == "cosine") {
    d.from = m.get_double("from", 0.0, 0.0, 1.0);
    d.to = m.get_double("to", 1.0, 0.0, 1.0);
    d.start = m.get_int("start", 0, 0, kConfigHuge);
    if (!m.has("end")) m.fail("", "a " + d.kind + " dial schedule needs an end step");
    d.end = m.get_int("end", 1, 0, kConfigHuge);
    if (d.end <= d.start) m.fail("end", "end must be after start (" + std::to_string(d.start) + ")");
  } else if (d.kind == "points") {
    YAML::Node p = m.get_node("points");
    if (!p.IsSequence() || p.size() == 0) m.fail("points", "expected a list of [step, value] pairs");
    for (size_t i = 0; i < p.size(); ++i) {
      const std::string pp = m.key_path("points") + "[" + std::to_string(i) + "]";
      if (!p[i].IsSequence() || p[i].size() != 2) m.fail_at(p[i], pp, "expected [step, value]");
      int64_t step = 0;
      if (!YAML::convert<int64_t>::decode(p[i][0], step) || step < 0)
        m.fail_at(p[i][0], pp, "step must be an integer >= 0");
      if (!d.points.empty() && step <= d.points.back().step) m.fail_at(p[i][0], pp, "steps must increase");
      d.points.push_back({step, parse_dial_value(m, p[i][1], pp).at(0)});
    }
  } else if (d.kind == "stages") {
    std::vector<StrictMap> stages = m.get_map_list("stages");
    if (stages.empty()) m.fail("stages", "expected a list of {name, until, value}");
    for (size_t i = 0; i < stages.size(); ++i) {
      StrictMap& s = stages[i];
      DialStage st;
      st.name = s.get_string("name", "stage" + std::to_string(i));
      st.until_step = s.get_int("until", -1, 1, kConfigHuge);
      if (i + 1 < stages.size() && st.until_step < 0) s.fail("", "every stage but the last needs `until`");
      if (!d.stages.empty() && st.until_step >= 0 && st.until_step <= d.stages.back().until_step) {
        s.fail("until", "stages must be in increasing `until` order");
      }
      if (!s.has("value")) s.fail("", "each stage needs a value");
      st.value = parse_dial_value(s, s.get_node("value"), s.key_path("value"));
      s.finish();
      d.stages.push_back(st);
    }
  } else {  // uniform
    d.lo = m.get_double("lo", 0.0, 0.0, 1.0);
    d.hi = m.get_double("hi", 1.0, 0.0, 1.0);
    if (d.hi < d.lo) m.fail("hi", "hi must be >= lo");
  }
  m.finish();
  return d;
}

// train.dial_profile: uniform | linear | {power: p} | [one value per layer].
DialProfile parse_dial_profile(StrictMap& train) {
  DialProfile p;
  YAML::Node n = train.get_node("dial_profile");
  const std::string path = train.key_path("dial_profile");
  if (!n.IsDefined() || n.IsNull()) return p;
  if (n.IsScalar()) {
    p.kind = n.as<std::string>();
    if (p.kind != "uniform" && p.kind != "linear") {
      train.fail_at(n, path, "unknown profile '" + p.kind + "' (expected uniform, linear, {power: p} or a list)");
    }
  } else if (n.IsSequence()) {
    p.kind = "values";
    p.values = parse_dial_value(train, n, path);
  } else {
    StrictMap m(n, path, std::make_shared<const std::string>(train.file()));
    if (!m.has("power")) m.fail("", "a dial profile map needs `power` (λ_ℓ ∝ (ℓ/(L−1))^power)");
    p.kind = "power";
    p.power = m.get_double("power", 1.0, 1e-3, 100.0);
    m.finish();
  }
  return p;
}

void emit_dial_value(YAML::Emitter& e, const std::vector<double>& v) {
  if (v.size() == 1) {
    e << v[0];
  } else {
    e << YAML::Flow << YAML::BeginSeq;
    for (double x : v) e << x;
    e << YAML::EndSeq;
  }
}

// The dial's schedule: its kind and the keys of that kind.
void emit_dial_schedule(YAML::Emitter& e, const DialSchedule& d) {
  e << YAML::Key << "dial" << YAML::Value << YAML::BeginMap << YAML::Key << "schedule" << YAML::Value << d.kind;
  if (d.kind == "constant") {
    e << YAML::Key << "value" << YAML::Value;
    emit_dial_value(e, d.value);
  } else if (d.kind == "linear" || d.kind == "cosine") {
    e << YAML::Key << "from" << YAML::Value << d.from << YAML::Key << "to" << YAML::Value << d.to;
    e << YAML::Key << "start" << YAML::Value << d.start << YAML::Key << "end" << YAML::Value << d.end;
  } else if (d.kind == "points") {
    e << YAML::Key << "points" << YAML::Value << YAML::BeginSeq;
    for (const auto& p : d.points) e << YAML::Flow << YAML::BeginSeq << p.step << p.value << YAML::EndSeq;
    e << YAML::EndSeq;
  } else if (d.kind == "stages") {
    e << YAML::Key << "stages" << YAML::Value << YAML::BeginSeq;
    for (const auto& s : d.stages) {
      e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << s.name;
      if (s.until_step >= 0) e << YAML::Key << "until" << YAML::Value << s.until_step;
      e << YAML::Key << "value" << YAML::Value;
      emit_dial_value(e, s.value);
      e << YAML::EndMap;
    }
    e << YAML::EndSeq;
  } else {
    e << YAML::Key << "lo" << YAML::Value << d.lo << YAML::Key << "hi" << YAML::Value << d.hi;
  }
  e << YAML::EndMap;
}

}  // namespace

DialSchedule dial_config_parse(StrictMap& train) {
  DialSchedule d = parse_schedule(train);
  d.profile = parse_dial_profile(train);
  return d;
}

void dial_config_check_layers(StrictMap& train, const DialSchedule& d, int64_t n_layers) {
  auto check = [&](const std::vector<double>& v) {
    if (v.size() != 1 && static_cast<int64_t>(v.size()) != n_layers) {
      train.fail("dial", "per-layer dial has " + std::to_string(v.size()) + " values but model.n_layers is " +
                             std::to_string(n_layers));
    }
  };
  if (d.kind == "constant") check(d.value);
  for (const auto& s : d.stages) check(s.value);
  if (d.profile.kind == "values" && static_cast<int64_t>(d.profile.values.size()) != n_layers) {
    train.fail("dial_profile", "the profile has " + std::to_string(d.profile.values.size()) +
                                   " values but model.n_layers is " + std::to_string(n_layers));
  }
}

void dial_config_emit(YAML::Emitter& e, const DialSchedule& d) {
  emit_dial_schedule(e, d);
  if (d.profile.kind == "linear") e << YAML::Key << "dial_profile" << YAML::Value << "linear";
  if (d.profile.kind == "power") {
    e << YAML::Key << "dial_profile" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key << "power"
      << YAML::Value << d.profile.power << YAML::EndMap;
  }
  if (d.profile.kind == "values") {
    e << YAML::Key << "dial_profile" << YAML::Value << YAML::Flow << YAML::BeginSeq;  // a list, even of one
    for (double x : d.profile.values) e << x;
    e << YAML::EndSeq;
  }
}

}  // namespace localist
