#!/usr/bin/env bash
# Puts a test host back into its pristine state, for install tests:
#   reset-host.sh fresh   kills every process of the host but its sshd (SSH
#                         sessions, a nix-daemon started by an installer),
#                         restores its /etc, /root and /home from the snapshot
#                         taken when up.sh built it, and empties its /nix and
#                         /usr/local/bin. sshd keeps running (same host key).
#   reset-host.sh sd      stops the container, rsyncs the pristine rootfs
#                         (no Nix, no build user) over the live one, boots it
#                         again and waits for sshd and systemd.
# Needs a running world (up.sh). Run as root.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=sd.sh
. "$TESTWORLD_DIR/sd.sh"

[ $# -eq 1 ] || die "usage: $0 fresh|sd"
[ "$(id -u)" = 0 ] || die "must run as root"
start=$(date +%s%N)

# Same lock as up.sh/down.sh.
exec 8>"$WORLD/.lock"
flock 8

case "$1" in
  fresh)
    pid=$(read_pid "$(host_dir fresh)/sshd.pid")
    pid_alive "$pid" || die "host fresh is not running (run up.sh)"
    for _ in 1 2 3; do
      kill_namespace_except "$pid"
      sleep 0.2
    done
    fresh_restore
    ssh_port_ok "${HOST_ADDR[fresh]}" 22 || die "fresh: sshd does not answer after the reset"
    ;;
  sd)
    [ -e "$(sd_pristine)/.testworld-debootstrap" ] || die "sd: no pristine rootfs (run up.sh)"
    sd_stop
    sd_restore_rootfs
    sd_start
    sd_wait 120
    ;;
  *) die "unknown or non-resettable host '$1' (fresh, sd)" ;;
esac
ms=$((($(date +%s%N) - start) / 1000000))
log "$1: reset in $((ms / 1000)).$(printf '%03d' $((ms % 1000)))s"
