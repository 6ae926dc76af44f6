// SPDX-License-Identifier: Apache-2.0
// layer_replay.cpp: see layer_replay.h.
#include "model/layer_replay.h"

#include <ATen/ATen.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/custom_function.h>
#include <torch/custom_class.h>

#include <mutex>

#include "core/error.h"

namespace localist {
namespace {

at::Generator generator_for(const at::Device& device) { return at::globalContext().defaultGenerator(device); }

at::Tensor generator_state(const at::Device& device) {
  auto gen = generator_for(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_generator_state(const at::Device& device, const at::Tensor& state) {
  auto gen = generator_for(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

// What backward needs besides the saved input: the layer and the state it ran under.
struct Replay : torch::CustomClassHolder {
  LayerFunction layer;
  std::vector<at::Tensor> params;  // the layer's own leaves (the replay uses them, not copies)
  at::Tensor rng;                  // the device generator's state before the layer ran
  bool autocast = false;
  at::ScalarType autocast_dtype = at::kBFloat16;
};

struct CheckpointedLayer : public torch::autograd::Function<CheckpointedLayer> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx,
                                                const c10::intrusive_ptr<Replay>& r, const at::Tensor& x,
                                                at::TensorList params) {
    r->rng = generator_state(x.device());
    // Autocast of the input's device type (CUDA or CPU), replayed as it was.
    r->autocast = at::autocast::is_autocast_enabled(x.device().type());
    r->autocast_dtype = at::autocast::get_autocast_dtype(x.device().type());
    std::vector<at::Tensor> outs;
    {
      at::NoGradGuard no_grad;
      outs = r->layer(x);
    }
    ctx->save_for_backward({x});
    ctx->saved_data["replay"] = c10::IValue::make_capsule(r);
    return outs;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto r = c10::static_intrusive_pointer_cast<Replay>(ctx->saved_data["replay"].toCapsule());
    const auto x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    const int64_t n_params = static_cast<int64_t>(r->params.size());
    // The replay must draw the same dropout masks; the generator is put back afterwards
    // so that whatever runs next draws what it would have drawn without the replay.
    const auto after = generator_state(x.device());
    set_generator_state(x.device(), r->rng);
    std::vector<at::Tensor> outs;
    {
      at::AutoGradMode grad_on(true);
      const auto type = x.device().type();
      const bool was = at::autocast::is_autocast_enabled(type);
      const auto was_dtype = at::autocast::get_autocast_dtype(type);
      at::autocast::set_autocast_enabled(type, r->autocast);
      at::autocast::set_autocast_dtype(type, r->autocast_dtype);
      outs = r->layer(x);
      at::autocast::set_autocast_enabled(type, was);
      at::autocast::set_autocast_dtype(type, was_dtype);
    }
    set_generator_state(x.device(), after);
    if (outs.size() != grads.size())
      throw Error("activation checkpoint: the layer's replay returned another number of outputs");
    // Back through the replay, from the outputs that received a gradient.
    std::vector<at::Tensor> roots, root_grads;
    for (size_t i = 0; i < outs.size(); ++i) {
      if (!grads[i].defined() || !outs[i].requires_grad()) continue;
      roots.push_back(outs[i]);
      root_grads.push_back(grads[i]);
    }
    torch::autograd::variable_list inputs{x};
    for (const at::Tensor& p : r->params) inputs.push_back(p);
    torch::autograd::variable_list result(2 + n_params);  // the replay's slot stays undefined
    if (roots.empty()) return result;
    const auto g = torch::autograd::grad(roots, inputs, root_grads, /*retain_graph=*/false, /*create_graph=*/false,
                                         /*allow_unused=*/true);
    for (size_t i = 0; i < g.size(); ++i) result[1 + i] = g[i];
    return result;
  }
};

}  // namespace

std::vector<at::Tensor> checkpointed_layer(LayerFunction layer, const at::Tensor& x,
                                           const std::vector<at::Tensor>& params) {
  auto r = c10::make_intrusive<Replay>();
  r->layer = std::move(layer);
  r->params = params;
  return CheckpointedLayer::apply(r, x, at::TensorList(params));
}

}  // namespace localist
