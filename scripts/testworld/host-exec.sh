#!/usr/bin/env bash
# Runs a command as root inside test host NAME's mount namespace (its own
# /etc, /home, /root, /nix), without going through SSH, e.g. to inspect or
# break a host from a test:  host-exec.sh h1 cat /etc/nix/nix.conf
# With no command, starts an interactive bash there. Needs a running world (up.sh).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ $# -ge 1 ] || die "usage: $0 NAME [CMD ARGS...]   (NAME: ${HOST_NAMES[*]})"
name=$1
shift
[ -n "${HOST_ADDR[$name]:-}" ] || die "unknown host '$name' (hosts: ${HOST_NAMES[*]})"
pid=$(read_pid "$(host_dir "$name")/sshd.pid")
pid_alive "$pid" || die "host $name is not running (no live sshd pid in $(host_dir "$name")/sshd.pid)"
[ $# -gt 0 ] || set -- bash
exec nsenter -t "$pid" -m -- "$@"
