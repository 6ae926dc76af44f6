#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# netns_agent.sh: OpenMPI's launch agent (plm_rsh_agent) for the simulated hosts of
# tools/netns_hosts.sh: where ssh would log into HOST and run the command with a shell,
# this enters namespace HOST (its network, and a UTS namespace named after it, so the
# host has its own name) and runs the command there with a shell, as ssh does.
# Usage (by mpirun): netns_agent.sh HOST COMMAND...
set -euo pipefail
host=$1
shift
exec ip netns exec "$host" unshare --uts /bin/sh -c "hostname '$host' && $*"
