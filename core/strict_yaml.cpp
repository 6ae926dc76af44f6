// SPDX-License-Identifier: Apache-2.0
// strict_yaml.cpp: see strict_yaml.h. yaml-cpp marks are 0-based; messages are 1-based.
#include "core/strict_yaml.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace localist {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string type_name(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Null:
      return "an empty value";
    case YAML::NodeType::Scalar:
      return "'" + n.Scalar() + "'";
    default:
      return "nothing";
  }
}

}  // namespace

StrictMap::StrictMap(const YAML::Node& node, std::string path, std::shared_ptr<const std::string> file)
    : node_(node), path_(std::move(path)), file_(std::move(file)) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) {
    throw ConfigError(where(node_.Mark()) + (path_.empty() ? "config" : path_) + ": expected a mapping of keys, got " +
                      type_name(node_));
  }
  if (node_.IsMap()) {
    std::set<std::string> seen;
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      const std::string k = it->first.Scalar();
      if (!seen.insert(k).second) {
        throw ConfigError(where(it->first.Mark()) + key_path(k) + ": duplicate key (each key may appear once)");
      }
    }
  }
}

StrictMap StrictMap::parse(const std::string& text, const std::string& file,
                           const std::vector<std::string>& overrides) {
  auto name = std::make_shared<const std::string>(file);
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(file + ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1) +
                      ": YAML syntax error: " + e.msg);
  }
  if (root.IsNull() || !root.IsDefined()) {
    throw ConfigError(file + ": the config is empty; start from configs/reference.yaml");
  }
  for (const std::string& o : overrides) {
    const size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0) throw ConfigError("--set '" + o + "': expected key.path=value");
    const std::string path = o.substr(0, eq);
    if (eq + 1 == o.size()) {
      throw ConfigError("--set '" + o + "': no value; to return a key to its default, leave it out of --set");
    }
    YAML::Node value;
    try {
      value = YAML::Load(o.substr(eq + 1));
    } catch (const YAML::ParserException& e) {
      throw ConfigError("--set '" + o + "': the value is not valid YAML: " + e.msg);
    }
    // Walk the dotted path with fresh node handles (yaml-cpp nodes alias on assignment).
    std::vector<std::string> keys;
    for (size_t b = 0, e; b <= path.size(); b = e + 1) {
      e = path.find('.', b);
      if (e == std::string::npos) e = path.size();
      keys.push_back(path.substr(b, e - b));
    }
    std::vector<YAML::Node> chain{root};
    for (size_t i = 0; i + 1 < keys.size(); ++i) {
      YAML::Node next = chain.back()[keys[i]];
      if (next.IsDefined() && !next.IsNull() && !next.IsMap()) {
        throw ConfigError("--set '" + o + "': '" + keys[i] + "' is not a mapping in " + file);
      }
      if (!next.IsDefined() || next.IsNull()) chain.back()[keys[i]] = YAML::Node(YAML::NodeType::Map);
      chain.push_back(chain.back()[keys[i]]);
    }
    chain.back()[keys.back()] = value;
  }
  return StrictMap(root, "", name);
}

StrictMap StrictMap::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open config file (does it exist and is it readable?)");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse(ss.str(), path);
}

std::string StrictMap::where(const YAML::Mark& mark) const {
  if (mark.line < 0) return *file_ + ": ";
  return *file_ + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1) + ": ";
}

std::string StrictMap::key_path(const std::string& key) const {
  if (key.empty()) return path_;
  return path_.empty() ? key : path_ + "." + key;
}

bool StrictMap::has(const std::string& key) const {
  known_.insert(key);
  return node_.IsMap() && node_[key].IsDefined() && !node_[key].IsNull();
}

YAML::Node StrictMap::value(const std::string& key) const {
  known_.insert(key);
  if (!node_.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    if (it->first.Scalar() == key) return it->second;
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

void StrictMap::fail(const std::string& key, const std::string& message) const {
  YAML::Mark mark = node_.IsDefined() ? node_.Mark() : YAML::Mark::null_mark();
  if (!key.empty() && node_.IsMap()) {
    for (auto it = node_.begin(); it != node_.end(); ++it) {
      if (it->first.Scalar() == key) {
        mark = it->second.IsNull() ? it->first.Mark() : it->second.Mark();
        break;
      }
    }
  }
  throw ConfigError(where(mark) + key_path(key) + ": " + message);
}

void StrictMap::fail_at(const YAML::Node& node, const std::string& key_path, const std::string& message) const {
  throw ConfigError(where(node.Mark()) + key_path + ": " + message);
}

double yaml_to_double(const StrictMap& owner, const YAML::Node& node, const std::string& key_path) {
  if (!node.IsScalar()) owner.fail_at(node, key_path, "expected a number, got " + type_name(node));
  double v = 0;
  if (!YAML::convert<double>::decode(node, v) || std::isnan(v)) {
    owner.fail_at(node, key_path, "expected a number, got " + type_name(node));
  }
  return v;
}

int64_t StrictMap::get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi) {
  YAML::Node v = value(key);
  if (!v.IsDefined() || v.IsNull()) return def;
  int64_t out = 0;
  if (!v.IsScalar() || !YAML::convert<int64_t>::decode(v, out)) {
    fail(key, "expected an integer, got " + type_name(v));
  }
  if (out < lo || out > hi) {
    fail(key,
         "value " + std::to_string(out) + " is out of range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return out;
}

double StrictMap::get_double(const std::string& key, double def, double lo, double hi) {
  YAML::Node v = value(key);
  if (!v.IsDefined() || v.IsNull()) return def;
  double out = yaml_to_double(*this, v, key_path(key));
  if (out < lo || out > hi) {
    std::ostringstream m;
    m << "value " << out << " is out of range [" << lo << ", " << hi << "]";
    fail(key, m.str());
  }
  return out;
}

bool StrictMap::get_bool(const std::string& key, bool def) {
  YAML::Node v = value(key);
  if (!v.IsDefined() || v.IsNull()) return def;
  bool out = false;
  if (!v.IsScalar() || !YAML::convert<bool>::decode(v, out)) {
    fail(key, "expected true or false, got " + type_name(v));
  }
  return out;
}

std::string StrictMap::get_string(const std::string& key, const std::string& def,
                                  const std::vector<std::string>& allowed) {
  YAML::Node v = value(key);
  if (!v.IsDefined() || v.IsNull()) return def;
  if (!v.IsScalar()) fail(key, "expected a string, got " + type_name(v));
  std::string out = v.Scalar();
  if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), out) == allowed.end()) {
    std::string list;
    for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
    fail(key, "'" + out + "' is not one of: " + list);
  }
  return out;
}

std::vector<std::string> StrictMap::get_string_list(const std::string& key, const std::vector<std::string>& def) {
  YAML::Node v = value(key);
  if (!v.IsDefined() || v.IsNull()) return def;
  if (!v.IsSequence()) fail(key, "expected a list of strings, got " + type_name(v));
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].IsScalar()) fail_at(v[i], key_path(key) + "[" + std::to_string(i) + "]", "expected a string");
    out.push_back(v[i].Scalar());
  }
  return out;
}

StrictMap StrictMap::get_map(const std::string& key) { return StrictMap(value(key), key_path(key), file_); }

std::vector<StrictMap> StrictMap::get_map_list(const std::string& key) {
  YAML::Node v = value(key);
  std::vector<StrictMap> out;
  if (!v.IsDefined() || v.IsNull()) return out;
  if (!v.IsSequence()) fail(key, "expected a list of mappings, got " + type_name(v));
  for (size_t i = 0; i < v.size(); ++i) {
    if (!v[i].IsMap()) {
      fail_at(v[i], key_path(key) + "[" + std::to_string(i) + "]", "expected a mapping, got " + type_name(v[i]));
    }
    out.emplace_back(v[i], key_path(key) + "[" + std::to_string(i) + "]", file_);
  }
  return out;
}

YAML::Node StrictMap::get_node(const std::string& key) { return value(key); }

void StrictMap::finish() const {
  if (!node_.IsMap()) return;
  for (auto it = node_.begin(); it != node_.end(); ++it) {
    const std::string k = it->first.Scalar();
    if (known_.count(k)) continue;
    std::string best;
    size_t best_d = 3;  // suggest only close matches
    for (const auto& cand : known_) {
      size_t d = edit_distance(k, cand);
      if (d < best_d) best_d = d, best = cand;
    }
    std::string msg = "unknown key";
    if (!best.empty())
      msg += " (did you mean '" + best + "'?)";
    else
      msg += " (see configs/reference.yaml for every key)";
    throw ConfigError(where(it->first.Mark()) + key_path(k) + ": " + msg);
  }
}

}  // namespace localist
