// SPDX-License-Identifier: Apache-2.0
// step_reporter.cpp: see step_reporter.h.
#include "run/step_reporter.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "model/model_flops.h"

namespace localist {
namespace {

// λ for the progress line: one value when every layer has it, else each layer's (up to
// 8 layers; more: first…last and the mean).
std::string dial_text(const std::vector<double>& v) {
  if (v.empty()) return "-";
  if (std::all_of(v.begin(), v.end(), [&](double x) { return x == v.front(); })) return fmt::format("{:.2f}", v[0]);
  if (v.size() <= 8) {
    std::string s;
    for (double x : v) s += fmt::format("{}{:.2f}", s.empty() ? "" : "/", x);
    return s;
  }
  double sum = 0;
  for (double x : v) sum += x;
  return fmt::format("{:.2f}…{:.2f} (mean {:.2f})", v.front(), v.back(), sum / static_cast<double>(v.size()));
}

std::string mfu_text(const nlohmann::json& mfu) {
  return mfu.is_number() ? fmt::format("MFU {:.1f}%", 100 * mfu.get<double>()) : std::string("MFU n/a");
}

}  // namespace

nlohmann::json step_time_json(const StepStats& s, const StepTime& t) {
  const double parts[] = {t.eval_ms,    t.checkpoint_ms, t.boundary_ms, t.rounds_ms,   s.data_ms,
                          s.forward_ms, s.backward_ms,   s.comm_ms,     s.optimizer_ms};
  double sum = 0;
  for (double p : parts) sum += p;
  return {{"step", t.wall_ms},
          {"eval", t.eval_ms},
          {"checkpoint", t.checkpoint_ms},
          {"boundary", t.boundary_ms},
          {"rounds", t.rounds_ms},
          {"data", s.data_ms},
          {"forward", s.forward_ms},
          {"backward", s.backward_ms},
          {"sync", s.comm_ms},
          {"optimizer", s.optimizer_ms},
          {"other", std::max(0.0, t.wall_ms - sum)}};
}

StepReporter::StepReporter(const PoolConfig& pool, bool lead, DevicePeak peak, std::shared_ptr<CommByteCounts> comm)
    : pool_(pool), progress_(lead), bits_(pool.llms.size(), -1.0), peak_(std::move(peak)), comm_(std::move(comm)) {}

void StepReporter::heard(const nlohmann::json& rec) {
  const int i = pool_.index(rec.value("llm", "main"));
  bits_.resize(pool_.llms.size(), -1.0);  // a spawn adds an LLM
  if (i >= 0) bits_[i] = rec.value("bits_per_token", -1.0);
}

nlohmann::json StepReporter::report(const ModelGroup& g, int64_t step, const StepStats& s,
                                    const std::vector<double>& dial, double lr, const StepTime& time, bool log_step) {
  const TrainConfig& tc = g.setup().train;
  const double tokens = static_cast<double>(tc.global_batch * g.setup().model.context);  // over the group's ranks
  const double tok_s = tokens / (time.train_ms / 1000.0);
  const double bits = s.ce / std::log(2.0);
  const int64_t active = static_cast<int64_t>(g.model().active_slots().size());
  const double flops_token = model_flops_per_token(g.setup().model, active, g.model().vocab_size());
  const double group_peak = peak_.flops * g.mesh().ranks->size();
  const nlohmann::json mfu = group_peak > 0 && time.wall_ms > 0
                                 ? nlohmann::json(flops_token * tokens / (time.wall_ms / 1000.0) / group_peak)
                                 : nlohmann::json(nullptr);
  if (!pool_.declared) {
    progress_.update(fmt::format(
        "step {}/{}  loss {:.4f}  {:.3f} bits/token  dial {}  omega {:.3f}  I {:.3f}  "
        "lr {:.2e}  {:.0f} tok/s  {}",
        step + 1, tc.steps, s.loss, bits, dial_text(dial), s.omega, s.mutual_info, lr, tok_s, mfu_text(mfu)));
  } else {
    const int me = pool_.index(g.setup().name);
    bits_.resize(pool_.llms.size(), -1.0);
    bits_[me] = bits;
    std::string llms;
    for (size_t i = 0; i < bits_.size(); ++i) {
      if (bits_[i] < 0 || !pool_.exists_at(i, step)) continue;
      llms += fmt::format("{}{} {:.3f}", llms.empty() ? "" : " | ", pool_.llms[i].name, bits_[i]);
    }
    progress_.update(fmt::format("step {}/{}  {} bits/token  dial {}  lr {:.2e}  {}", step + 1, tc.steps, llms,
                                 dial_text(dial), lr, mfu_text(mfu)));
  }
  if (!log_step) return nullptr;
  const bool shares = g.traces_steps();  // null where training steps keep no traces
  nlohmann::json rec = {{"event", "step"},
                        {"step", step},
                        {"llm", g.setup().name},
                        {"loss", s.loss},
                        {"ce_nats", s.ce},
                        {"bits_per_token", bits},
                        {"dial", dial},
                        {"omega", s.omega},
                        {"mutual_info_bits", s.mutual_info},
                        {"max_block_share", shares ? nlohmann::json(s.max_share) : nlohmann::json(nullptr)},
                        {"active_blocks", active},
                        {"grad_norm", s.grad_norm},
                        {"lr", lr},
                        {"tokens_per_s", tok_s},
                        {"ms_per_step", time.train_ms},
                        {"comm_ms", s.comm_ms},
                        {"time_ms", step_time_json(s, time)},
                        {"model_flops_per_token", flops_token},
                        {"peak_flops", group_peak > 0 ? nlohmann::json(group_peak) : nlohmann::json(nullptr)},
                        {"mfu", mfu}};
  if (comm_) {
    nlohmann::json delta = nlohmann::json::object();
    for (const auto& [group, bytes] : comm_->snapshot()) {
      delta[group] = bytes - comm_seen_[group];
      comm_seen_[group] = bytes;
    }
    rec["comm_bytes"] = delta;
  }
  return rec;
}

}  // namespace localist
