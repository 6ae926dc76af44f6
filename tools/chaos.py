#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""chaos.py: a chaos soak of localist training (issue #19). A recruitment run whose pool
may spawn a specialist trains on 2-4 MPI ranks while faults hit it at random moments:
kill -9 of a random rank, SIGUSR1 (a preemption) to a random rank, a stalled rank
(SIGSTOP), and a kill inside a checkpoint write (the writer's fault hook at a random
point of a random coming checkpoint). After every fault the job is resumed with
`--resume auto`, sometimes on another world size, until it finishes. Then it asserts:
per-step losses equal an uninterrupted run's (bit for bit when the world never changed,
within 1e-5 relative otherwise), one record per step and decision in metrics.jsonl
(every line whole), the same recruitment and pool decisions, no partial
checkpoint left, and no process of the job outliving it. Prints a JSON summary.

Usage: chaos.py --bin build/localist --work DIR [--faults N] [--seconds S] [--seed K]
                [--worlds 2,3,4] [--steps N] [--episode-timeout S]
A job still running after --episode-timeout seconds is a failure: the ranks' stacks (gdb,
where installed) and the job's output go into the summary, and the job is killed.
Everything is real: processes, signals, MPI over the loopback; nothing is mocked."""
import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

TIMEOUT_S = 6  # distributed.timeout_s of the soak's config: a stalled rank ends the job in < 2x this
# distributed.startup_timeout_s: the bound for a rank stopped while MPI starts or before the
# first step (the default, 1800 s, is for clusters; the soak waits 600 s for a job).
STARTUP_TIMEOUT_S = 20
STALL_BOUND_S = max(2 * TIMEOUT_S, STARTUP_TIMEOUT_S) + 10
# A rank stopped before the episode's first step: the others may still be starting up (loading
# LibTorch, reading the checkpoint) before they block; each start-up wait has the start-up
# deadline, and the in-run bound covers a stop caught at the first step's collectives. A
# loaded machine (the CI's parallel ctest) took 36 s here; the in-run bound stays 30 s.
STARTUP_STALL_BOUND_S = STARTUP_TIMEOUT_S + 2 * TIMEOUT_S + 10


def write_config(work, steps, source_dir):
    corpora = os.path.join(source_dir, "corpora")

    def cut(src, dst, n, tail):
        text = open(os.path.join(corpora, src), encoding="utf-8").read()
        open(os.path.join(work, dst), "w", encoding="utf-8").write(text[-n:] if tail else text[:n])

    cut("wikitext2-valid.txt", "wiki.txt", 120000, False)
    cut("tinyshakespeare.txt", "drama.txt", 120000, False)
    cut("wikitext2-test.txt", "wiki-ho.txt", 20000, False)
    cut("tinyshakespeare.txt", "drama-ho.txt", 20000, True)
    open(os.path.join(work, "c.yaml"), "w").write(f"""run:
  dir: run
data:
  shard_dir: shards
  sources:
    - {{name: wiki, path: wiki.txt, split: wikitext, domain: wiki}}
    - {{name: drama, path: drama.txt, split: blank_line, domain: drama, start_step: 20}}
    - {{name: wiki-ho, path: wiki-ho.txt, split: wikitext, domain: wiki, train: false}}
    - {{name: drama-ho, path: drama-ho.txt, split: blank_line, domain: drama, train: false}}
model:
  context: 64
  d_model: 32
  head_dim: 8
  k_initial: 3
  k_max: 6
train:
  steps: {steps}
  global_batch: 12
  micro_batch: 1
  lr: 3.0e-3
  log_every: 1
  eval_every: 0
  eval_windows: 6
  checkpoint_every: 10
  keep_checkpoints: 3
recruitment:
  enabled: true
  interval: 30
  probe_windows: 12
  n_min: 64
  n_try: 10
  horizon_steps: 5000
pool:
  recruit: true
  interval: 40
  n_try: 10
  horizon_tokens: 1.0e12
  heldout_windows: 12
  block_rejections: 1
distributed:
  timeout_s: {TIMEOUT_S}
  startup_timeout_s: {STARTUP_TIMEOUT_S}
""")


def mpirun(n):
    return ["mpirun", "-np", str(n), "--oversubscribe", "--bind-to", "none"]


def env_for(extra=None):
    e = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1",
             OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_mpi_yield_when_idle="1")
    e.pop("LOCALIST_TEST_FAULT", None)
    if extra:
        e.update(extra)
    return e


def rank_pids(marker):
    """The job's localist processes: their command line names the soak's run directory."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            cmd = open(f"/proc/{p}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"localist") and marker.encode() in b" ".join(cmd):
            out.append(int(p))
    return sorted(out)


def records(metrics, duplicates=None):
    """Step losses by (LLM, step) and the decisions; every line must parse, and a (LLM,
    step) logged twice or a decision logged twice is added to `duplicates` (a resume cuts
    the file back to its checkpoint: one record per step, the resumed attempt's)."""
    steps, decisions, seen = {}, [], set()
    if not os.path.exists(metrics):
        return steps, decisions
    for line in open(metrics):
        try:
            r = json.loads(line)
        except ValueError:
            if duplicates is not None:
                duplicates.append(f"a line that is not JSON: {line[:80]!r}")
            continue
        key = None
        if r.get("event") == "step":
            key = ("step", r.get("llm", "main"), r["step"])
            steps[(r.get("llm", "main"), r["step"])] = r["loss"]
        elif r.get("event") in ("recruitment", "pool_recruitment"):
            key = (r["event"], r.get("llm", ""), r["step"])
            decisions.append(r)
        if key is None:
            continue
        if duplicates is not None and key in seen:
            duplicates.append(f"{key} logged twice")
        seen.add(key)
    return steps, decisions


def decision_key(d):
    return (d["event"], d.get("llm", ""), d["step"], d.get("accepted"), d.get("slot"), d.get("domain"), d.get("name"))


def stacks_of(pids):
    """Every thread's stack of each hung rank, so a hang in CI says where it waits."""
    if not shutil.which("gdb"):
        return "(gdb not installed: no stacks)"
    out = []
    for p in pids:
        try:
            r = subprocess.run(["gdb", "-p", str(p), "-batch", "-nx", "-ex", "thread apply all bt 25"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
            frames = [l for l in r.stdout.splitlines() if l.startswith(("#", "Thread"))]
            out.append(f"--- rank pid {p}\n" + "\n".join(frames[:200]))
        except (OSError, subprocess.TimeoutExpired) as e:
            out.append(f"--- rank pid {p}: gdb failed: {e}")
    return "\n".join(out)


def latest_step(run):
    ck = os.path.join(run, "checkpoints")
    best = -1
    if os.path.isdir(ck):
        for n in os.listdir(ck):
            if n.startswith("step-") and os.path.exists(os.path.join(ck, n, "index.h5")):
                best = max(best, int(n[5:]))
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--faults", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=0, help="soak for this long (restarting finished runs)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--worlds", default="2,3,4")
    ap.add_argument("--steps", type=int, default=120)
    ap.add_argument("--episode-timeout", type=float, default=600, help="a job running longer has hung")
    ap.add_argument("--source-dir", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    a = ap.parse_args()
    rng = random.Random(a.seed)
    worlds = [int(w) for w in a.worlds.split(",")]
    binary = os.path.abspath(a.bin)
    os.makedirs(a.work, exist_ok=True)
    work = os.path.abspath(a.work)
    write_config(work, a.steps, os.path.abspath(a.source_dir))
    sh = lambda cmd, **kw: subprocess.run(cmd, cwd=work, env=env_for(), stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True, **kw)
    if sh([binary, "prepare", "c.yaml"]).returncode != 0:
        raise SystemExit("chaos: prepare failed")
    w0 = worlds[0]
    t_ref = time.time()
    ref = sh(mpirun(w0) + [binary, "train", "c.yaml", "--set", "run.dir=ref"], timeout=a.episode_timeout)
    if ref.returncode != 0:
        raise SystemExit("chaos: the reference run failed:\n" + ref.stdout[-3000:])
    ref_s = time.time() - t_ref
    ref_steps, ref_decisions = records(os.path.join(work, "ref/metrics.jsonl"))

    summary = {"reference_world": w0, "reference_s": round(ref_s, 1), "runs": 0, "episodes": [], "faults": {},
               "failures": []}
    start = time.time()
    faults_done = 0
    run_index = 0
    while True:
        run_index += 1
        run = f"chaos{run_index}"
        marker = os.path.join(work, run)
        shutil.rmtree(marker, ignore_errors=True)
        worlds_used = set()
        finished = False
        episode = 0
        while not finished:
            episode += 1
            if episode > 60:
                summary["failures"].append(f"{run}: not finished after 60 episodes")
                break
            world = w0 if episode == 1 else rng.choice(worlds)
            worlds_used.add(world)
            want_fault = faults_done < a.faults or (a.seconds and time.time() - start < a.seconds)
            kind = rng.choice(["kill9", "usr1", "stall", "ckptkill"]) if want_fault else None
            extra = {}
            if kind == "ckptkill":
                nxt = (max(latest_step(marker), 0) // 10 + 1 + rng.randrange(2)) * 10
                point = rng.choice(["directory", "rank-file", "before-index", "after-index"])
                extra["LOCALIST_TEST_FAULT"] = f"ckptkill:rank={rng.randrange(world)}:step={nxt}:at={point}"
            cmd = mpirun(world) + [binary, "train", "c.yaml", "--set", f"run.dir={marker}", "--resume", "auto"]
            proc = subprocess.Popen(cmd, cwd=work, env=env_for(extra), stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, start_new_session=True)
            fault_at, hit, in_startup = None, None, False
            metrics_path = os.path.join(marker, "metrics.jsonl")
            count_lines = lambda: sum(1 for _ in open(metrics_path)) if os.path.exists(metrics_path) else 0
            lines_at_start = count_lines()
            if kind in ("kill9", "usr1", "stall"):
                delay = rng.uniform(0.5, 6.0)
                deadline = time.time() + delay
                while time.time() < deadline and proc.poll() is None:
                    time.sleep(0.05)
                if kind == "usr1":
                    # A stop signal is honoured once main() runs; before it (the dynamic
                    # loader starting LibTorch) it ends the process like any program's.
                    # Preempt only a job that has logged a step in this episode.
                    logged = count_lines()
                    t_wait = time.time() + 120
                    while proc.poll() is None and time.time() < t_wait and \
                            count_lines() <= logged:
                        time.sleep(0.05)
                pids = rank_pids(marker)
                if proc.poll() is None and pids:
                    hit = rng.choice(pids)
                    fault_at = time.time()
                    in_startup = count_lines() <= lines_at_start
                    os.kill(hit, {"kill9": signal.SIGKILL, "usr1": signal.SIGUSR1, "stall": signal.SIGSTOP}[kind])
            elif kind == "ckptkill":
                fault_at = time.time()  # the kill comes at the checkpoint; timed from its start below
            try:
                out, _ = proc.communicate(timeout=a.episode_timeout)
            except subprocess.TimeoutExpired:
                pids = rank_pids(marker)
                stacks = stacks_of(pids)
                os.killpg(proc.pid, signal.SIGKILL)
                out, _ = proc.communicate()
                summary["failures"].append(f"{run} episode {episode}: the job hung past {a.episode_timeout:g} s "
                                           f"after {kind} (hit pid {hit}, ranks {pids}, world {world})\n"
                                           f"{stacks}\n--- job output\n{out[-4000:]}")
            ended = time.time()
            rc = proc.returncode
            # Nothing of the job may outlive it.
            t_orphan = time.time() + 5
            while rank_pids(marker) and time.time() < t_orphan:
                time.sleep(0.1)
            orphans = rank_pids(marker)
            for p in orphans:
                os.kill(p, signal.SIGKILL)
            if orphans:
                summary["failures"].append(f"{run} episode {episode}: {len(orphans)} process(es) outlived the job")
            ep = {"run": run, "episode": episode, "world": world, "fault": kind, "rc": rc}
            if kind == "stall":
                ep["before_first_step"] = in_startup
            if kind == "ckptkill":
                ep["fault_spec"] = extra["LOCALIST_TEST_FAULT"]
                ep["hit"] = "ckptkill" in out or rc != 0
            if fault_at is not None and rc != 0:
                ep["fault_to_exit_s"] = round(ended - fault_at, 2)
            if kind and (rc != 0 or hit is not None):
                faults_done += 1 if (rc != 0) else 0
                summary["faults"][kind] = summary["faults"].get(kind, 0) + (1 if rc != 0 else 0)
            if rc == 0:
                finished = True
            elif kind == "usr1" and rc != 75:
                summary["failures"].append(f"{run} episode {episode}: SIGUSR1 gave exit {rc}, not 75")
            elif kind == "stall" and ep.get("fault_to_exit_s", 0) > (STARTUP_STALL_BOUND_S if in_startup
                                                                      else STALL_BOUND_S):
                summary["failures"].append(f"{run} episode {episode}: a stalled rank ended the job after "
                                           f"{ep['fault_to_exit_s']} s (timeout {TIMEOUT_S} s, start-up "
                                           f"{STARTUP_TIMEOUT_S} s, {'before' if in_startup else 'after'} "
                                           f"the first step)")
            elif kind is None and rc != 0:
                summary["failures"].append(f"{run} episode {episode}: exit {rc} with no fault:\n{out[-1500:]}")
            summary["episodes"].append(ep)
            print(f"chaos: {json.dumps(ep)}", file=sys.stderr, flush=True)
        summary["runs"] += 1
        # The interrupted run equals the reference.
        twice = []
        steps, decisions = records(os.path.join(marker, "metrics.jsonl"), twice)
        if twice:
            summary["failures"].append(f"{run}: metrics.jsonl is not one record per step: {twice[:3]}")
        exact = worlds_used == {w0}
        worst = 0.0
        for k, v in ref_steps.items():
            if k not in steps:
                summary["failures"].append(f"{run}: no loss for {k}")
                continue
            rel = abs(steps[k] - v) / max(abs(v), 1e-12)
            worst = max(worst, rel)
            if (exact and steps[k] != v) or rel > 1e-5:
                summary["failures"].append(f"{run}: loss of {k} is {steps[k]!r}, uninterrupted {v!r}")
                break
        summary.setdefault("loss_max_rel_diff", []).append({"run": run, "worlds": sorted(worlds_used),
                                                            "bit_exact_expected": exact, "max_rel": worst})
        if Counter(map(decision_key, decisions)) != Counter(map(decision_key, ref_decisions)):
            summary["failures"].append(f"{run}: recruitment/pool decisions differ from the uninterrupted run")
        leftovers = []
        for root, dirs, files in os.walk(os.path.join(marker, "checkpoints")):
            leftovers += [os.path.join(root, f) for f in files if ".tmp" in f]
            if os.path.basename(root).startswith("step-") and "index.h5" not in files:
                leftovers.append(root)
        if leftovers:
            summary["failures"].append(f"{run}: partial checkpoint files left: {leftovers[:3]}")
        if faults_done >= a.faults and not (a.seconds and time.time() - start < a.seconds):
            break
    wall = time.time() - start
    times = [e["fault_to_exit_s"] for e in summary["episodes"] if "fault_to_exit_s" in e]
    summary["faults_survived"] = faults_done
    summary["decisions_in_reference"] = len(ref_decisions)
    summary["accepted_in_reference"] = [decision_key(d) for d in ref_decisions if d.get("accepted")]
    summary["wall_s"] = round(wall, 1)
    summary["faults_per_hour"] = round(faults_done / wall * 3600, 1) if wall > 0 else 0
    summary["longest_fault_to_exit_s"] = max(times) if times else None
    print(json.dumps(summary, indent=1))
    return 1 if summary["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
