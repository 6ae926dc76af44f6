// SPDX-License-Identifier: Apache-2.0
// generate.cpp: see generate.h. Recomputes the whole (cropped) context per token:
// simple and exact; no KV cache yet.
#include "trainer/generate.h"

#include <ATen/ATen.h>

#include "core/error.h"
#include "model/forward_pass.h"

namespace localist {

std::vector<GeneratedToken> generate(LocalistModel& model, const std::vector<uint32_t>& prompt,
                                     const GenerateOptions& o, const std::vector<std::string>& token_texts,
                                     const at::Device& device) {
  if (prompt.empty()) throw ConfigError("--prompt: the prompt is empty");
  at::NoGradGuard no_grad;
  model.eval();
  auto gen = at::detail::createCPUGenerator(o.seed);
  std::vector<int64_t> ids(prompt.begin(), prompt.end());
  std::vector<GeneratedToken> out;
  const int64_t ctx = model.config().context;
  for (int64_t n = 0; n < o.max_tokens; ++n) {
    const int64_t start = std::max<int64_t>(0, static_cast<int64_t>(ids.size()) - ctx);
    const std::vector<int64_t> window(ids.begin() + start, ids.end());
    const auto x = at::tensor(window, at::kLong).view({1, -1});
    PassSpec spec;
    spec.rules = o.rules;
    spec.token_texts = &token_texts;
    spec.device = device;
    ForwardOptions fo;
    fo.dial = o.dial;
    fo.trace = true;
    const ForwardResult r = forward_with_rules(model, x, at::Tensor(), {o.domain}, fo, spec, PassLoss::kNone).result;
    auto logits = r.logits[0][-1].to(at::kCPU).to(at::kDouble) / std::max(o.temperature, 1e-6);
    if (o.top_k > 0 && o.top_k < logits.size(0)) {
      const double kth = std::get<0>(logits.topk(o.top_k))[-1].item<double>();
      logits = logits.masked_fill(logits < kth, -std::numeric_limits<double>::infinity());
    }
    const auto probs = at::softmax(logits, 0);
    const int64_t next = at::multinomial(probs, 1, false, gen).item<int64_t>();

    GeneratedToken g;
    g.id = static_cast<uint32_t>(next);
    const LayerTrace& last = r.traces.back();
    const int64_t q = static_cast<int64_t>(window.size()) - 1;  // the query that produced `next`
    g.block_slot = r.active_blocks.to(at::kCPU)[last.hard[0][q].item<int64_t>()].item<int64_t>();
    const auto gate = last.gate[0][q].to(at::kCPU).index_select(0, r.head_block.to(at::kCPU));
    const auto w = gate / gate.sum();
    const auto row = (last.alpha[0].select(1, q).to(at::kCPU) * w.unsqueeze(1)).sum(0);  // (T)
    const int64_t k = std::min<int64_t>(o.top_positions, row.size(0));
    const auto top = row.topk(k);
    for (int64_t i = 0; i < k; ++i) {
      g.attended.emplace_back(start + std::get<1>(top)[i].item<int64_t>(), std::get<0>(top)[i].item<double>());
    }
    out.push_back(g);
    ids.push_back(next);
  }
  return out;
}

}  // namespace localist
