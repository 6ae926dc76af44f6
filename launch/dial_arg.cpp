// SPDX-License-Identifier: Apache-2.0
// dial_arg.cpp: see dial_arg.h.
#include "launch/dial_arg.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include "core/error.h"

namespace localist {
namespace {

double parse_number(const std::string& full, const std::string& part) {
  char* end = nullptr;
  const double v = std::strtod(part.c_str(), &end);
  if (part.empty() || *end != '\0' || !std::isfinite(v)) {
    throw ConfigError("--dial '" + full + "': '" + part + "' is not a number (use 0.6, 0,0.5,1 or 0:1:0.1)");
  }
  return v;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(item);
  if (!s.empty() && s.back() == sep) out.push_back("");
  return out;
}

}  // namespace

std::vector<double> dial_arg_parse(const std::string& text) {
  std::vector<double> out;
  if (text.empty()) throw ConfigError("--dial: empty value (use 0.6, 0,0.5,1 or 0:1:0.1)");
  if (text.find(':') != std::string::npos) {
    auto parts = split(text, ':');
    if (parts.size() != 3) throw ConfigError("--dial '" + text + "': a sweep is lo:hi:step, e.g. 0:1:0.1");
    const double lo = parse_number(text, parts[0]), hi = parse_number(text, parts[1]),
                 step = parse_number(text, parts[2]);
    if (!(step > 0)) throw ConfigError("--dial '" + text + "': the sweep step must be > 0");
    if (hi < lo) throw ConfigError("--dial '" + text + "': the sweep needs lo <= hi");
    // Count in floating point first: (hi - lo) / step can exceed every integer type.
    const double points = std::floor((hi - lo) / step + 1e-9);
    if (!(points <= 10000)) throw ConfigError("--dial '" + text + "': more than 10000 sweep points; use a larger step");
    const auto n = static_cast<long>(points);
    for (long i = 0; i <= n; ++i) out.push_back(std::min(hi, lo + i * step));
  } else {
    for (const auto& p : split(text, ',')) out.push_back(parse_number(text, p));
  }
  for (double v : out) {
    if (v < 0.0 || v > 1.0) {
      std::ostringstream m;
      m << "--dial '" << text << "': value " << v << " is outside [0, 1]";
      throw ConfigError(m.str());
    }
  }
  return out;
}

DialProfile dial_profile_arg_parse(const std::string& text) {
  DialProfile p;
  if (text == "uniform" || text == "linear") {
    p.kind = text;
  } else if (text.rfind("power:", 0) == 0) {
    p.kind = "power";
    char* end = nullptr;
    const std::string num = text.substr(6);
    p.power = std::strtod(num.c_str(), &end);
    if (num.empty() || *end != '\0' || !(p.power >= 1e-3 && p.power <= 100)) {
      throw ConfigError("--dial-profile '" + text + "': the power must be a number in [0.001, 100], e.g. power:5");
    }
  } else if (!text.empty() && (std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '.')) {
    p.kind = "values";
    for (const auto& part : split(text, ',')) {
      char* end = nullptr;
      const double v = std::strtod(part.c_str(), &end);
      if (part.empty() || *end != '\0' || !(v >= 0.0 && v <= 1.0)) {
        throw ConfigError("--dial-profile '" + text + "': '" + part + "' is not a value in [0, 1]");
      }
      p.values.push_back(v);
    }
  } else {
    throw ConfigError("--dial-profile '" + text + "': expected uniform, linear, power:P or per-layer values 0,0.5,1");
  }
  return p;
}

}  // namespace localist
