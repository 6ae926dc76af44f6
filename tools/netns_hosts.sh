#!/usr/bin/env bash
# netns_hosts.sh: simulated hosts on one machine for the multi-host tests: N network
# namespaces <tag>h1..<tag>hN, each with one veth link (eth0, 10.77.<net>.<i>/24) into a
# bridge <tag>br (10.77.<net>.254) in the root namespace. Only names and addresses this
# script made are touched; nothing outside them is contacted. Needs root.
# Usage: netns_hosts.sh up TAG N NET | down TAG | kill TAG I (every process of host I, -9)
#        | unlink TAG I (remove host I's link)
set -euo pipefail
cmd=${1:?usage: netns_hosts.sh up TAG N NET | down TAG | kill TAG I | unlink TAG I}
tag=${2:?TAG}
case "$tag" in *[!a-z0-9]*|'') echo "netns_hosts.sh: TAG must be [a-z0-9]+" >&2; exit 2 ;; esac
case "$cmd" in
  up)
    n=${3:?N}; net=${4:?NET}
    ip link add "${tag}br" type bridge
    ip addr add "10.77.${net}.254/24" dev "${tag}br"
    ip link set "${tag}br" up
    for i in $(seq 1 "$n"); do
      ns="${tag}h$i"
      ip netns add "$ns"
      ip link add "${tag}v$i" type veth peer name "${tag}p$i"
      ip link set "${tag}p$i" netns "$ns"
      ip -n "$ns" link set "${tag}p$i" name eth0
      ip -n "$ns" addr add "10.77.${net}.$i/24" dev eth0
      ip -n "$ns" link set eth0 up
      ip -n "$ns" link set lo up
      ip link set "${tag}v$i" master "${tag}br"
      ip link set "${tag}v$i" up
    done
    ;;
  down)
    for ns in $(ip netns list | awk '{print $1}' | grep -E "^${tag}h[0-9]+$" || true); do
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
      ip netns del "$ns"
    done
    for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "^${tag}(v[0-9]+|br)$" || true); do
      ip link del "$l" 2>/dev/null || true
    done
    ;;
  kill)
    i=${3:?I}
    for p in $(ip netns pids "${tag}h$i" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ;;
  unlink)
    i=${3:?I}
    ip link del "${tag}v$i"
    ;;
  *) echo "netns_hosts.sh: unknown command $cmd" >&2; exit 2 ;;
esac
