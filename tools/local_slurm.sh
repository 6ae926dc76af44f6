#!/usr/bin/env bash
# local_slurm.sh: a real single-node Slurm (slurmctld + slurmd on localhost) for trying
# launch/slurm/train.sbatch on a workstation and for the e2e tests: the config is
# generated into a directory, the daemons run as the calling user and are stopped by
# PID; every wait is bounded. Authentication is auth/none (localhost only).
# Limits: one node; Debian's slurm-wlm 22.05 (tools/setup.sh installs it).
# Usage: tools/local_slurm.sh start DIR [CPUS]   start, wait until ready; prints `export SLURM_CONF=...`
#        tools/local_slurm.sh stop DIR           stop the daemons started in DIR
#        tools/local_slurm.sh sbatch ARGS...     start in a temporary directory, `sbatch --wait ARGS`,
#                                                print the job's output, stop; exit status of the job
set -euo pipefail

die() { printf 'local_slurm: %s\n' "$*" >&2; exit 1; }

free_port() {  # a TCP port nobody listens on, from a range unlikely to hold services
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  die "no free TCP port found for slurmctld/slurmd"
}

start() {
  local dir=$1 cpus=${2:-4}
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null ||
    die "slurmctld/slurmd not found; install Slurm with tools/setup.sh (Debian package slurm-wlm)"
  mkdir -p "$dir/state" "$dir/spool" "$dir/tmp"
  dir=$(cd "$dir" && pwd)
  local ctl_port d_port
  ctl_port=$(free_port)
  d_port=$(free_port)
  cat >"$dir/slurm.conf" <<CONF
ClusterName=localist
SlurmctldHost=localhost
SlurmctldPort=$ctl_port
SlurmdPort=$d_port
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/none
# A requeued job waits cred_expire seconds before it may start again (default 120).
AuthInfo=cred_expire=5
CredType=cred/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=pmix
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
TmpFS=$dir/tmp
MailProg=/bin/true
ReturnToService=2
MinJobAge=3600
# Pending jobs (a requeued one, once cred_expire has passed) are looked at every second.
SchedulerParameters=bf_interval=1,sched_interval=1
KillWait=10
SlurmdParameters=config_overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF" || die "slurmctld did not start; see $dir/slurmctld.log"
  slurmd -f "$SLURM_CONF" -N localhost || { stop "$dir"; die "slurmd did not start; see $dir/slurmd.log"; }
  local i
  for i in $(seq 1 100); do  # ~10 s
    if timeout 5 scontrol show node localhost 2>/dev/null | grep -q "State=IDLE"; then
      echo "export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.1
  done
  stop "$dir"
  die "the local Slurm did not become ready in 10 s; see $dir/slurmctld.log and $dir/slurmd.log"
}

stop() {
  local dir=$1 f pid
  for f in slurmd slurmctld; do
    [ -f "$dir/$f.pid" ] || continue
    pid=$(cat "$dir/$f.pid")
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

case "${1:-}" in
  start) [ $# -ge 2 ] || die "usage: $0 start DIR [CPUS]"; start "$2" "${3:-4}" ;;
  stop) [ $# -eq 2 ] || die "usage: $0 stop DIR"; stop "$2" ;;
  sbatch)
    shift
    dir=$(mktemp -d "${TMPDIR:-/tmp}/localist-slurm.XXXXXX")
    trap 'stop "$dir"; rm -rf "$dir"' EXIT
    start "$dir" >/dev/null
    export SLURM_CONF=$dir/slurm.conf
    out=$dir/job.out
    echo "local Slurm started ($SLURM_CONF); running: sbatch --wait --output=$out $*"
    status=0
    sbatch --wait --output="$out" "$@" || status=$?
    cat "$out" 2>/dev/null || true
    exit "$status"
    ;;
  *) die "usage: $0 start DIR [CPUS] | stop DIR | sbatch ARGS..." ;;
esac
