#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# chaos.sh: the long chaos soak (tools/chaos.py): training hit by random kill -9, SIGUSR1,
# stalled ranks and kills inside checkpoint writes, resumed on 2-4 ranks until done,
# again and again for SECONDS; prints the JSON summary (faults survived per hour, the
# longest time from a fault to the job's exit) and exits non-zero on any failed check.
# Usage: tools/chaos.sh SECONDS [SEED]   (the e2e test runs a short version)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:?usage: tools/chaos.sh SECONDS [SEED]}
seed=${2:-$RANDOM}
work=${CHAOS_WORK:-$(mktemp -d /tmp/localist-chaos-XXXXXX)}
echo "chaos: seed $seed, work directory $work" >&2
exec /usr/bin/python3 tools/chaos.py --bin "${LOCALIST_BIN:-build/localist}" --work "$work" --seconds "$seconds" \
  --faults 1 --seed "$seed" --worlds "${CHAOS_WORLDS:-2,3,4}" --steps "${CHAOS_STEPS:-120}"
