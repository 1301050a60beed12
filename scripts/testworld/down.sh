#!/usr/bin/env bash
# Stops everything scripts/testworld/up.sh started: every process in the test
# hosts' mount namespaces (sshd, sessions, nix-daemon and its supervisor; also
# the benchmark-only hosts b1..bN), the systemd container "sd", the Cachix API
# stand-in and the binary-cache nginx.
# Keeps keys and the Terraform installs.
# --purge also deletes the host roots (etc/home/root/nix copies, sd's live
# rootfs), logs, the cache contents, www/, the Cachix stand-in's caches,
# tokens and log, and world.json (kept: its signing keys, sd's pristine
# debootstrapped rootfs). Run as root.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=sd.sh
. "$TESTWORLD_DIR/sd.sh"

purge=""
case "${1:-}" in
  --purge) purge=1 ;;
  "") ;;
  *) die "usage: $0 [--purge]" ;;
esac
[ "$(id -u)" = 0 ] || die "must run as root"
[ -d "$WORLD" ] || { log "no world at $WORLD"; exit 0; }

exec 8>"$WORLD/.lock"
flock 8

# PIDs listening on ADDR:PORT.
listeners() {
  ss -Hltnp "( sport = :$2 )" 2>/dev/null | awk -v a="$1:$2" '$4 == a' |
    grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u || true
}

# Plus the benchmark-only hosts b1..bN that up.sh ever set up.
names=("${HOST_NAMES[@]}")
for ((i = 1; i <= BENCH_HOST_MAX; i++)); do
  if [ -d "$(host_dir "b$i")" ]; then names+=("b$i"); fi
done
for name in "${names[@]}"; do
  dir=$(host_dir "$name")
  [ -d "$dir" ] || continue
  kill_pidfile "$dir/nix-supervisor.pid"
  kill_pidfile "$dir/nix-daemon.pid"
  pids=$(read_pid "$dir/sshd.pid")
  pids="$pids $(listeners "${HOST_ADDR[$name]}" "$(host_port "$name")")"
  for pid in $pids; do
    pid_alive "$pid" || continue
    ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || continue
    [ "$ns" != "$(readlink /proc/self/ns/mnt)" ] || { kill "$pid" 2>/dev/null || true; continue; }
    # Everything in that host's namespace (sessions, daemons, host-exec leftovers).
    for p in /proc/[0-9]*; do
      p=${p#/proc/}
      if [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$ns" ]; then
        kill "$p" 2>/dev/null || true
      fi
    done
  done
  for _ in $(seq 1 30); do
    ssh_port_ok "${HOST_ADDR[$name]}" "$(host_port "$name")" || break
    sleep 0.1
  done
  rm -f "$dir/sshd.pid"
  log "$name: stopped"
done

if pid_alive "$(sd_nspawn_pid)"; then
  sd_stop
  log "sd: stopped"
fi

kill_pidfile "$WORLD/cachix-api/server.pid"
for pid in $(listeners 127.0.0.1 "$CACHIX_API_PORT"); do kill "$pid" 2>/dev/null || true; done
log "cachix API: stopped"

kill_pidfile "$WORLD/nginx/nginx.pid"
for pid in $(listeners 127.0.0.1 "$CACHE_PORT"); do kill "$pid" 2>/dev/null || true; done
log "cache: stopped"

if [ -n "$purge" ]; then
  rm -rf "${WORLD:?}/hosts" "$WORLD/cache" "$WORLD/www" "$WORLD/nginx" \
    "$WORLD/world.json" "$WORLD/known_hosts" "$(sd_rootfs)" "$WORLD/cachix-api/caches" \
    "$WORLD/cachix-api/tokens" "$WORLD/cachix-api/requests.log"
  log "purged host roots, cache, www and world.json (kept keys/ and terraform/)"
fi
