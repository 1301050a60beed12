#!/usr/bin/env bash
# Starts (or reuses, when already running and healthy) the acceptance-test
# world and writes $WORLD/world.json describing it:
#   - SSH client keys in $WORLD/keys (ed25519, RSA 3072 PEM, passphrase ed25519)
#   - 4 sshd "hosts", each in its own mount namespace with private /etc, /home,
#     /root and /nix: h1..h3 (127.0.0.11-13:22) with a supervised multi-user
#     nix-daemon, and "bare" (127.0.0.14:22) without Nix; every session's
#     command is appended to $WORLD/hosts/NAME/commands.log (one line each:
#     ISO timestamp, TAB, user, TAB, command with \ and newlines escaped)
#   - a writable HTTP binary cache (nginx + DAV) on 127.0.0.1:8750, also
#     serving $WORLD/www under /www/ (with the Nix installer stand-ins in
#     www/installers/: official.sh, determinate.sh and the Nix tarball); in
#     the same nginx a private cache (8752, token needed) and two more public
#     ones, "second" (8753) and "upstream" (8754)
#   - "hp" (127.0.0.16:2222, nothing on 22): like h1..h3 on a non-22 SSH port;
#     only root's and deploy's sessions are recorded (other users' keys keep
#     their own authorized_keys command=)
#   - "fresh" (127.0.0.15:22): like bare, its own /usr/bin and /usr/local/bin,
#     for install tests; scripts/testworld/reset-host.sh fresh makes it pristine
#   - "sd" (127.0.0.20:22): Debian 12 booted with systemd-nspawn, no Nix
#     (scripts/testworld/sd.sh, sd-exec.sh, reset-host.sh sd)
#   - the Cachix API stand-in (tests/standins/cachix_api.py) on 127.0.0.1:8751
#     and the cachix CLI stand-in as /usr/local/bin/cachix on h1-h3 and sd
#   - only with NIXBUILD_BENCH_HOSTS=N (1..60, for benchmarks): b1..bN on
#     127.0.0.31.. set up exactly like h1..h3, listed in world.json under
#     "bench_hosts" (without the variable they are neither started nor listed;
#     running ones are left alone; down.sh stops them). With
#     NIXBUILD_BENCH_ONLY=1 as well, only the bench hosts are set up, in a
#     world that is already up: nothing else is checked, reset or restarted
#     (e.g. h1..h3's nix.conf), and world.json/known_hosts only gain them.
# Runs install.sh first unless NIXBUILD_SKIP_INSTALL=1; NIXBUILD_VERIFY=1
# re-runs the end-to-end host checks even for reused hosts. Run as root.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=sd.sh
. "$TESTWORLD_DIR/sd.sh"

SELF="$TESTWORLD_DIR/up.sh"

########################################################################
# Internal modes (run by up.sh itself in the background).

# __ns-sshd NAME: becomes the host's sshd inside a fresh mount namespace.
# Must already run under `unshare --mount --propagation private`.
ns_sshd() {
  local name=$1 root dir
  root=$(host_root "$name")
  dir=$(host_dir "$name")
  mount --bind "$root/etc" /etc
  mount --bind "$root/home" /home
  mount --bind "$root/root" /root
  mount --bind "$root/nix" /nix
  if ! host_has_nix "$name"; then
    mount --bind "$root/usr-bin" /usr/bin
  fi
  if [ -d "$root/usr-local-bin" ]; then
    mount --bind "$root/usr-local-bin" /usr/local/bin
  fi
  mkdir -p /run/sshd
  echo $$ >"$dir/sshd.pid"
  exec /usr/sbin/sshd -D -e -f /etc/ssh/sshd_config
}

# __nix-supervisor NAME: keeps a nix-daemon running (inside the host's
# namespace, entered with nsenter by the caller); its pid is in
# nix-daemon.pid, so `kill $(cat nix-daemon.pid)` restarts the daemon.
nix_supervisor() {
  local dir child=""
  dir=$(host_dir "$1")
  echo $$ >"$dir/nix-supervisor.pid"
  trap '[ -n "$child" ] && kill "$child" 2>/dev/null; rm -f "$dir/nix-daemon.pid"; exit 0' TERM INT
  while :; do
    nix-daemon </dev/null >>"$dir/nix-daemon.log" 2>&1 &
    child=$!
    echo "$child" >"$dir/nix-daemon.pid.tmp"
    mv -f "$dir/nix-daemon.pid.tmp" "$dir/nix-daemon.pid"
    wait "$child" || true
    echo "[supervisor $(date +%T)] nix-daemon $child exited, restarting" >>"$dir/nix-daemon.log"
    sleep 0.05
  done
}

case "${1:-}" in
  __ns-sshd) ns_sshd "$2"; exit 1 ;;
  __nix-supervisor) nix_supervisor "$2"; exit 1 ;;
  "") ;;
  *) die "usage: $0 (no arguments)" ;;
esac

########################################################################

[ "$(id -u)" = 0 ] || die "must run as root"

BENCH_HOST_NAMES=()
bench_count=${NIXBUILD_BENCH_HOSTS:-0}
if ! [[ $bench_count =~ ^[0-9]+$ ]] || [ "$bench_count" -gt "$BENCH_HOST_MAX" ]; then
  die "NIXBUILD_BENCH_HOSTS must be a number from 0 to $BENCH_HOST_MAX (got '$bench_count')"
fi
for ((i = 1; i <= bench_count; i++)); do BENCH_HOST_NAMES+=("b$i"); done

# The hosts' namespaces replace these directories, so the world must live elsewhere.
mkdir -p "$WORLD"
WORLD=$(cd "$WORLD" && pwd -P)
case "$WORLD/" in
  /etc/* | /home/* | /root/* | /nix/* | /usr/bin/*) die "NIXBUILD_WORLD ($WORLD) must not be under /etc, /home, /root, /nix or /usr/bin" ;;
esac

# One up/down at a time (fd 8 is closed for every daemon started below).
exec 8>"$WORLD/.lock"
flock 8

BENCH_ONLY=""
if [ "${NIXBUILD_BENCH_ONLY:-}" = 1 ]; then
  [ "$bench_count" -gt 0 ] || die "NIXBUILD_BENCH_ONLY=1 needs NIXBUILD_BENCH_HOSTS=N"
  for f in world.json known_hosts keys/authorized_keys; do
    [ -s "$WORLD/$f" ] || die "NIXBUILD_BENCH_ONLY=1 needs a world that is up (no $WORLD/$f: run up.sh first)"
  done
  BENCH_ONLY=1
fi

if [ "${NIXBUILD_SKIP_INSTALL:-}" != 1 ] && [ -z "$BENCH_ONLY" ]; then
  bash "$TESTWORLD_DIR/install.sh" 8>&-
fi

START_NS=$(date +%s%N)
chmod 755 "$WORLD"
mkdir -p "$WORLD/hosts" "$WORLD/keys" "$WORLD/cache" "$WORLD/www" "$WORLD/nginx/tmp"
chmod 755 "$WORLD/hosts"
stop_system_services

SSH_OPTS=(-F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes -o ConnectTimeout=5
  -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$WORLD/known_hosts" -o LogLevel=ERROR
  -i "$WORLD/keys/client_ed25519")

########################################################################
# Keys

ensure_keys() {
  local k="$WORLD/keys"
  chmod 700 "$k"
  if [ ! -s "$k/client_ed25519" ] || [ ! -s "$k/client_ed25519.pub" ]; then
    rm -f "$k/client_ed25519" "$k/client_ed25519.pub"
    ssh-keygen -q -t ed25519 -N '' -C nixbuild-test-ed25519 -f "$k/client_ed25519"
  fi
  if [ ! -s "$k/client_rsa" ] || [ ! -s "$k/client_rsa.pub" ]; then
    rm -f "$k/client_rsa" "$k/client_rsa.pub"
    ssh-keygen -q -t rsa -b 3072 -m PEM -N '' -C nixbuild-test-rsa -f "$k/client_rsa"
  fi
  if [ ! -s "$k/client_ed25519_enc" ] || [ ! -s "$k/client_ed25519_enc.pub" ]; then
    rm -f "$k/client_ed25519_enc" "$k/client_ed25519_enc.pub"
    ssh-keygen -q -t ed25519 -N "$KEY_PASSPHRASE" -C nixbuild-test-ed25519-enc -f "$k/client_ed25519_enc"
  fi
  chmod 600 "$k/client_ed25519" "$k/client_rsa" "$k/client_ed25519_enc"
  cat "$k/client_ed25519.pub" "$k/client_rsa.pub" "$k/client_ed25519_enc.pub" >"$k/authorized_keys"
}

########################################################################
# Binary cache (nginx)

# public_cache_server PORT DIR: an nginx server block for a writable public
# cache in $WORLD/DIR, logging to $WORLD/nginx/DIR-access.log.
public_cache_server() {
  cat <<EOF
  server {
    listen 127.0.0.1:$1;
    server_name localhost;
    access_log $WORLD/nginx/$2-access.log;
    location / {
      root $WORLD/$2;
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 0;
    }
  }
EOF
}

nginx_conf() {
  local n="$WORLD/nginx" mod=/usr/lib/nginx/modules/ngx_http_dav_ext_module.so
  [ -e "$mod" ] && echo "load_module $mod;"
  cat <<EOF
# Generated by scripts/testworld/up.sh: the test world's binary cache.
user root;
worker_processes 2;
pid $n/nginx.pid;
error_log $n/error.log;
events { worker_connections 512; }
http {
  access_log $n/access.log;
  client_body_temp_path $n/tmp/body;
  proxy_temp_path $n/tmp/proxy;
  fastcgi_temp_path $n/tmp/fastcgi;
  uwsgi_temp_path $n/tmp/uwsgi;
  scgi_temp_path $n/tmp/scgi;
  types {
    text/x-nix-narinfo narinfo;
    text/plain txt sh;
  }
  default_type application/octet-stream;
  sendfile on;
  server {
    listen 127.0.0.1:$CACHE_PORT;
    server_name localhost;
    location /www/ {
      alias $WORLD/www/;
      autoindex on;
    }
    location / {
      root $WORLD/cache;
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 0;
      autoindex on;
    }
  }
$(public_cache_server "$SECOND_CACHE_PORT" second-cache)
$(public_cache_server "$UPSTREAM_CACHE_PORT" upstream-cache)
  # The private cache: nothing without a token (Bearer or basic auth).
  server {
    listen 127.0.0.1:$PRIVATE_CACHE_PORT;
    server_name localhost;
    access_log $n/private-access.log;
    location = /_standin_auth {
      internal;
      proxy_pass http://127.0.0.1:$CACHIX_API_PORT/_standin/auth;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header Authorization \$http_authorization;
      proxy_set_header X-Original-URI \$request_uri;
    }
    location / {
      auth_request /_standin_auth;
      root $WORLD/private-cache;
      dav_methods PUT DELETE;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 0;
    }
  }
}
EOF
}

CACHE_STARTED=""
ensure_cache() {
  local n="$WORLD/nginx" conf new pid
  conf="$n/nginx.conf"
  new=$(nginx_conf)
  local d
  for d in cache private-cache second-cache upstream-cache; do
    mkdir -p "$WORLD/$d"
    printf 'StoreDir: /nix/store\nWantMassQuery: 1\nPriority: 30\n' >"$WORLD/$d/nix-cache-info.tmp"
    mv -f "$WORLD/$d/nix-cache-info.tmp" "$WORLD/$d/nix-cache-info"
  done
  pid=$(read_pid "$n/nginx.pid")
  if pid_alive "$pid" && cache_ok && [ "$new" = "$(cat "$conf" 2>/dev/null)" ]; then
    log "cache: reusing nginx (pid $pid)"
    return 0
  fi
  if pid_alive "$pid" && cache_ok; then
    # A changed config: reload, so that running tests keep their cache.
    printf '%s\n' "$new" >"$conf.new"
    nginx -q -t -p "$n/" -c "$conf.new" -e "$n/error.log" || die "nginx config test failed ($conf.new)"
    mv -f "$conf.new" "$conf"
    kill -HUP "$pid"
    local i
    for i in $(seq 1 50); do
      [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$PRIVATE_CACHE_URL/nix-cache-info")" != 000 ] &&
        curl -fsS --max-time 2 -o /dev/null "$SECOND_CACHE_URL/nix-cache-info" &&
        curl -fsS --max-time 2 -o /dev/null "$UPSTREAM_CACHE_URL/nix-cache-info" && cache_ok && break
      [ "$i" = 50 ] && die "nginx did not come back after reloading $conf"
      sleep 0.1
    done
    log "cache: nginx reloaded with the new config (pid $pid)"
    return 0
  fi
  kill_pidfile "$n/nginx.pid"
  kill_listeners 127.0.0.1 "$CACHE_PORT"
  kill_listeners 127.0.0.1 "$PRIVATE_CACHE_PORT"
  kill_listeners 127.0.0.1 "$SECOND_CACHE_PORT"
  kill_listeners 127.0.0.1 "$UPSTREAM_CACHE_PORT"
  printf '%s\n' "$new" >"$conf"
  nginx -q -t -p "$n/" -c "$conf" -e "$n/error.log" || die "nginx config test failed"
  # nginx daemonizes itself; all fds of ours are closed/redirected.
  nginx -p "$n/" -c "$conf" -e "$n/error.log" </dev/null >>"$n/nginx.out" 2>&1 8>&-
  local i
  for i in $(seq 1 50); do
    cache_ok && break
    [ "$i" = 50 ] && { tail -n 20 "$n/error.log" >&2; die "nginx did not come up on $CACHE_URL"; }
    sleep 0.1
  done
  CACHE_STARTED=1
  log "cache: nginx started on $CACHE_URL (pid $(read_pid "$n/nginx.pid"))"
}

# Kills whatever listens on ADDR:PORT (leftovers whose pid files are gone).
kill_listeners() {
  local pids p
  pids=$(ss -Hltnp "( sport = :$2 )" 2>/dev/null | awk -v a="$1:$2" '$4 == a' | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u) || true
  for p in $pids; do
    log "killing stale listener pid $p on $1:$2"
    kill "$p" 2>/dev/null || true
  done
  [ -z "$pids" ] || sleep 0.3
}

########################################################################
# Hosts

sshd_config() { # NAME
  cat <<EOF
# Generated by scripts/testworld/up.sh for test host $1.
ListenAddress ${HOST_ADDR[$1]}:$(host_port "$1")
HostKey /etc/ssh/ssh_host_ed25519_key
PidFile none
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
AuthorizedKeysFile .ssh/authorized_keys
StrictModes yes
LogLevel VERBOSE
AllowTcpForwarding yes
AllowAgentForwarding yes
X11Forwarding no
PrintMotd no
MaxStartups 200:30:400
MaxSessions 100
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  # sshd's ForceCommand overrides an authorized_keys command=: on hp only the
  # administrative users are recorded, so build keys restricted to a forced
  # command (nixbuild_builder's default) are tested as sshd really runs them.
  if [ "$1" = hp ]; then
    printf 'Match User root,deploy\n  ForceCommand /etc/testworld/record-command\n'
  else
    echo "ForceCommand /etc/testworld/record-command"
  fi
}

recorder_script() { # NAME [LOG]
  cat <<EOF
#!/bin/bash
# Test-world command recorder (sshd ForceCommand, written by scripts/testworld/up.sh):
# appends "TIMESTAMP<TAB>USER<TAB>COMMAND" (backslashes, CR and LF escaped as
# \\\\, \\r, \\n; "<login shell>" for sessions without a command) to the log,
# then runs the original command exactly as sshd would have.
log=${2:-$(host_dir "$1")/commands.log}
EOF
  cat <<'EOF'
if [ -n "${SSH_ORIGINAL_COMMAND+set}" ]; then
  esc=${SSH_ORIGINAL_COMMAND//\\/\\\\}
  esc=${esc//$'\n'/\\n}
  esc=${esc//$'\r'/\\r}
else
  esc="<login shell>"
fi
{
  flock 9
  printf '%s\t%s\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%NZ)" "${USER:-$(id -un)}" "$esc" >&9
} 9>>"$log" 2>/dev/null || true
shell=${SHELL:-/bin/sh}
if [ -n "${SSH_ORIGINAL_COMMAND+set}" ]; then
  exec "$shell" -c "$SSH_ORIGINAL_COMMAND"
fi
exec -a "-${shell##*/}" "$shell"
EOF
}

# build-users-group is empty: the namespace hosts share one kernel, and Nix
# kills every process of a build user's uid around each build, so equal nixbld
# uids on two hosts would kill each other's concurrent builds.
nix_conf() {
  cat <<'EOF'
# Generated by scripts/testworld/up.sh (rewritten on every up).
experimental-features = nix-command flakes
substituters =
sandbox = false
build-users-group =
trusted-users = root
connect-timeout = 2
EOF
}

# fresh has no systemd: its owner supervises nix-daemon, as a runit or
# OpenRC service would. This is its daemon_restart_command (in world.json).
fresh_daemon_restart_script() {
  cat <<'EOF'
#!/bin/sh
# Test world, host fresh (no systemd; written by scripts/testworld/up.sh):
# starts a supervisor loop for nix-daemon when none runs, else kills the
# daemon so that the supervisor restarts it; then waits until the daemon
# answers. The daemon's pid is in /nix/var/nix/nix-daemon.pid.
set -eu
daemon=/nix/var/nix/profiles/default/bin/nix-daemon
nix=/nix/var/nix/profiles/default/bin/nix
[ -x "$daemon" ] || { echo "restart-nix-daemon: no $daemon" >&2; exit 1; }
alive() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat")" != Z ]; }
pidfile=/nix/var/nix/nix-daemon.pid
old=$(cat "$pidfile" 2>/dev/null || true)
if alive "$(cat /nix/var/nix/nix-daemon-supervisor.pid 2>/dev/null || true)"; then
  kill "$old" 2>/dev/null || true
else
  mkdir -p /nix/var/log
  # shellcheck disable=SC2016 # expanded by the supervisor's shell
  setsid sh -c 'echo $$ >/nix/var/nix/nix-daemon-supervisor.pid
    while :; do
      "$0" </dev/null >>/nix/var/log/nix-daemon.log 2>&1 &
      echo $! >/nix/var/nix/nix-daemon.pid
      wait $!
      sleep 0.2
    done' "$daemon" </dev/null >/dev/null 2>&1 &
fi
i=0
until [ "$(cat "$pidfile" 2>/dev/null || true)" != "$old" ] &&
  NIX_REMOTE=daemon "$nix" --extra-experimental-features nix-command store ping >/dev/null 2>&1; do
  i=$((i + 1))
  [ "$i" -lt 100 ] || { echo "restart-nix-daemon: nix-daemon does not answer" >&2; exit 1; }
  sleep 0.1
done
echo "nix-daemon running (pid $(cat "$pidfile"))"
EOF
}

# Creates/refreshes the host's private directories (safe while it runs).
# Sets SSHD_CONFIG_CHANGED=1 if sshd's own config changed (needs restart).
prepare_host() { # NAME
  local name=$1 root dir
  SSHD_CONFIG_CHANGED=""
  root=$(host_root "$name")
  dir=$(host_dir "$name")
  mkdir -p "$dir" "$root/home" "$root/root" "$root/nix"
  chmod 755 "$dir" "$root"
  if [ ! -e "$root/etc/.testworld-copy" ]; then
    log "$name: copying /etc"
    rm -rf "${root:?}/etc"
    cp -a /etc "$root/etc"
    rm -f "$root"/etc/ssh/ssh_host_*
    rm -f "$root/etc/sudoers.d/deploy"
    if ! host_has_nix "$name"; then rm -rf "$root/etc/nix"; fi
    if [ "$name" = fresh ]; then
      # A host that never had Nix: no build users or Nix groups either.
      sed -i -E '/^(nixbld[0-9]*|nix-users):/d' "$root"/etc/passwd "$root"/etc/group "$root"/etc/shadow "$root"/etc/gshadow
      rm -f "$root"/etc/systemd/system/*/nix-daemon.* "$root"/etc/profile.d/nix*.sh
      rm -f "$root"/etc/cachix-standin/log-path
    fi
    touch "$root/etc/.testworld-copy"
  fi
  # Packages installed after the copy was made.
  [ -e "$root/etc/sudoers" ] || cp -a /etc/sudoers /etc/sudoers.d "$root/etc/" 2>/dev/null || true
  if [ ! -s "$root/etc/ssh/ssh_host_ed25519_key" ]; then
    rm -f "$root/etc/ssh/ssh_host_ed25519_key" "$root/etc/ssh/ssh_host_ed25519_key.pub"
    ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$root/etc/ssh/ssh_host_ed25519_key"
  fi
  mkdir -p "$root/etc/testworld" "$root/etc/sudoers.d"
  if write_if_changed "$root/etc/ssh/sshd_config" "$(sshd_config "$name")"; then SSHD_CONFIG_CHANGED=1; fi
  if write_if_changed "$root/etc/testworld/record-command" "$(recorder_script "$name")" 755; then SSHD_CONFIG_CHANGED=1; fi
  write_if_changed "$root/etc/sudoers.d/deploy" "deploy ALL=(ALL) NOPASSWD: ALL" 440 || true
  touch "$dir/commands.log" "$dir/sshd.log" "$dir/cachix-calls.log" "$dir/installer-calls.log"
  chmod 666 "$dir/commands.log" "$dir/cachix-calls.log" "$dir/installer-calls.log"
  write_if_changed "$root/etc/testworld/installer-log-path" "$dir/installer-calls.log" || true
  if [ "$name" = fresh ]; then
    mkdir -p "$root/usr-local-bin"
    write_if_changed "$root/etc/testworld/restart-nix-daemon" "$(fresh_daemon_restart_script)" 755 || true
  else
    mkdir -p "$root/etc/cachix-standin"
    write_if_changed "$root/etc/cachix-standin/log-path" "$dir/cachix-calls.log" || true
    write_if_changed "$root/etc/cachix-standin/caches" "$(cachix_standin_caches)" || true
  fi
  mkdir -p "$root/root/.ssh"
  chmod 700 "$root/root" "$root/root/.ssh"
  write_if_changed "$root/root/.ssh/authorized_keys" "$(cat "$WORLD/keys/authorized_keys")" 600 || true
  if host_has_nix "$name"; then
    [ -d "$root/nix/var/nix" ] || cp -a /nix/. "$root/nix/"
    mkdir -p "$root/nix/var/nix/daemon-socket"
    chgrp nix-users "$root/nix/var/nix/daemon-socket" 2>/dev/null || true
    chmod 770 "$root/nix/var/nix/daemon-socket"
    mkdir -p "$root/etc/nix"
    if write_if_changed "$root/etc/nix/nix.conf" "$(nix_conf)"; then
      NIX_CONF_CHANGED="$NIX_CONF_CHANGED $name"
    fi
    # Nix's default netrc-file: uploads by `nix copy` to the private cache.
    write_if_changed "$root/etc/nix/netrc" "machine 127.0.0.1 login test password $CACHIX_TEST_TOKEN" 600 || true
  fi
}

# A copy of /usr/bin without nix* (hard links when possible), for bare/fresh.
make_bare_usr_bin() { # NAME
  local root d
  root=$(host_root "$1")
  d="$root/usr-bin"
  rm -rf "$d.new"
  cp -al /usr/bin "$d.new" 2>/dev/null || { rm -rf "$d.new"; cp -a /usr/bin "$d.new"; }
  rm -f "$d.new"/nix "$d.new"/nix-*
  rm -rf "$d"
  mv "$d.new" "$d"
}

sshd_healthy() { # NAME
  local name=$1 pid
  pid=$(read_pid "$(host_dir "$name")/sshd.pid")
  pid_alive "$pid" &&
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = sshd ] &&
    [ "$(readlink "/proc/$pid/ns/mnt")" != "$(readlink /proc/self/ns/mnt)" ] &&
    ssh_port_ok "${HOST_ADDR[$name]}" "$(host_port "$name")"
}

daemon_healthy() { # NAME
  local dir
  dir=$(host_dir "$1")
  pid_alive "$(read_pid "$dir/nix-supervisor.pid")" &&
    pid_alive "$(read_pid "$dir/nix-daemon.pid")" &&
    unix_socket_ok "$(host_root "$1")/nix/var/nix/daemon-socket/socket"
}

# Kills every process in the host's mount namespace, then its sshd.
stop_host() { # NAME
  local name=$1 dir pid ns p
  dir=$(host_dir "$name")
  kill_pidfile "$dir/nix-supervisor.pid"
  kill_pidfile "$dir/nix-daemon.pid"
  pid=$(read_pid "$dir/sshd.pid")
  if pid_alive "$pid"; then
    ns=$(readlink "/proc/$pid/ns/mnt" 2>/dev/null || true)
    if [ -n "$ns" ] && [ "$ns" != "$(readlink /proc/self/ns/mnt)" ]; then
      for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = "$pid" ] && continue
        [ "$(readlink "/proc/$p/ns/mnt" 2>/dev/null)" = "$ns" ] && kill "$p" 2>/dev/null
      done
    fi
  fi
  kill_pidfile "$dir/sshd.pid"
  kill_listeners "${HOST_ADDR[$name]}" "$(host_port "$name")"
}

start_sshd() { # NAME
  local name=$1 dir i
  dir=$(host_dir "$name")
  rm -f "$dir/sshd.pid"
  mkdir -p /run/sshd
  setsid env -i PATH="$CLEAN_PATH" HOME=/root unshare --mount --propagation private -- bash "$SELF" __ns-sshd "$name" \
    </dev/null >>"$dir/sshd.log" 2>&1 8>&- &
  for i in $(seq 1 100); do
    if [ -s "$dir/sshd.pid" ] && ssh_port_ok "${HOST_ADDR[$name]}" "$(host_port "$name")"; then
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$dir/sshd.log" >&2
  die "$name: sshd did not come up on ${HOST_ADDR[$name]}:$(host_port "$name")"
}

start_daemon() { # NAME
  local name=$1 dir sshd i
  dir=$(host_dir "$name")
  kill_pidfile "$dir/nix-supervisor.pid"
  kill_pidfile "$dir/nix-daemon.pid"
  sshd=$(read_pid "$dir/sshd.pid")
  setsid env -i PATH="$CLEAN_PATH" HOME=/root nsenter -t "$sshd" -m -- bash "$SELF" __nix-supervisor "$name" \
    </dev/null >>"$dir/nix-daemon.log" 2>&1 8>&- &
  for i in $(seq 1 100); do
    daemon_healthy "$name" && return 0
    sleep 0.1
  done
  tail -n 20 "$dir/nix-daemon.log" >&2
  die "$name: nix-daemon did not come up"
}

# Accounts that need the host's own /etc: done inside its namespace.
setup_users() { # NAME
  local name=$1 groups=""
  host_has_nix "$name" && groups=nix-users
  bash "$TESTWORLD_DIR/host-exec.sh" "$name" bash -euc '
    keys=$1 groups=$2
    if [ -n "$groups" ]; then
      # Debian creates nix-users only with nix-setup-systemd, which a
      # machine without systemd lacks: the daemon socket needs the group.
      getent group nix-users >/dev/null || groupadd -r nix-users
      chgrp nix-users /nix/var/nix/daemon-socket
    fi
    id deploy >/dev/null 2>&1 || useradd -m -p "*" -s /bin/bash deploy
    [ -z "$groups" ] || usermod -aG "$groups" deploy
    install -d -m 700 -o deploy -g deploy ~deploy/.ssh
    if ! cmp -s "$keys" ~deploy/.ssh/authorized_keys; then
      install -m 600 -o deploy -g deploy "$keys" ~deploy/.ssh/authorized_keys
    fi
  ' _ "$WORLD/keys/authorized_keys" "$groups"
}

tw_ssh() { # USER NAME CMD
  # shellcheck disable=SC2029 # the command is meant to be expanded here
  ssh "${SSH_OPTS[@]}" -p "$(host_port "$2")" "$1@${HOST_ADDR[$2]}" "$3"
}

verify_host() { # NAME
  local name=$1 out drv
  if host_has_nix "$name"; then
    out=$(tw_ssh root "$name" 'nix --version && nix-build --version' 2>&1) || die "$name: nix not usable as root: $out"
    # shellcheck disable=SC2016 # $out is Nix's
    drv='derivation { name = "testworld-check"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo hi > $out" ]; }'
    out=$(tw_ssh deploy "$name" "nix-build --no-out-link -E '$drv' 2>/dev/null && nix store ping 2>&1") ||
      die "$name: non-root build through the daemon failed: $out"
    case "$out" in /nix/store/*-testworld-check*) ;; *) die "$name: unexpected build output: $out" ;; esac
  else
    # shellcheck disable=SC2016 # runs remotely
    tw_ssh root "$name" '! command -v nix && ! command -v nix-build && ! command -v nix-store && ! command -v nix-daemon && [ -z "$(ls -A /nix)" ]' >/dev/null ||
      die "$name: Nix is visible on the bare host"
  fi
  tw_ssh deploy "$name" 'sudo -n true' || die "$name: deploy cannot sudo"
  local rc=0
  out=$(printf 'in\n' | tw_ssh deploy "$name" 'cat; echo err >&2; exit 7' 2>/dev/null) || rc=$?
  [ "$rc" = 7 ] || die "$name: exit code not preserved (got $rc)"
  [ "$out" = in ] || die "$name: recorder does not preserve stdin/stdout"
  grep -qF 'cat; echo err >&2; exit 7' "$(host_dir "$name")/commands.log" || die "$name: command not recorded"
  log "$name: verified"
}

verify_world() {
  local u="tw-isolation-$$" path
  tw_ssh root h1 "useradd -M $u" || die "h1: useradd failed"
  if tw_ssh root h2 "id $u" >/dev/null 2>&1; then die "user created on h1 is visible on h2"; fi
  tw_ssh root h1 "userdel $u"
  path=$(tw_ssh root h1 "nix-build --no-out-link -E 'derivation { name = \"testworld-cache-check\"; system = builtins.currentSystem; builder = \"/bin/sh\"; args = [ \"-c\" \"echo cached > \$out\" ]; }' 2>/dev/null") ||
    die "h1: build for cache check failed"
  tw_ssh root h1 "nix copy --to $CACHE_URL $path 2>&1" >/dev/null || die "h1: nix copy to the cache failed"
  local hash=${path#/nix/store/}
  hash=${hash%%-*}
  [ -s "$WORLD/cache/$hash.narinfo" ] || die "cache: $hash.narinfo missing after nix copy"
  log "world: host isolation and nix copy to the cache verified"
}

########################################################################
# Cachix stand-ins (API server, CLI)

CACHIX_CACHES=(public-cache private-cache)

# The private cache refuses requests without a valid token and takes one.
verify_private_cache() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$PRIVATE_CACHE_URL/nix-cache-info")
  [ "$code" = 401 ] || die "private cache: $code without credentials (expected 401)"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -H "Authorization: Bearer $CACHIX_TEST_TOKEN" "$PRIVATE_CACHE_URL/nix-cache-info")
  [ "$code" = 200 ] || die "private cache: $code with the bearer token (expected 200)"
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 -u "any:$CACHIX_TEST_TOKEN" "$PRIVATE_CACHE_URL/nix-cache-info")
  [ "$code" = 200 ] || die "private cache: $code with basic auth (expected 200)"
}

ensure_cachix_files() {
  local d="$WORLD/cachix-api" name
  mkdir -p "$d/caches" "$d/keys"
  chmod 755 "$d" "$d/caches"
  chmod 700 "$d/keys"
  for name in "${CACHIX_CACHES[@]}"; do
    if [ ! -s "$d/keys/$name.sec" ] || [ ! -s "$d/keys/$name.pub" ]; then
      rm -f "$d/keys/$name".*
      nix-store --generate-binary-cache-key "$name-1" "$d/keys/$name.sec.tmp" "$d/keys/$name.pub.tmp"
      mv -f "$d/keys/$name.sec.tmp" "$d/keys/$name.sec"
      mv -f "$d/keys/$name.pub.tmp" "$d/keys/$name.pub"
      chmod 600 "$d/keys/$name.sec"
    fi
    local public=false uri=$PRIVATE_CACHE_URL dir=private-cache
    if [ "$name" = public-cache ]; then public=true uri=$CACHE_URL dir=cache; fi
    write_if_changed "$d/caches/$name.json" "$(python3 -c '
import json, sys
print(json.dumps({"name": sys.argv[1], "uri": sys.argv[2], "isPublic": sys.argv[3] == "true",
                  "publicSigningKeys": [open(sys.argv[4]).read().strip()],
                  "githubUsername": "", "permission": "Read", "_standinDir": sys.argv[5]}, indent=2))
' "$name" "$uri" "$public" "$d/keys/$name.pub" "$dir")" || true
  done
  touch "$d/tokens" "$d/requests.log"
  grep -qxF "$CACHIX_TEST_TOKEN" "$d/tokens" || printf '%s\n' "$CACHIX_TEST_TOKEN" >>"$d/tokens"
  write_if_changed "$d/cachix_api.py" "$(cat "$STANDINS_DIR/cachix_api.py")" 755 || true
}

ensure_cachix_api() {
  local d="$WORLD/cachix-api" want i
  want=$(sha256sum "$d/cachix_api.py" | cut -d' ' -f1)
  if curl -fsS --max-time 3 "http://127.0.0.1:${CACHIX_API_PORT}/_standin/health" 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(not (d["world"] == sys.argv[1] and d["script_sha256"] == sys.argv[2]))' "$WORLD" "$want" 2>/dev/null; then
    log "cachix API: reusing (pid $(read_pid "$d/server.pid"))"
    return 0
  fi
  kill_pidfile "$d/server.pid"
  kill_listeners 127.0.0.1 "$CACHIX_API_PORT"
  setsid env -i PATH="$CLEAN_PATH" python3 "$d/cachix_api.py" --world "$WORLD" --listen 127.0.0.1 \
    --port "$CACHIX_API_PORT" --pid-file "$d/server.pid" </dev/null >>"$d/server.log" 2>&1 8>&- &
  for i in $(seq 1 50); do
    cachix_api_ok && break
    [ "$i" = 50 ] && { tail -n 20 "$d/server.log" >&2; die "cachix API stand-in did not come up on $CACHIX_API_URL"; }
    sleep 0.1
  done
  log "cachix API: started on $CACHIX_API_URL (pid $(read_pid "$d/server.pid"))"
}

# The cachix CLI stand-in as /usr/local/bin/cachix (shared by the machine and
# the namespace hosts h1-h3/bare; fresh has its own empty /usr/local/bin).
install_cachix_cli() {
  if ! cmp -s "$STANDINS_DIR/cachix" /usr/local/bin/cachix; then
    install -m 755 "$STANDINS_DIR/cachix" /usr/local/bin/cachix.tmp
    mv -f /usr/local/bin/cachix.tmp /usr/local/bin/cachix
    log "cachix CLI stand-in installed as /usr/local/bin/cachix"
  fi
}

########################################################################
# Nix installer stand-ins (served from www/installers/)

INSTALLER_TARBALL=nix-standin-x86_64-linux.tar.gz

ensure_installers() {
  local w="$WORLD/www/installers" ver tmp f
  mkdir -p "$w"
  ver=$(dpkg-query -W -f='${Version}' nix-bin)
  if [ "$(cat "$w/.tarball-stamp" 2>/dev/null)" != "$ver" ] || [ ! -s "$w/$INSTALLER_TARBALL" ]; then
    tmp=$(mktemp -d)
    mkdir -p "$tmp/nix-standin/bin" "$tmp/nix-standin/lib/nix" "$tmp/nix-standin/libexec/nix"
    cp -a /usr/bin/nix /usr/bin/nix-* "$tmp/nix-standin/bin/"
    cp -a /usr/lib/nix/*.so "$tmp/nix-standin/lib/nix/"
    cp -a /usr/libexec/nix/. "$tmp/nix-standin/libexec/nix/"
    tar -czf "$w/$INSTALLER_TARBALL.tmp" -C "$tmp" --owner=0 --group=0 nix-standin
    rm -rf "$tmp"
    mv -f "$w/$INSTALLER_TARBALL.tmp" "$w/$INSTALLER_TARBALL"
    printf '%s\n' "$ver" >"$w/.tarball-stamp"
    log "installers: built $INSTALLER_TARBALL from nix-bin $ver"
  fi
  for f in official determinate; do
    write_if_changed "$w/$f.sh" "$(sed -e "s|^FLAVOUR=@FLAVOUR@\$|FLAVOUR=$f|" \
      -e "s|^TARBALL_URL=@TARBALL_URL@\$|TARBALL_URL=$CACHE_URL/www/installers/$INSTALLER_TARBALL|" \
      "$STANDINS_DIR/nix-installer.sh")" 644 || true
  done
}

########################################################################
# "fresh": rebuilt from scratch when its config changes, else restored from
# its pristine snapshot whenever up.sh (re)starts it.

fresh_stamp() {
  { sshd_config fresh; recorder_script fresh; fresh_daemon_restart_script; cat "$WORLD/keys/authorized_keys"; echo fresh-v1; } | sha256sum | cut -d' ' -f1
}

fresh_snapshot() {
  local root p d
  root=$(host_root fresh)
  p=$(fresh_pristine)
  mkdir -p "$p"
  for d in etc root home; do
    mkdir -p "$p/$d"
    rsync -aHAX --numeric-ids --delete "$root/$d/" "$p/$d/"
  done
  fresh_stamp >"$p/.stamp"
  log "fresh: pristine snapshot taken"
}

########################################################################
# The systemd host

SD_STARTED=""
ensure_sd_started() {
  sd_debootstrap
  sd_prefetch_debs
  sd_configure "$(sd_pristine)"
  mkdir -p "$(sd_hostdir)"
  chmod 755 "$(sd_hostdir)"
  local f
  for f in commands.log sshd.log cachix-calls.log installer-calls.log console.log; do
    touch "$(sd_hostdir)/$f"
  done
  chmod 666 "$(sd_hostdir)"/{commands,cachix-calls,installer-calls}.log
  if sd_healthy; then
    sd_configure "$(sd_rootfs)"
    if [ -n "$SD_SSHD_CHANGED" ]; then
      log "sd: sshd config changed, restarting ssh.service"
      bash "$TESTWORLD_DIR/sd-exec.sh" sh -c 'systemctl daemon-reload && systemctl restart ssh.service'
    fi
    log "sd: reusing (leader pid $(sd_leader))"
    return 0
  fi
  sd_stop
  sd_restore_rootfs
  sd_start
  SD_STARTED=1
}

verify_sd() {
  local out
  # shellcheck disable=SC2016 # runs remotely
  out=$(ssh "${SSH_OPTS[@]}" "root@$SD_ADDR" 'systemctl is-system-running; id -u; command -v nix || echo no-nix; command -v cachix' 2>&1) ||
    true
  case "$out" in
    running$'\n'0$'\n'no-nix$'\n'/usr/local/bin/cachix | degraded$'\n'0$'\n'no-nix$'\n'/usr/local/bin/cachix) ;;
    *) die "sd: unexpected state over SSH: $out" ;;
  esac
  grep -qF 'systemctl is-system-running' "$(sd_hostdir)/commands.log" || die "sd: command not recorded"
  log "sd: verified ($(head -n1 <<<"$out"))"
}

########################################################################
# world.json

write_world_json() {
  local args=() name
  if [ -z "$BENCH_ONLY" ]; then
    for name in "${HOST_NAMES[@]}"; do
      args+=("$name" "${HOST_ADDR[$name]}" "$(host_port "$name")" "$(awk '{print $1" "$2}' "$(host_root "$name")/etc/ssh/ssh_host_ed25519_key.pub")")
    done
    args+=("$SD_NAME" "$SD_ADDR" 22 "$(awk '{print $1" "$2}' "$(sd_pristine)/etc/ssh/ssh_host_ed25519_key.pub")")
  fi
  for name in "${BENCH_HOST_NAMES[@]}"; do
    args+=("bench:$name" "${HOST_ADDR[$name]}" 22 "$(awk '{print $1" "$2}' "$(host_root "$name")/etc/ssh/ssh_host_ed25519_key.pub")")
  done
  python3 - "$WORLD" "$KEY_PASSPHRASE" "$CACHE_URL" "$CACHIX_API_URL" "$CACHIX_TEST_TOKEN" \
    "$(sd_rootfs)" "$(sd_pristine)" "$INSTALLER_TARBALL" "$BENCH_ONLY" "$PRIVATE_CACHE_URL" \
    "$SECOND_CACHE_URL" "$UPSTREAM_CACHE_URL" "${args[@]}" <<'EOF'
import json, os, sys
world, passphrase, cache_url, cachix_url, cachix_token, sd_root, sd_pristine, tarball, bench_only, private_url, second_url, upstream_url = sys.argv[1:13]
rest = sys.argv[13:]
hosts = {}
bench_hosts = {}
for i in range(0, len(rest), 4):
    name, addr, port, key = rest[i:i + 4]
    bench = name.startswith("bench:")
    name = name.removeprefix("bench:")
    d = f"{world}/hosts/{name}"
    nix = name not in ("bare", "fresh", "sd")
    h = {
        "address": addr, "port": int(port), "host_key": key, "nix": nix,
        "systemd": name == "sd",
        "sshd_pid_file": f"{d}/sshd.pid", "sshd_log": f"{d}/sshd.log",
        "commands_log": f"{d}/commands.log",
        "cachix_log": f"{d}/cachix-calls.log",
        "installer_log": f"{d}/installer-calls.log",
        "nix_daemon_pid_file": f"{d}/nix-daemon.pid" if nix else None,
        "root": f"{d}/root",
    }
    if name == "fresh":
        # No systemd and no daemon from the installers: the host's own
        # supervisor (up.sh fresh_daemon_restart_script) starts or restarts it.
        h["nix_daemon_pid_file"] = f"{d}/root/nix/var/nix/nix-daemon.pid"
        h["daemon_restart_command"] = "/etc/testworld/restart-nix-daemon"
        h["pristine"] = f"{d}/pristine"
    if name == "sd":
        h.update({"sshd_pid_file": None, "root": sd_root, "pristine_root": sd_pristine,
                  # apt lists and .debs fetched by make world at this file's mtime
                  "debs_stamp": "/var/lib/testworld-debs.stamp",
                  "console_log": f"{d}/console.log", "nspawn_pid_file": f"{d}/nspawn.pid",
                  "daemon_restart_command": "systemctl restart nix-daemon"})
    (bench_hosts if bench else hosts)[name] = h
caches = {}
for name in ("public-cache", "private-cache"):
    with open(f"{world}/cachix-api/caches/{name}.json") as f:
        c = json.load(f)
    caches[name] = {"public_key": c["publicSigningKeys"][0], "is_public": c["isPublic"],
                    "uri": c["uri"], "signing_key_file": f"{world}/cachix-api/keys/{name}.sec"}
www = f"{cache_url}/www"
doc = {
    "world_dir": world,
    "terraform": {v: f"{world}/bin/terraform-{v}" for v in ("1.15.5", "1.6.6")},
    "keys": {
        "ed25519": f"{world}/keys/client_ed25519",
        "rsa": f"{world}/keys/client_rsa",
        "ed25519_encrypted": f"{world}/keys/client_ed25519_enc",
        "passphrase": passphrase,
    },
    "hosts": hosts,
    "cache": {
        "url": cache_url, "dir": f"{world}/cache",
        "access_log": f"{world}/nginx/access.log",
        "www_dir": f"{world}/www", "www_url": www,
        "installers": {"official": f"{www}/installers/official.sh",
                       "determinate": f"{www}/installers/determinate.sh"},
        "installer_tarball": f"{www}/installers/{tarball}",
        # Needs a token from cachix_api.tokens_file (Bearer or basic auth).
        "private": {"url": private_url, "dir": f"{world}/private-cache",
                    "access_log": f"{world}/nginx/private-access.log"},
        # Public like "url": another destination, and an "upstream" cache.
        "second": {"url": second_url, "dir": f"{world}/second-cache",
                   "access_log": f"{world}/nginx/second-cache-access.log"},
        "upstream": {"url": upstream_url, "dir": f"{world}/upstream-cache",
                     "access_log": f"{world}/nginx/upstream-cache-access.log"},
    },
    "cachix_api": {
        "url": cachix_url,
        "requests_log": f"{world}/cachix-api/requests.log",
        "tokens_file": f"{world}/cachix-api/tokens",
        "token": cachix_token,
        "caches": caches,
    },
}
if bench_only:
    # Only the bench hosts were set up: keep the rest of the world as written.
    with open(f"{world}/world.json") as f:
        doc = json.load(f)
    doc.pop("bench_hosts", None)
if bench_hosts:
    # Only with NIXBUILD_BENCH_HOSTS (benchmark-only hosts, like h1..h3).
    doc["bench_hosts"] = bench_hosts
tmp = f"{world}/world.json.tmp"
with open(tmp, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")
os.replace(tmp, f"{world}/world.json")
EOF
}

########################################################################
# Main

if [ -z "$BENCH_ONLY" ]; then
  ensure_keys
  ensure_cache
  { [ -n "$STANDINS_DIR" ] && [ -f "$STANDINS_DIR/cachix_api.py" ]; } || die "tests/standins not found next to scripts/testworld"
  ensure_cachix_files
  ensure_cachix_api
  verify_private_cache
  install_cachix_cli
  ensure_installers
  # Boots in the background while the other hosts are checked.
  ensure_sd_started
  SETUP_HOSTS=("${HOST_NAMES[@]}" "${BENCH_HOST_NAMES[@]}")
  known=""
else
  SETUP_HOSTS=("${BENCH_HOST_NAMES[@]}")
  # Keep every known_hosts line but those of bench hosts (rewritten below).
  skip=""
  for ((i = 1; i <= BENCH_HOST_MAX; i++)); do skip+=" ${HOST_ADDR[b$i]}"; done
  known=$(awk -v skip="$skip" 'BEGIN { n = split(skip, a, " "); for (i = 1; i <= n; i++) s[a[i]] = 1 } !($1 in s)' "$WORLD/known_hosts")$'\n'
fi

NIX_CONF_CHANGED=""
STARTED=()
FRESH_SNAPSHOT=""
for name in "${SETUP_HOSTS[@]}"; do
  if [ "$name" = fresh ] && [ "$(cat "$(fresh_pristine)/.stamp" 2>/dev/null)" != "$(fresh_stamp)" ]; then
    log "fresh: building from scratch (new or changed config)"
    stop_host fresh
    rm -rf "$(host_root fresh)" "$(fresh_pristine)"
    FRESH_SNAPSHOT=1
  fi
  prepare_host "$name"
  restart=$SSHD_CONFIG_CHANGED
  sshd_healthy "$name" || restart=1
  known+="$(known_hosts_name "$name") $(awk '{print $1" "$2}' "$(host_root "$name")/etc/ssh/ssh_host_ed25519_key.pub")"$'\n'
  if [ -n "$restart" ]; then
    log "$name: starting sshd on ${HOST_ADDR[$name]}:$(host_port "$name")"
    stop_host "$name"
    host_has_nix "$name" || make_bare_usr_bin "$name"
    if [ "$name" = fresh ] && [ -z "$FRESH_SNAPSHOT" ]; then
      fresh_restore
      prepare_host fresh
    fi
    start_sshd "$name"
    STARTED+=("$name")
  else
    log "$name: reusing sshd (pid $(read_pid "$(host_dir "$name")/sshd.pid"))"
  fi
  if host_has_nix "$name"; then
    if [ -n "$restart" ] || ! daemon_healthy "$name"; then
      start_daemon "$name"
    elif [[ " $NIX_CONF_CHANGED " == *" $name "* ]]; then
      log "$name: nix.conf reset, restarting nix-daemon"
      kill_pidfile "$(host_dir "$name")/nix-daemon.pid"
      for _ in $(seq 1 50); do daemon_healthy "$name" && break; sleep 0.1; done
    fi
  fi
  setup_users "$name"
done
[ -n "$BENCH_ONLY" ] || known+="$SD_ADDR $(awk '{print $1" "$2}' "$(sd_pristine)/etc/ssh/ssh_host_ed25519_key.pub")"$'\n'
printf '%s' "$known" >"$WORLD/known_hosts.tmp"
mv -f "$WORLD/known_hosts.tmp" "$WORLD/known_hosts"

if [ "${NIXBUILD_VERIFY:-}" = 1 ]; then
  STARTED=("${SETUP_HOSTS[@]}")
fi
# The world-wide check runs on h1: not when only bench hosts were (re)started.
world_check=$CACHE_STARTED
for name in "${STARTED[@]}"; do
  verify_host "$name"
  is_bench_host "$name" || world_check=1
done
if [ -n "$world_check" ]; then
  verify_world
fi
[ -z "$FRESH_SNAPSHOT" ] || fresh_snapshot

if [ -n "$SD_STARTED" ]; then
  sd_wait 120
fi
if [ -n "$SD_STARTED" ] || { [ "${NIXBUILD_VERIFY:-}" = 1 ] && [ -z "$BENCH_ONLY" ]; }; then
  verify_sd
fi

write_world_json
elapsed_ms=$((($(date +%s%N) - START_NS) / 1000000))
log "world up in $((elapsed_ms / 1000)).$(printf '%03d' $((elapsed_ms % 1000)))s: $WORLD/world.json"
