#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# local_slurm.sh: a real single-node Slurm (slurmctld + slurmd on localhost) for trying
# launch/slurm/train.sbatch on a workstation and for the e2e tests: the config is
# generated into a directory, the daemons run as the calling user and are stopped by
# PID; every wait is bounded. Authentication is auth/none (localhost only).
# Limits: one node, or N simulated hosts (start-hosts); Debian's slurm-wlm 22.05.
# Usage: tools/local_slurm.sh start DIR [CPUS]   start, wait until ready; prints `export SLURM_CONF=...`
#        tools/local_slurm.sh start-hosts DIR TAG NET N [CPUS]   N nodes on tools/netns_hosts.sh's hosts
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

# The settings every local cluster shares: ports, no authentication, plain process
# tracking, state, spool, logs and PID files under DIR (per node: %n).
conf_common() {
  local dir=$1 ctl_port=$2 d_port=$3
  cat <<CONF
ClusterName=localist
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
SlurmdSpoolDir=$dir/spool/%n
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
TmpFS=$dir/tmp
MailProg=/bin/true
ReturnToService=2
MinJobAge=3600
# Pending jobs (a requeued one, once cred_expire has passed) are looked at every second.
SchedulerParameters=bf_interval=1,sched_interval=1
KillWait=10
SlurmdParameters=config_overrides
CONF
}

start() {
  local dir=$1 cpus=${2:-4}
  command -v slurmctld >/dev/null && command -v slurmd >/dev/null ||
    die "slurmctld/slurmd not found; install Slurm with tools/setup.sh (Debian package slurm-wlm)"
  mkdir -p "$dir/state" "$dir/spool/localhost" "$dir/tmp"
  dir=$(cd "$dir" && pwd)
  local ctl_port d_port
  ctl_port=$(free_port)
  d_port=$(free_port)
  { conf_common "$dir" "$ctl_port" "$d_port"
    cat <<CONF
SlurmctldHost=localhost
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  } >"$dir/slurm.conf"
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

# N nodes on the simulated hosts of tools/netns_hosts.sh (TAG, NET): slurmctld on the
# head TAGh0, one slurmd per host TAGh1..TAGhN, each in its host's network and a UTS
# namespace with the host's name. Clients run on the head: ip netns exec TAGh0 ...
start_hosts() {
  local dir=$1 tag=$2 net=$3 n=$4 cpus=${5:-2} i nodes=""
  mkdir -p "$dir/state" "$dir/tmp"
  dir=$(cd "$dir" && pwd)
  { conf_common "$dir" 6817 6818
    echo "SlurmctldHost=${tag}h0(10.77.${net}.254)"
    for i in $(seq 1 "$n"); do
      echo "NodeName=${tag}h$i NodeAddr=10.77.${net}.$i CPUs=$cpus RealMemory=8000 State=UNKNOWN"
      nodes="$nodes${nodes:+,}${tag}h$i"
      mkdir -p "$dir/spool/${tag}h$i"
    done
    echo "PartitionName=debug Nodes=$nodes Default=YES MaxTime=INFINITE State=UP"
  } >"$dir/slurm.conf"
  local conf=$dir/slurm.conf
  # nsenter, not `ip netns exec`: that remounts /sys for the namespace, without the
  # cgroup hierarchies slurmd reads. Each node gets its own TmpFS (a bind mount in a
  # mount namespace of its own), as separate machines would: PMIx keeps per-node state there.
  on() {
    local host=$1
    shift
    mkdir -p "$dir/tmp-$host"
    nsenter --net="/run/netns/$host" unshare --uts --mount --propagation private /bin/sh -c \
      "hostname $host && mount --bind '$dir/tmp-$host' '$dir/tmp' && exec \"\$@\"" sh "$@"
  }
  on "${tag}h0" slurmctld -f "$conf" || die "slurmctld did not start; see $dir/slurmctld.log"
  for i in $(seq 1 "$n"); do
    on "${tag}h$i" slurmd -f "$conf" -N "${tag}h$i" || { stop "$dir"; die "slurmd on ${tag}h$i did not start; see $dir"; }
  done
  for _ in $(seq 1 150); do  # ~15 s
    if [ "$(SLURM_CONF=$conf ip netns exec "${tag}h0" timeout 5 sinfo -h -t idle -o '%D' 2>/dev/null)" = "$n" ]; then
      echo "export SLURM_CONF=$conf"
      return 0
    fi
    sleep 0.1
  done
  stop "$dir"
  die "the simulated $n-node Slurm did not become ready in 15 s; see $dir/slurmctld.log and $dir/slurmd-*.log"
}

stop() {
  local dir=$1 f pid
  for f in "$dir"/slurmd-*.pid "$dir"/slurmctld.pid; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
}

case "${1:-}" in
  start) [ $# -ge 2 ] || die "usage: $0 start DIR [CPUS]"; start "$2" "${3:-4}" ;;
  start-hosts) [ $# -ge 5 ] || die "usage: $0 start-hosts DIR TAG NET N [CPUS]"; start_hosts "$2" "$3" "$4" "$5" "${6:-2}" ;;
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
