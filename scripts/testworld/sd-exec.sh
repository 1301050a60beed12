#!/usr/bin/env bash
# Runs a command as root inside the systemd test host "sd" (all of its
# namespaces, entered through its PID 1), without going through SSH:
#   sd-exec.sh systemctl is-active nix-daemon
# With no command, starts an interactive bash there. Needs a running world (up.sh).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source-path=SCRIPTDIR source=sd.sh
. "$TESTWORLD_DIR/sd.sh"

leader=$(sd_leader) || die "host sd is not running (no live systemd-nspawn in $(sd_hostdir)/nspawn.pid)"
[ $# -gt 0 ] || set -- bash
exec nsenter -t "$leader" -a -- env -i PATH="$CLEAN_PATH" HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 "$@"
