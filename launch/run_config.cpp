// SPDX-License-Identifier: Apache-2.0
// run_config.cpp: see run_config.h. Each section's keys, defaults and ranges live in
// exactly one parse function below, mirrored by configs/reference.yaml.
#include "launch/run_config.h"

#include <cmath>
#include <limits>
#include <regex>
#include <set>

#include <yaml-cpp/yaml.h>

#include "core/error.h"
#include "core/file_util.h"
#include "core/logging.h"
#include "core/strict_yaml.h"
#include "launch/dial_config.h"
#include "launch/pool_section.h"

namespace localist {
namespace {

constexpr int64_t kBig = std::numeric_limits<int32_t>::max();

void parse_run(StrictMap m, RunSection& r) {
  r.name = m.get_string("name", r.name);
  r.dir = m.get_string("dir", r.dir);
  if (r.dir.empty()) m.fail("dir", "must not be empty");
  r.seed = m.get_int("seed", r.seed, 0, kConfigHuge);
  r.log_level = m.get_string("log_level", r.log_level, {"trace", "debug", "info", "warn", "error"});
  m.finish();
}

void parse_data(StrictMap m, DataConfig& d) {
  d.shard_dir = m.get_string("shard_dir", d.shard_dir);
  if (d.shard_dir.empty()) m.fail("shard_dir", "must not be empty");
  StrictMap t = m.get_map("tokenizer");
  d.tokenizer.kind = t.get_string("kind", d.tokenizer.kind, {"byte", "sentencepiece", "bpe"});
  d.tokenizer.model = t.get_string("model", d.tokenizer.model);
  if (d.tokenizer.kind == "bpe" && d.tokenizer.model.empty())
    t.fail("model", "kind bpe reads GPT-2's tokenizer files: give a tokenizer.json or the model's directory");
  d.tokenizer.vocab_size = t.get_int("vocab_size", d.tokenizer.vocab_size, 300, 1 << 20);
  d.tokenizer.model_type = t.get_string("model_type", d.tokenizer.model_type, {"unigram", "bpe"});
  t.finish();
  if (!m.has("sources")) {
    m.get_node("sources");  // part of the schema, so that an unknown key next to it is reported first
    m.finish();
    m.fail("", "data.sources is required: list the text files to train on");
  }
  const std::regex name_ok("[A-Za-z0-9_.-]+");
  std::set<std::string> names;
  bool train_at_zero = false;
  d.sources.clear();
  for (StrictMap s : m.get_map_list("sources")) {
    SourceConfig c;
    if (!s.has("name")) s.fail("", "each source needs a name");
    if (!s.has("path")) s.fail("", "each source needs a path");
    c.name = s.get_string("name", "");
    if (!std::regex_match(c.name, name_ok)) s.fail("name", "use letters, digits, '_', '-' and '.' only");
    if (!names.insert(c.name).second) s.fail("name", "source name '" + c.name + "' is used twice");
    c.path = s.get_string("path", "");
    c.domain = s.get_string("domain", c.name);
    c.split = s.get_string("split", c.split, {"file", "blank_line", "wikitext"});
    c.weight = s.get_double("weight", c.weight, 1e-9, 1e9);
    c.start_step = s.get_int("start_step", c.start_step, 0, kConfigHuge);
    c.train = s.get_bool("train", c.train);
    s.finish();
    train_at_zero |= c.train && c.start_step == 0;
    d.sources.push_back(c);
  }
  if (!train_at_zero) m.fail("sources", "at least one source with train: true must have start_step 0");
  m.finish();
}

void parse_model(StrictMap m, ModelConfig& c) {
  c.d_model = m.get_int("d_model", c.d_model, 1, 1 << 16);
  c.n_layers = m.get_int("n_layers", c.n_layers, 1, 1024);
  c.context = m.get_int("context", c.context, 1, 1 << 20);
  c.heads_per_block = m.get_int("heads_per_block", c.heads_per_block, 1, 1024);
  c.head_dim = m.get_int("head_dim", c.head_dim, 1, 4096);
  c.k_max = m.get_int("k_max", c.k_max, 1, 4096);
  c.k_initial = m.get_int("k_initial", c.k_initial, 1, 4096);
  if (c.k_initial > c.k_max) {
    m.fail("k_initial", "k_initial " + std::to_string(c.k_initial) + " exceeds k_max " + std::to_string(c.k_max));
  }
  c.anchor_dim = m.get_int("anchor_dim", c.anchor_dim, 1, 1 << 16);
  const int64_t need = static_cast<int64_t>(std::ceil(std::log2(static_cast<double>(c.k_max))));
  if (c.anchor_dim < need) {
    m.fail("anchor_dim", "naming one of k_max = " + std::to_string(c.k_max) + " blocks takes " + std::to_string(need) +
                             " bits, so anchor_dim must be at least " + std::to_string(need));
  }
  c.ffn_mult = m.get_int("ffn_mult", c.ffn_mult, 1, 64);
  c.dropout = m.get_double("dropout", c.dropout, 0.0, 0.999);
  c.tau = m.get_double("tau", c.tau, 1e-6, 1e6);
  c.gamma = m.get_double("gamma", c.gamma, 0.0, 1e6);
  c.rho = m.get_double("rho", c.rho, 0.0, 1e6);
  c.activation = m.get_string("activation", c.activation, {"gelu", "gelu_tanh"});
  c.layer_norm_eps = m.get_double("layer_norm_eps", c.layer_norm_eps, 1e-12, 1e-2);
  if (m.has("init_from")) {
    StrictMap f = m.get_map("init_from");
    c.init_from.format = f.get_string("format", c.init_from.format, {"hf"});
    c.init_from.path = f.get_string("path", "");
    if (c.init_from.path.empty()) f.fail("path", "init_from needs the path of the model directory to start from");
    f.finish();
  }
  m.finish();
}

void parse_train(StrictMap m, TrainConfig& t) {
  t.steps = m.get_int("steps", t.steps, 1, kConfigHuge);
  t.global_batch = m.get_int("global_batch", t.global_batch, 1, kBig);
  t.micro_batch = m.get_int("micro_batch", t.micro_batch, 1, kBig);
  t.lr.lr = m.get_double("lr", t.lr.lr, 0.0, 10.0);
  t.lr.min_lr = m.get_double("min_lr", t.lr.lr * 0.1, 0.0, 10.0);
  t.lr.kind = m.get_string("lr_schedule", t.lr.kind, {"constant", "linear", "cosine", "wsd"});
  t.lr.warmup_steps = m.get_int("warmup_steps", t.lr.warmup_steps, 0, kConfigHuge);
  t.lr.decay_fraction = m.get_double("decay_fraction", t.lr.decay_fraction, 0.0, 1.0);
  t.lr.total_steps = t.steps;
  t.weight_decay = m.get_double("weight_decay", t.weight_decay, 0.0, 10.0);
  t.decay_embeddings = m.get_bool("decay_embeddings", t.decay_embeddings);
  t.beta1 = m.get_double("beta1", t.beta1, 0.0, 0.999999);
  t.beta2 = m.get_double("beta2", t.beta2, 0.0, 0.999999);
  t.grad_clip = m.get_double("grad_clip", t.grad_clip, 0.0, 1e9);
  t.penalty_mu = m.get_double("penalty_mu", t.penalty_mu, 0.0, 1e6);
  t.penalty_nu = m.get_double("penalty_nu", t.penalty_nu, 0.0, 1e6);
  t.log_every = m.get_int("log_every", t.log_every, 1, kConfigHuge);
  t.eval_every = m.get_int("eval_every", t.eval_every, 0, kConfigHuge);
  t.eval_windows = m.get_int("eval_windows", t.eval_windows, 1, kBig);
  t.checkpoint_every = m.get_int("checkpoint_every", t.checkpoint_every, 0, kConfigHuge);
  t.keep_checkpoints = m.get_int("keep_checkpoints", t.keep_checkpoints, 1, kConfigHuge);
  t.keep_checkpoint_every = m.get_int("keep_checkpoint_every", t.keep_checkpoint_every, 0, kConfigHuge);
  t.async_checkpoint = m.get_bool("async_checkpoint", t.async_checkpoint);
  t.activation_checkpointing = m.get_bool("activation_checkpointing", t.activation_checkpointing);
  t.rules = m.get_string("rules", t.rules);
  t.precision = m.get_string("precision", t.precision, {"auto", "fp32", "bf16"});
  t.device = m.get_string("device", t.device, {"auto", "cpu", "cuda"});
  t.threads = m.get_int("threads", t.threads, 0, 1024);
  t.tensorboard = m.get_string("tensorboard", t.tensorboard);
  if (t.tensorboard == "false" || t.tensorboard == "no" || t.tensorboard == "off") t.tensorboard.clear();
  if (t.tensorboard == "yes" || t.tensorboard == "on") t.tensorboard = "true";
  t.dial = dial_config_parse(m);
  m.finish();
}

void parse_recruitment(StrictMap m, RecruitmentConfig& r, const ModelConfig& model) {
  constexpr int64_t kRoundsMax = int64_t(1) << 40;
  r.enabled = m.get_bool("enabled", r.enabled);
  r.interval = m.get_int("interval", r.interval, 1, kRoundsMax);
  r.probe_windows = m.get_int("probe_windows", r.probe_windows, 1, 1 << 20);
  r.phi = m.get_double("phi", r.phi, 0.0, 1.0);
  r.kappa = m.get_double("kappa", r.kappa, 0.0, 64.0);
  r.median_rounds = m.get_int("median_rounds", r.median_rounds, 1, 1000);
  r.n_min = m.get_int("n_min", r.n_min, 1, kRoundsMax);
  r.kmeans_k = m.get_int("kmeans_k", r.kmeans_k, 1, 1024);
  r.kmeans_iters = m.get_int("kmeans_iters", r.kmeans_iters, 1, 10000);
  r.n_try = m.get_int("n_try", r.n_try, 1, 1000000);
  r.heldout_fraction = m.get_double("heldout_fraction", r.heldout_fraction, 0.01, 0.99);
  r.horizon_steps = m.get_int("horizon_steps", r.horizon_steps, 0, kRoundsMax);
  r.delta = m.get_double("delta", r.delta, 0.0, 1e15);
  r.confidence_z = m.get_double("confidence_z", r.confidence_z, 0.0, 100.0);
  r.domain_routes = m.get_bool("domain_routes", r.domain_routes);
  r.untagged_fraction = m.get_double("untagged_fraction", r.untagged_fraction, 0.0, 1.0);
  r.anchor = m.get_string("anchor", r.anchor, {"next", "centroid"});
  r.prune = m.get_bool("prune", r.prune);
  if (r.enabled && model.k_initial >= model.k_max) {
    m.fail("enabled", "recruitment needs free block slots, but model.k_initial (" + std::to_string(model.k_initial) +
                          ") equals model.k_max; raise k_max");
  }
  m.finish();
}

}  // namespace

RunConfig run_config_parse(const std::string& yaml_text, const std::string& file, int world_size,
                           const ConfigOverrides& overrides) {
  StrictMap root = StrictMap::parse(yaml_text, file, overrides);
  RunConfig c;
  c.file = file;
  // NOTE(typos first): a misspelt section or key is usually why a required one is
  // "missing", so unknown keys are reported before missing ones: the root's sections are
  // checked here, a section's keys before its required keys.
  for (const char* section : {"run", "data", "model", "train", "distributed", "recruitment", "pool"}) {
    root.get_node(section);
  }
  root.finish();
  parse_run(root.get_map("run"), c.run);
  parse_data(root.get_map("data"), c.data);
  parse_model(root.get_map("model"), c.model);
  StrictMap train = root.get_map("train");
  parse_train(train, c.train);
  dial_config_check_layers(train, c.train.dial, c.model.n_layers);

  StrictMap dist = root.get_map("distributed");
  c.distributed.block_parallel = dist.get_int("block_parallel", 1, 1, 4096);
  if (c.distributed.block_parallel > c.model.k_max) {
    dist.fail("block_parallel", "block_parallel " + std::to_string(c.distributed.block_parallel) +
                                    " exceeds model.k_max " + std::to_string(c.model.k_max) +
                                    " (each block-parallel rank must be able to hold a block)");
  }
  c.distributed.timeout_s = dist.get_double("timeout_s", c.distributed.timeout_s, 1.0, 86400.0);
  c.distributed.startup_timeout_s = dist.get_double("startup_timeout_s", c.distributed.startup_timeout_s, 1.0, 86400.0);
  c.distributed.bucket_mb = dist.get_double("bucket_mb", c.distributed.bucket_mb, 0.001, 4096.0);
  c.distributed.zero = dist.get_int("zero", c.distributed.zero, 0, 1);
  c.distributed.vocab_parallel = dist.get_string("vocab_parallel", c.distributed.vocab_parallel, {"auto", "on", "off"});
  dist.finish();
  parse_recruitment(root.get_map("recruitment"), c.recruitment, c.model);
  c.pool = pool_section_parse(root.get_map("pool"), root.has("pool"), c.data, c.train);

  // The mesh must tile the world; every data-parallel rank needs a row of the batch.
  int64_t dp = 1;
  if (world_size > 0) {
    if (world_size % c.distributed.block_parallel != 0) {
      dist.fail("block_parallel", "mesh does not divide the world: block_parallel " +
                                      std::to_string(c.distributed.block_parallel) + " does not divide " +
                                      std::to_string(world_size) + " ranks");
    }
    dp = world_size / c.distributed.block_parallel;
  }
  // Uneven data-parallel slices are fine (they differ by at most one sequence); a rank
  // without any is not.
  if (c.train.global_batch < dp) {
    train.fail("global_batch", std::to_string(c.train.global_batch) + " sequences leave some of the " +
                                   std::to_string(dp) + " data-parallel ranks without one (use at most " +
                                   std::to_string(c.train.global_batch) + " ranks, or a larger batch)");
  }
  root.finish();
  return c;
}

RunConfig run_config_load(const std::string& path, int world_size, const ConfigOverrides& overrides) {
  std::string text;
  try {
    text = read_file(path);
  } catch (const Error& e) {
    throw ConfigError(std::string(e.what()) + " (pass a config file such as configs/quickstart.yaml)");
  }
  return run_config_parse(text, path, world_size, overrides);
}

namespace {

// The effective config, section by section.
void emit_data(YAML::Emitter& e, const DataConfig& data) {
  e << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "shard_dir" << YAML::Value << data.shard_dir;
  e << YAML::Key << "tokenizer" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "kind" << YAML::Value << data.tokenizer.kind;
  e << YAML::Key << "model" << YAML::Value << data.tokenizer.model;
  e << YAML::Key << "vocab_size" << YAML::Value << data.tokenizer.vocab_size;
  e << YAML::Key << "model_type" << YAML::Value << data.tokenizer.model_type << YAML::EndMap;
  e << YAML::Key << "sources" << YAML::Value << YAML::BeginSeq;
  for (const auto& s : data.sources) {
    e << YAML::BeginMap << YAML::Key << "name" << YAML::Value << s.name << YAML::Key << "path" << YAML::Value << s.path;
    e << YAML::Key << "domain" << YAML::Value << s.domain << YAML::Key << "split" << YAML::Value << s.split;
    e << YAML::Key << "weight" << YAML::Value << s.weight << YAML::Key << "start_step" << YAML::Value << s.start_step;
    e << YAML::Key << "train" << YAML::Value << s.train << YAML::EndMap;
  }
  e << YAML::EndSeq << YAML::EndMap;
}

void emit_train(YAML::Emitter& e, const TrainConfig& t) {
  e << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "steps" << YAML::Value << t.steps << YAML::Key << "global_batch" << YAML::Value << t.global_batch;
  e << YAML::Key << "micro_batch" << YAML::Value << t.micro_batch;
  e << YAML::Key << "lr" << YAML::Value << t.lr.lr << YAML::Key << "min_lr" << YAML::Value << t.lr.min_lr;
  e << YAML::Key << "lr_schedule" << YAML::Value << t.lr.kind << YAML::Key << "warmup_steps" << YAML::Value
    << t.lr.warmup_steps << YAML::Key << "decay_fraction" << YAML::Value << t.lr.decay_fraction;
  e << YAML::Key << "weight_decay" << YAML::Value << t.weight_decay << YAML::Key << "decay_embeddings" << YAML::Value
    << t.decay_embeddings;
  e << YAML::Key << "beta1" << YAML::Value << t.beta1 << YAML::Key << "beta2" << YAML::Value << t.beta2;
  e << YAML::Key << "grad_clip" << YAML::Value << t.grad_clip;
  e << YAML::Key << "penalty_mu" << YAML::Value << t.penalty_mu << YAML::Key << "penalty_nu" << YAML::Value
    << t.penalty_nu;
  e << YAML::Key << "log_every" << YAML::Value << t.log_every << YAML::Key << "eval_every" << YAML::Value
    << t.eval_every << YAML::Key << "eval_windows" << YAML::Value << t.eval_windows;
  e << YAML::Key << "checkpoint_every" << YAML::Value << t.checkpoint_every;
  e << YAML::Key << "keep_checkpoints" << YAML::Value << t.keep_checkpoints;
  e << YAML::Key << "keep_checkpoint_every" << YAML::Value << t.keep_checkpoint_every;
  e << YAML::Key << "async_checkpoint" << YAML::Value << t.async_checkpoint;
  e << YAML::Key << "activation_checkpointing" << YAML::Value << t.activation_checkpointing;
  e << YAML::Key << "rules" << YAML::Value << t.rules << YAML::Key << "precision" << YAML::Value << t.precision;
  e << YAML::Key << "device" << YAML::Value << t.device << YAML::Key << "threads" << YAML::Value << t.threads;
  if (!t.tensorboard.empty()) e << YAML::Key << "tensorboard" << YAML::Value << t.tensorboard;
  dial_config_emit(e, t.dial);
  e << YAML::EndMap;
}

void emit_recruitment(YAML::Emitter& e, const RecruitmentConfig& r) {
  e << YAML::Key << "recruitment" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "enabled" << YAML::Value << r.enabled << YAML::Key << "interval" << YAML::Value << r.interval;
  e << YAML::Key << "probe_windows" << YAML::Value << r.probe_windows << YAML::Key << "phi" << YAML::Value << r.phi;
  e << YAML::Key << "kappa" << YAML::Value << r.kappa << YAML::Key << "median_rounds" << YAML::Value << r.median_rounds;
  e << YAML::Key << "n_min" << YAML::Value << r.n_min << YAML::Key << "kmeans_k" << YAML::Value << r.kmeans_k;
  e << YAML::Key << "kmeans_iters" << YAML::Value << r.kmeans_iters << YAML::Key << "n_try" << YAML::Value << r.n_try;
  e << YAML::Key << "heldout_fraction" << YAML::Value << r.heldout_fraction;
  e << YAML::Key << "horizon_steps" << YAML::Value << r.horizon_steps << YAML::Key << "delta" << YAML::Value << r.delta;
  e << YAML::Key << "confidence_z" << YAML::Value << r.confidence_z;
  e << YAML::Key << "domain_routes" << YAML::Value << r.domain_routes;
  e << YAML::Key << "untagged_fraction" << YAML::Value << r.untagged_fraction;
  e << YAML::Key << "anchor" << YAML::Value << r.anchor << YAML::Key << "prune" << YAML::Value << r.prune;
  e << YAML::EndMap;
}

}  // namespace

std::string run_config_to_yaml(const RunConfig& c) {
  YAML::Emitter e;
  e.SetDoublePrecision(17);
  e << YAML::Comment("effective config of this run: every value, defaults filled in");
  e << YAML::BeginMap;
  e << YAML::Key << "run" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "name" << YAML::Value << c.run.name << YAML::Key << "dir" << YAML::Value << c.run.dir;
  e << YAML::Key << "seed" << YAML::Value << c.run.seed << YAML::Key << "log_level" << YAML::Value << c.run.log_level;
  e << YAML::EndMap;

  emit_data(e, c.data);

  const ModelConfig& m = c.model;
  e << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "d_model" << YAML::Value << m.d_model << YAML::Key << "n_layers" << YAML::Value << m.n_layers;
  e << YAML::Key << "context" << YAML::Value << m.context << YAML::Key << "heads_per_block" << YAML::Value
    << m.heads_per_block;
  e << YAML::Key << "head_dim" << YAML::Value << m.head_dim << YAML::Key << "k_initial" << YAML::Value << m.k_initial;
  e << YAML::Key << "k_max" << YAML::Value << m.k_max << YAML::Key << "anchor_dim" << YAML::Value << m.anchor_dim;
  e << YAML::Key << "ffn_mult" << YAML::Value << m.ffn_mult << YAML::Key << "dropout" << YAML::Value << m.dropout;
  e << YAML::Key << "tau" << YAML::Value << m.tau << YAML::Key << "gamma" << YAML::Value << m.gamma;
  e << YAML::Key << "rho" << YAML::Value << m.rho;
  // Written only when not the default, so that configs written before these keys existed
  // read back the same (resume compares the model section key by key).
  if (m.activation != ModelConfig().activation) e << YAML::Key << "activation" << YAML::Value << m.activation;
  if (m.layer_norm_eps != ModelConfig().layer_norm_eps) {
    e << YAML::Key << "layer_norm_eps" << YAML::Value << m.layer_norm_eps;
  }
  if (!m.init_from.path.empty()) {
    e << YAML::Key << "init_from" << YAML::Value << YAML::BeginMap << YAML::Key << "format" << YAML::Value
      << m.init_from.format << YAML::Key << "path" << YAML::Value << m.init_from.path << YAML::EndMap;
  }
  e << YAML::EndMap;

  emit_train(e, c.train);

  e << YAML::Key << "distributed" << YAML::Value << YAML::BeginMap;
  e << YAML::Key << "block_parallel" << YAML::Value << c.distributed.block_parallel;
  e << YAML::Key << "timeout_s" << YAML::Value << c.distributed.timeout_s;
  e << YAML::Key << "startup_timeout_s" << YAML::Value << c.distributed.startup_timeout_s;
  e << YAML::Key << "bucket_mb" << YAML::Value << c.distributed.bucket_mb;
  e << YAML::Key << "zero" << YAML::Value << c.distributed.zero;
  e << YAML::Key << "vocab_parallel" << YAML::Value << c.distributed.vocab_parallel << YAML::EndMap;
  emit_recruitment(e, c.recruitment);
  pool_section_emit(e, c.pool);
  e << YAML::EndMap;
  return std::string(e.c_str()) + "\n";
}

}  // namespace localist

namespace localist {

ResumeConflicts run_config_resume_conflicts(const std::string& checkpoint_yaml, const std::string& config_yaml) {
  const YAML::Node a = YAML::Load(checkpoint_yaml), b = YAML::Load(config_yaml);
  ResumeConflicts out;
  auto differs = [&](const std::string& section, const std::string& key) {
    const YAML::Node x = a[section], y = b[section];
    const YAML::Node xv = key.empty() ? x : x[key], yv = key.empty() ? y : y[key];
    return YAML::Dump(xv) != YAML::Dump(yv);
  };
  for (const auto& it : b["model"]) {
    const std::string k = it.first.as<std::string>();
    if (differs("model", k)) out.fixed.push_back("model." + k);
  }
  if (differs("data", "sources")) out.fixed.push_back("data.sources");
  if (differs("run", "seed")) out.fixed.push_back("run.seed");
  if (differs("train", "global_batch")) out.fixed.push_back("train.global_batch");

  for (const char* k :
       {"steps", "lr", "min_lr", "lr_schedule", "warmup_steps", "decay_fraction", "dial", "dial_profile"}) {
    if (differs("train", k)) out.schedules.push_back(std::string("train.") + k);
  }
  return out;
}

}  // namespace localist
