# shellcheck shell=bash disable=SC2034
# Shared helpers for the acceptance-test world scripts (install.sh, up.sh,
# down.sh, host-exec.sh). Sourced, never run directly.

WORLD=${NIXBUILD_WORLD:-/var/tmp/nixbuild-world}
TESTWORLD_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# name -> loopback address of the mount-namespace hosts; h1..h3 have Nix,
# "bare" and "fresh" do not (fresh is for install tests: reset-host.sh fresh).
# "hp" is like h1..h3 but its sshd listens on port 2222 only (builders on a
# non-22 SSH port).
HOST_NAMES=(h1 h2 h3 bare fresh hp)
declare -A HOST_ADDR=([h1]=127.0.0.11 [h2]=127.0.0.12 [h3]=127.0.0.13 [bare]=127.0.0.14 [fresh]=127.0.0.15 [hp]=127.0.0.16)
# host_port NAME: the one port the host's sshd listens on.
host_port() { if [ "$1" = hp ]; then echo 2222; else echo 22; fi; }
# known_hosts_name NAME: how ssh names the host in known_hosts.
known_hosts_name() {
  if [ "$(host_port "$1")" = 22 ]; then echo "${HOST_ADDR[$1]}"; else echo "[${HOST_ADDR[$1]}]:$(host_port "$1")"; fi
}

# Benchmark-only hosts b1..b$BENCH_HOST_MAX on 127.0.0.31.., set up like h1..h3
# (multi-user Nix). up.sh starts b1..bN only when NIXBUILD_BENCH_HOSTS=N is set;
# they are never part of HOST_NAMES (CI and `make test` do not start them).
BENCH_HOST_MAX=60
for ((_i = 1; _i <= BENCH_HOST_MAX; _i++)); do HOST_ADDR[b$_i]=127.0.0.$((30 + _i)); done
unset _i
is_bench_host() { [[ $1 =~ ^b[1-9][0-9]?$ ]] && [ "${1#b}" -le "$BENCH_HOST_MAX" ]; }

# The systemd-nspawn host (Debian 12 booted with systemd, no Nix preinstalled).
SD_NAME=sd
SD_ADDR=127.0.0.20
SD_DIR_NAME=sd

# Cachix API stand-in (tests/standins/cachix_api.py).
CACHIX_API_PORT=8751
CACHIX_API_URL="http://127.0.0.1:${CACHIX_API_PORT}/api/v1"
CACHIX_TEST_TOKEN=test-token-0123456789
STANDINS_DIR=""
if [ -d "$TESTWORLD_DIR/../../tests/standins" ]; then STANDINS_DIR=$(cd "$TESTWORLD_DIR/../../tests/standins" && pwd); fi

CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

CACHE_PORT=8750
CACHE_URL="http://127.0.0.1:${CACHE_PORT}"
# The same nginx serves a private binary cache (the "private-cache" of the
# Cachix stand-ins): every request needs a token from the Cachix API
# stand-in's tokens file, as "Authorization: Bearer TOKEN" or as the password
# of HTTP basic auth (a netrc entry); nginx asks the API stand-in (auth_request).
PRIVATE_CACHE_PORT=8752
PRIVATE_CACHE_URL="http://127.0.0.1:${PRIVATE_CACHE_PORT}"
# Two more public caches in the same nginx, for pushes to several
# destinations: "second" (another destination) and "upstream" (what
# skip_upstream points at, standing for e.g. cache.nixos.org).
SECOND_CACHE_PORT=8753
SECOND_CACHE_URL="http://127.0.0.1:${SECOND_CACHE_PORT}"
UPSTREAM_CACHE_PORT=8754
UPSTREAM_CACHE_URL="http://127.0.0.1:${UPSTREAM_CACHE_PORT}"
KEY_PASSPHRASE="correct horse battery"

TF_VERSIONS=(1.15.5 1.6.6)
declare -A TF_LIB_VERSION=([1.15.5]=0.15.3 [1.6.6]=0.7.0)

log() { printf '[testworld %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# quietly NAME CMD...: run CMD with its output appended to $WORLD/logs/NAME.log
# (package managers, pip: pages of progress nobody reads while it works); on
# failure print the log's tail and where it is, and return CMD's status.
quietly() {
  local name=$1 rc=0
  shift
  mkdir -p "$WORLD/logs"
  local file="$WORLD/logs/$name.log"
  printf '\n### %s: %s\n' "$(date +%T)" "$*" >>"$file"
  "$@" >>"$file" 2>&1 || rc=$?
  if [ "$rc" != 0 ]; then
    tail -n 30 "$file" >&2
    log "$name failed ($rc); full log: $file"
  fi
  return "$rc"
}

host_has_nix() { [ "$1" != bare ] && [ "$1" != fresh ]; }

# host_dir NAME: logs, pid files; host_root NAME: etc/ home/ root/ nix/ copies.
host_dir() { printf '%s/hosts/%s' "$WORLD" "$1"; }
host_root() { printf '%s/hosts/%s/root' "$WORLD" "$1"; }

# Succeeds if something answering with an SSH banner listens on ADDR:PORT.
ssh_port_ok() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2" && IFS= read -r -t 2 line <&3 && [[ $line == SSH-* ]]' _ "$1" "${2:-22}" 2>/dev/null
}

# Succeeds if a unix socket at PATH accepts connections.
unix_socket_ok() {
  timeout 3 python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' "$1" 2>/dev/null
}

# Succeeds if PID exists and is not a zombie (kill -0 succeeds on zombies).
pid_alive() {
  local pid=$1 state
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Reads a pid from FILE (empty if none).
read_pid() { if [ -r "$1" ]; then tr -dc '0-9' <"$1"; fi; }

# kill_pidfile FILE: TERM (then KILL) the live process named in FILE, remove FILE.
kill_pidfile() {
  local f=$1 pid i
  pid=$(read_pid "$f")
  if pid_alive "$pid"; then
    kill "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
      pid_alive "$pid" || break
      [ "$i" = 50 ] && kill -9 "$pid" 2>/dev/null
      sleep 0.1
    done
  fi
  rm -f "$f"
}

# Writes FILE only if its content differs; returns 0 if it changed.
write_if_changed() { # FILE CONTENT [MODE]
  if [ -f "$1" ] && [ "$2" = "$(cat "$1")" ]; then
    return 1
  fi
  printf '%s\n' "$2" >"$1.tmp"
  chmod "${3:-644}" "$1.tmp"
  mv -f "$1.tmp" "$1"
  return 0
}

fresh_pristine() { printf '%s/pristine' "$(host_dir fresh)"; }

# Restores fresh's /etc, /root and /home from its pristine snapshot and
# empties its /nix and /usr/local/bin (no process of it may be running but sshd).
fresh_restore() {
  local root p d
  root=$(host_root fresh)
  p=$(fresh_pristine)
  [ -e "$p/.stamp" ] || die "fresh: no pristine snapshot yet (run up.sh)"
  for d in etc root home; do
    rsync -aHAX --numeric-ids --delete "$p/$d/" "$root/$d/"
  done
  mkdir -p "$root/nix" "$root/usr-local-bin"
  find "$root/nix" "$root/usr-local-bin" -mindepth 1 -delete
}

cachix_api_ok() {
  curl -fsS --max-time 3 "http://127.0.0.1:${CACHIX_API_PORT}/_standin/health" 2>/dev/null | grep -q '"ok": true'
}

# Kills every process in the mount namespace of PID except PID itself.
kill_namespace_except() { # PID
  local pid=$1 ns p
  ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null) || return 0
  [ "$ns" != "$(readlink /proc/self/ns/mnt)" ] || return 0
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    [ "$p" = "$pid" ] && continue
    [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$ns" ] && kill "$p" 2>/dev/null
  done
  return 0
}

cache_ok() {
  curl -fsS --max-time 3 "${CACHE_URL}/nix-cache-info" 2>/dev/null | grep -q '^StoreDir: /nix/store$'
}

# Something (not one of our per-host sshds) listening on the wildcard address?
wildcard_listener() {
  ss -Hltn "( sport = :$1 )" 2>/dev/null | awk '{print $4}' | grep -Eq '^(0\.0\.0\.0|\*|\[::\]):'
}

# Stop Debian's own ssh/nginx services: our instances need ports 22 (on
# 127.0.0.11-14) and the test traffic must not reach the system's services.
stop_system_services() {
  local svc port
  for svc in ssh nginx; do
    if [ "$svc" = ssh ]; then port=22; else port=80; fi
    wildcard_listener "$port" || continue
    log "stopping the system's $svc service (listening on *:$port)"
    if [ -d /run/systemd/system ]; then
      systemctl stop "$svc" 2>/dev/null || true
      if [ "$svc" = ssh ]; then systemctl stop ssh.socket 2>/dev/null || true; fi
    elif [ -x "/etc/init.d/$svc" ]; then
      "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
    fi
    if wildcard_listener "$port"; then
      # No init system: the daemons' own pid files.
      if [ "$svc" = ssh ]; then kill_pidfile /run/sshd.pid; else kill_pidfile /run/nginx.pid; fi
    fi
    sleep 0.2
    wildcard_listener "$port" && log "WARNING: something still listens on *:$port"
  done
  return 0
}

# Closes every descriptor above 2 that the caller passed down. Daemons started
# by these scripts (sshd, nix-daemon, nginx, systemd-nspawn) live on and would
# keep them open: with `flock LOCK make world` or `flock LOCK cargo test`, the
# lock stayed held by a nix-daemon or the sd container until it died. (The
# lock itself stays held by the flock process for as long as it runs.)
close_inherited_fds() {
  local fd
  for fd in /proc/"$BASHPID"/fd/*; do
    fd=${fd##*/}
    case "$fd" in 0 | 1 | 2 | 255 | '*') continue ;; esac
    eval "exec $fd>&-" 2>/dev/null || true
  done
}
close_inherited_fds

# What the cachix CLI stand-in uploads to: /etc/cachix-standin/caches.
cachix_standin_caches() {
  printf 'public-cache %s\nprivate-cache %s\n' "$CACHE_URL" "$PRIVATE_CACHE_URL"
}
