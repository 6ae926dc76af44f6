#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# netns_hosts.sh: simulated hosts on one machine for the multi-host tests: network
# namespaces <tag>h1..<tag>hN (the hosts) and <tag>h0 (the head, where mpirun runs), each
# with one link (eth0, 10.77.<net>.<i>/24; the head .254) into a bridge that lives in a
# namespace of its own, <tag>sw (the switch). Nothing is added to the machine's own
# namespace, and only names and addresses this script made are touched. Needs root.
# Usage: netns_hosts.sh up TAG N NET | down TAG | kill TAG I (every process of host I, -9)
#        | unlink TAG I (remove host I's link: the host is lost)
set -euo pipefail
cmd=${1:?usage: netns_hosts.sh up TAG N NET | down TAG | kill TAG I | unlink TAG I}
tag=${2:?TAG}
case "$tag" in *[!a-z0-9]*|'') echo "netns_hosts.sh: TAG must be [a-z0-9]+" >&2; exit 2 ;; esac
case "$cmd" in
  up)
    n=${3:?N}; net=${4:?NET}
    ip netns add "${tag}sw"
    ip -n "${tag}sw" link add br0 type bridge
    ip -n "${tag}sw" link set br0 up
    ip -n "${tag}sw" link set lo up
    for i in $(seq 0 "$n"); do
      ns="${tag}h$i"
      addr=$([ "$i" -eq 0 ] && echo 254 || echo "$i")
      ip netns add "$ns"
      ip -n "${tag}sw" link add "v$i" type veth peer name eth0 netns "$ns"
      ip -n "${tag}sw" link set "v$i" master br0
      ip -n "${tag}sw" link set "v$i" up
      ip -n "$ns" addr add "10.77.${net}.${addr}/24" dev eth0
      ip -n "$ns" link set eth0 up
      ip -n "$ns" link set lo up
    done
    ;;
  down)
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^${tag}(h[0-9]+|sw)$" || true); do
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
      ip netns del "$ns"
    done
    ;;
  kill)
    i=${3:?I}
    for p in $(ip netns pids "${tag}h$i" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ;;
  unlink)
    i=${3:?I}
    ip -n "${tag}sw" link del "v$i"
    ;;
  *) echo "netns_hosts.sh: unknown command $cmd" >&2; exit 2 ;;
esac
