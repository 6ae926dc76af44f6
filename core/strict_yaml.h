// SPDX-License-Identifier: Apache-2.0
// strict_yaml.h: strict, typed reading of YAML mappings for configs. Every key a
// section reads becomes part of its schema; a key that nobody read is "unknown"
// (with a did-you-mean hint). Errors name file:line:column and the dotted key path.
// Limits: mappings, scalars and lists of scalars/mappings only; no anchors checks.
#pragma once
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace localist {

// The largest step count, seed or size a config may give (room left for sums of them).
constexpr int64_t kConfigHuge = std::numeric_limits<int64_t>::max() / 4;

class StrictMap {
 public:
  // `node` must be a mapping (or null/undefined: an absent section reads as empty).
  StrictMap(const YAML::Node& node, std::string path, std::shared_ptr<const std::string> file);

  // Parses a whole YAML document from text; `file` is used in messages. Each override
  // "a.b.c=value" replaces (or adds) that key before anything reads the document.
  static StrictMap parse(const std::string& text, const std::string& file,
                         const std::vector<std::string>& overrides = {});
  static StrictMap load_file(const std::string& path);

  bool has(const std::string& key) const;
  int64_t get_int(const std::string& key, int64_t def, int64_t lo, int64_t hi);
  double get_double(const std::string& key, double def, double lo, double hi);
  bool get_bool(const std::string& key, bool def);
  std::string get_string(const std::string& key, const std::string& def, const std::vector<std::string>& allowed = {});
  std::vector<std::string> get_string_list(const std::string& key, const std::vector<std::string>& def);
  // A nested mapping (empty when absent). Call finish() on it too.
  StrictMap get_map(const std::string& key);
  // A list of mappings (empty when absent).
  std::vector<StrictMap> get_map_list(const std::string& key);
  // The raw node, for values with several accepted shapes; marks the key as known.
  YAML::Node get_node(const std::string& key);

  // Throws ConfigError for the first key that was never read.
  void finish() const;

  // Throws ConfigError located at `key` (or at the map itself if key is empty).
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;
  // Throws ConfigError located at an arbitrary node below this map.
  [[noreturn]] void fail_at(const YAML::Node& node, const std::string& key_path, const std::string& message) const;

  const std::string& path() const { return path_; }
  std::string key_path(const std::string& key) const;
  const std::string& file() const { return *file_; }
  const YAML::Node& node() const { return node_; }

 private:
  YAML::Node value(const std::string& key) const;
  std::string where(const YAML::Mark& mark) const;

  YAML::Node node_;
  std::string path_;
  std::shared_ptr<const std::string> file_;
  mutable std::set<std::string> known_;
};

// Reads one scalar of a node as a number, with the same checks and messages as StrictMap.
double yaml_to_double(const StrictMap& owner, const YAML::Node& node, const std::string& key_path);

}  // namespace localist
