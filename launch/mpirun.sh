#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# mpirun.sh: runs `localist train CONFIG` on N local ranks, or on the hosts of an
# OpenMPI hostfile, with what a user otherwise sets by hand: BLAS/OpenMP threads per
# rank so ranks do not oversubscribe cores, the root flags only when run as root, and
# --oversubscribe only when there are more local ranks than cores, and on several hosts
# a supervisor that ends a job whose abort hangs on a lost host. Prints the exact
# command, then runs it; its exit status is localist's (75: stopped by a signal after a
# checkpoint; continue with --resume auto).
# Usage: launch/mpirun.sh [-n RANKS] [--hostfile FILE] [--dry-print] CONFIG [localist train options]
set -euo pipefail

usage() { echo "usage: $0 [-n RANKS] [--hostfile FILE] [--dry-print] CONFIG [localist train options]" >&2; exit 2; }
ranks=2
hostfile=""
dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    -n|-np) [ $# -ge 2 ] || usage; ranks=$2; shift 2 ;;
    --hostfile) [ $# -ge 2 ] || usage; hostfile=$2; shift 2 ;;
    --dry-print) dry=1; shift ;;
    -h|--help) usage ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || usage
case "$ranks" in ''|*[!0-9]*|0) echo "mpirun.sh: -n $ranks: the number of ranks must be a positive integer" >&2; exit 2 ;; esac
config=$1
shift
[ -f "$config" ] || { echo "mpirun.sh: $config: no such config file" >&2; exit 2; }
command -v mpirun >/dev/null || { echo "mpirun.sh: mpirun not found; install OpenMPI (tools/setup.sh)" >&2; exit 2; }

# The binary: $LOCALIST, else the one installed beside this script (bin/localist-mpirun),
# else a source checkout's build/localist, else `localist` on PATH.
if [ -n "${LOCALIST:-}" ]; then bin=$LOCALIST
elif [ -x "$(dirname "$0")/localist" ]; then bin=$(cd "$(dirname "$0")" && pwd)/localist
elif [ -x "$(dirname "$0")/../build/localist" ]; then bin=$(cd "$(dirname "$0")/../build" && pwd)/localist
else bin=$(command -v localist || true); fi
[ -n "$bin" ] && [ -x "$bin" ] || { echo "mpirun.sh: no localist binary (build it with make, or set LOCALIST=/path/to/localist)" >&2; exit 2; }

cores=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)  # nproc alone obeys OMP_NUM_THREADS
args=(mpirun -np "$ranks")
if [ -n "$hostfile" ]; then
  [ -f "$hostfile" ] || { echo "mpirun.sh: $hostfile: no such hostfile" >&2; exit 2; }
  slots=$(awk '!/^[[:space:]]*(#|$)/ { n = 1; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { split($i, a, "="); n = a[2] } s += n } END { print s + 0 }' "$hostfile")
  hosts=$(grep -cvE '^[[:space:]]*(#|$)' "$hostfile" || true)
  if [ "$ranks" -gt "$slots" ]; then
    echo "mpirun.sh: -n $ranks but $hostfile offers $slots slot(s) on $hosts host(s); lower -n or add slots" >&2
    exit 2
  fi
  args+=(--hostfile "$hostfile")
  # NOTE(lost-host): a host lost mid-run (its link or its power gone) leaves mpirun waiting
  # on TCP to that host's daemon for many minutes. Keepalives on mpirun's own connections
  # end an idle lost one in ~11 s; an abort that still hangs is ended by the supervisor below.
  args+=(--mca oob_tcp_keepalive_time 5 --mca oob_tcp_keepalive_intvl 2 --mca oob_tcp_keepalive_probes 3)
  # Threads per rank from this host's cores and the hostfile's ranks per host (assumes alike hosts).
  per_host=$(( (ranks + hosts - 1) / hosts ))
else
  per_host=$ranks
  if [ "$ranks" -gt "$cores" ]; then args+=(--oversubscribe); fi
fi
threads=${LOCALIST_THREADS:-$(( cores / per_host > 0 ? cores / per_host : 1 ))}
envs=(OMP_NUM_THREADS="$threads" OPENBLAS_NUM_THREADS="$threads")
if [ "$(id -u)" -eq 0 ]; then envs+=(OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1); fi
export "${envs[@]}"
args+=(-x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS "$bin" train "$config" "$@")
echo "${envs[*]} ${args[*]}"
[ "$dry" -eq 1 ] && exit 0
[ -n "$hostfile" ] || exec "${args[@]}"

# Several hosts: mpirun runs supervised. When the job aborts (the ranks left name the
# ranks that did not arrive and call MPI_Abort) or mpirun loses a daemon, mpirun gets
# LOCALIST_ABORT_GRACE_S (default 10) seconds to end; then it is killed, and the daemons
# of the hosts still up, losing mpirun, end their ranks. Signals are passed on (a Slurm
# preemption's SIGTERM/SIGUSR1 still reaches every rank).
grace=${LOCALIST_ABORT_GRACE_S:-10}
flag=$(mktemp /tmp/localist-mpirun.XXXXXX)
rm -f "$flag"
# The world ranks a host of the hostfile runs (mpirun's default mapping: each host's
# slots in order, up to -n ranks), for naming what a lost host took with it.
ranks_on_host() {
  awk -v want="$1" -v n="$ranks" '!/^[[:space:]]*(#|$)/ {
      s = 1; for (i = 2; i <= NF; i++) if ($i ~ /^slots=/) { split($i, a, "="); s = a[2] }
      for (k = 0; k < s && r < n; k++) { if ($1 == want) out = out (out == "" ? "" : ", ") r; r++ }
    } END { print out }' "$hostfile"
}
"${args[@]}" 2> >(while IFS= read -r line; do
  printf '%s\n' "$line" >&2
  case "$line" in
    *"MPI_ABORT was invoked"*|*"lost communication with a remote daemon"*) : >"$flag" ;;
    *"Remote daemon:"*" on node "*)
      lost=${line##* on node }
      lost=${lost%%[[:space:]]*}
      echo "mpirun.sh: host $lost was lost; it ran world rank(s) $(ranks_on_host "$lost")" >&2 ;;
  esac
done) &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' TERM INT
trap 'kill -USR1 "$pid" 2>/dev/null' USR1
while kill -0 "$pid" 2>/dev/null; do
  if [ -e "$flag" ]; then
    for _ in $(seq 1 "$grace"); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "mpirun.sh: mpirun did not end ${grace} s after the job aborted (a lost host?); killing it" >&2
      kill -9 "$pid" 2>/dev/null || true
    fi
    break
  fi
  sleep 0.5
done
status=0
while :; do
  wait "$pid" 2>/dev/null && status=0 || status=$?
  kill -0 "$pid" 2>/dev/null || break  # a trapped signal ended the wait, not mpirun
done
rm -f "$flag"
exit "$status"
