// SPDX-License-Identifier: Apache-2.0
// pool_map.cpp: see pool_map.h. Shares: the largest per-unit load is minimised by giving
// units one at a time to the LLM with the largest load per unit; units that do not lower
// that maximum go first to LLMs that held them before (no move). Sharing: an exact search
// over LLM → unit assignments while it is small (at most 10^6), else longest-first.
#include "pool/pool_map.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <set>

#include "core/error.h"

namespace localist {
namespace {

constexpr double kRel = 1e-12;  // loads compare equal within this relative tolerance

std::vector<int> previous_units(const PoolMap* prev, size_t llm, int units) {
  std::vector<int> out;
  if (!prev || llm >= prev->units.size()) return out;
  for (int u : prev->units[llm]) {
    if (u < units) out.push_back(u);
  }
  return out;
}

// Disjoint shares: counts by load, then concrete units keeping previous ones.
void plan_disjoint(PoolMap& m, const std::vector<double>& loads, const std::vector<int>& live, const PoolMap* prev) {
  const int U = m.unit_count();
  std::vector<int> n(loads.size(), 0);
  for (int i : live) n[i] = 1;
  auto ratio = [&](int i) { return loads[i] / n[i]; };
  for (int left = U - static_cast<int>(live.size()); left > 0; --left) {
    int best = live.front();
    for (int i : live) {
      if (ratio(i) > ratio(best) * (1 + kRel)) best = i;
    }
    ++n[best];
  }
  double top = 0;
  for (int i : live) top = std::max(top, ratio(i));
  // The fewest units each LLM needs to stay at or under the maximum; the rest is slack.
  std::vector<int> need(loads.size(), 0);
  int slack = U;
  for (int i : live) {
    need[i] = std::max(1, static_cast<int>(std::ceil(loads[i] / (top * (1 + kRel)) - kRel)));
    while (loads[i] / need[i] > top * (1 + kRel)) ++need[i];
    slack -= need[i];
  }
  std::vector<std::vector<int>> had(loads.size());
  for (int i : live) had[i] = previous_units(prev, i, U);
  // Slack first to LLMs that held more units than they need (keeping them costs no move) ...
  for (int i : live) {
    const int take = std::min<int>(slack, std::max<int>(0, static_cast<int>(had[i].size()) - need[i]));
    need[i] += take, slack -= take;
  }
  // ... then where the load per unit is largest.
  for (; slack > 0; --slack) {
    int best = live.front();
    for (int i : live) {
      if (loads[i] / need[i] > loads[best] / need[best] * (1 + kRel)) best = i;
    }
    ++need[best];
  }
  std::vector<bool> taken(U, false);
  for (int i : live) {
    for (int u : had[i]) {
      if (static_cast<int>(m.units[i].size()) < need[i] && !taken[u]) m.units[i].push_back(u), taken[u] = true;
    }
  }
  int next_free = 0;
  for (int i : live) {
    while (static_cast<int>(m.units[i].size()) < need[i]) {
      while (taken[next_free]) ++next_free;
      m.units[i].push_back(next_free);
      taken[next_free] = true;
    }
    std::sort(m.units[i].begin(), m.units[i].end());
  }
}

// Sharing: every LLM on one unit, every unit used; minimise (largest unit load, moves).
void plan_shared(PoolMap& m, const std::vector<double>& loads, const std::vector<int>& live, const PoolMap* prev) {
  const int U = m.unit_count(), L = static_cast<int>(live.size());
  std::vector<int> was(L, -1);
  for (int k = 0; k < L; ++k) {
    const auto had = previous_units(prev, live[k], U);
    if (!had.empty()) was[k] = had.front();
  }
  std::vector<int> best;
  double best_load = std::numeric_limits<double>::infinity();
  int best_moves = std::numeric_limits<int>::max();
  const double combos = std::pow(static_cast<double>(U), L);
  if (combos <= 1e6) {
    std::vector<int> at(L);
    std::vector<double> unit_load(U, 0.0);
    std::vector<int> on_unit(U, 0);
    std::function<void(int, int)> search = [&](int k, int moves) {
      if (k == L) {
        for (int u = 0; u < U; ++u) {
          if (on_unit[u] == 0) return;
        }
        const double top = *std::max_element(unit_load.begin(), unit_load.end());
        if (top < best_load * (1 - kRel) || (top <= best_load * (1 + kRel) && moves < best_moves)) {
          best = at, best_load = top, best_moves = moves;
        }
        return;
      }
      for (int u = 0; u < U; ++u) {
        if (unit_load[u] + loads[live[k]] > best_load * (1 + kRel)) continue;
        at[k] = u, unit_load[u] += loads[live[k]], ++on_unit[u];
        search(k + 1, moves + (was[k] == u ? 0 : 1));
        unit_load[u] -= loads[live[k]], --on_unit[u];
      }
    };
    search(0, 0);
  } else {
    std::vector<int> order(L);
    for (int k = 0; k < L; ++k) order[k] = k;
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return loads[live[a]] > loads[live[b]]; });
    std::vector<double> unit_load(U, 0.0);
    best.assign(L, 0);
    for (int k : order) {
      int u = static_cast<int>(std::min_element(unit_load.begin(), unit_load.end()) - unit_load.begin());
      if (was[k] >= 0 && unit_load[was[k]] <= unit_load[u] * (1 + kRel)) u = was[k];
      best[k] = u, unit_load[u] += loads[live[k]];
    }
  }
  for (int k = 0; k < L; ++k) m.units[live[k]] = {best[k]};
}

}  // namespace

bool PoolMap::has(size_t llm, int rank) const {
  if (llm >= units.size()) return false;
  return std::binary_search(units[llm].begin(), units[llm].end(), rank / bp);
}

std::vector<int> PoolMap::ranks(size_t llm) const {
  std::vector<int> out;
  for (int u : units.at(llm)) {
    for (int b = 0; b < bp; ++b) out.push_back(u * bp + b);
  }
  return out;
}

std::vector<int> PoolMap::llms_of(int rank) const {
  std::vector<int> out;
  for (size_t i = 0; i < units.size(); ++i) {
    if (has(i, rank)) out.push_back(static_cast<int>(i));
  }
  return out;
}

int PoolMap::group_color(int rank) const {
  const auto mine = llms_of(rank);
  return mine.empty() ? -1 : units[mine.front()].front();
}

bool PoolMap::shared() const {
  std::vector<int> count(unit_count(), 0);
  for (const auto& u : units) {
    for (int x : u) {
      if (++count[x] > 1) return true;
    }
  }
  return false;
}

double PoolMap::max_unit_load(const std::vector<double>& loads) const {
  std::vector<double> per(unit_count(), 0.0);
  for (size_t i = 0; i < units.size(); ++i) {
    for (int u : units[i]) per[u] += loads[i] / static_cast<double>(units[i].size());
  }
  return per.empty() ? 0.0 : *std::max_element(per.begin(), per.end());
}

std::string PoolMap::describe(const std::vector<std::string>& names) const {
  std::string out;
  for (size_t i = 0; i < units.size(); ++i) {
    if (units[i].empty()) continue;
    const auto r = ranks(i);
    if (!out.empty()) out += ' ';
    out += (i < names.size() ? names[i] : std::to_string(i)) + ":";
    bool contiguous = r.back() - r.front() + 1 == static_cast<int>(r.size());
    if (contiguous) {
      out += r.size() == 1 ? std::to_string(r.front()) : std::to_string(r.front()) + "-" + std::to_string(r.back());
    } else {
      for (size_t k = 0; k < r.size(); ++k) out += (k ? "," : "") + std::to_string(r[k]);
    }
  }
  return out;
}

nlohmann::json PoolMap::to_json() const { return {{"epoch", epoch}, {"world", world}, {"bp", bp}, {"units", units}}; }

PoolMap PoolMap::from_json(const nlohmann::json& j) {
  PoolMap m;
  try {
    m.epoch = j.at("epoch").get<int64_t>();
    m.world = j.at("world").get<int>();
    m.bp = j.at("bp").get<int>();
    m.units = j.at("units").get<std::vector<std::vector<int>>>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("pool map: malformed (") + e.what() + ")");
  }
  if (m.bp < 1 || m.world < m.bp || m.world % m.bp != 0) throw Error("pool map: world and bp do not tile");
  for (const auto& u : m.units) {
    for (int x : u) {
      if (x < 0 || x >= m.unit_count()) throw Error("pool map: unit " + std::to_string(x) + " outside the world");
    }
  }
  return m;
}

PoolMap pool_map_plan(const std::vector<double>& loads, int world, int bp, const PoolMap* previous) {
  if (bp < 1 || world < bp || world % bp != 0) {
    throw Error("pool map: " + std::to_string(world) + " ranks do not tile into replicas of " + std::to_string(bp));
  }
  PoolMap m;
  m.world = world, m.bp = bp;
  m.epoch = previous ? previous->epoch + 1 : 0;
  m.units.assign(loads.size(), {});
  std::vector<int> live;
  for (size_t i = 0; i < loads.size(); ++i) {
    if (loads[i] > 0) live.push_back(static_cast<int>(i));
  }
  if (live.empty()) throw Error("pool map: no LLM to place");
  if (m.unit_count() >= static_cast<int>(live.size())) {
    plan_disjoint(m, loads, live, previous);
  } else {
    plan_shared(m, loads, live, previous);
  }
  return m;
}

int64_t pool_map_moves(const PoolMap& previous, const PoolMap& next) {
  int64_t moves = 0;
  for (size_t i = 0; i < next.units.size(); ++i) {
    std::set<int> had;
    if (i < previous.units.size()) had.insert(previous.units[i].begin(), previous.units[i].end());
    for (int u : next.units[i]) moves += had.count(u) ? 0 : 1;
  }
  return moves;
}

}  // namespace localist
