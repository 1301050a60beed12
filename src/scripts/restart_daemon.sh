#!/bin/sh
# Restart the Nix daemon so it reads the new configuration, then wait until
# it answers: a client that builds right after the apply must find it up,
# and a restart command may return before the new daemon listens (a
# supervisor that restarts a killed daemon a moment later).
# Usage: restart_daemon.sh CUSTOM_COMMAND DAEMON
#   With systemd and a nix-daemon unit: systemctl restart nix-daemon.
#   Otherwise CUSTOM_COMMAND (the user's daemon_restart_command) runs, if given.
#   DAEMON=true: a multi-user Nix, whose daemon must answer within 30 s.
set -eu
custom=$1
daemon=$2
PATH="$PATH:/nix/var/nix/profiles/default/bin"
export PATH
if [ -n "$custom" ]; then
  echo "running daemon_restart_command"
  sh -c "$custom"
elif [ -d /run/systemd/system ] && systemctl cat nix-daemon.service >/dev/null 2>&1; then
  systemctl restart nix-daemon.service
  echo "restarted nix-daemon.service"
else
  echo "no nix-daemon to restart (no systemd unit, no daemon_restart_command)"
  exit 0
fi
[ "$daemon" = true ] || exit 0
tries=0
until said=$(nix --extra-experimental-features nix-command store ping --store daemon 2>&1); do
  tries=$((tries + 1))
  if [ "$tries" -ge 300 ]; then
    echo "nix-daemon did not answer within 30 s after the restart: $(printf '%s\n' "$said" | tail -n 1)" >&2
    exit 1
  fi
  sleep 0.1
done
[ "$tries" -eq 0 ] || echo "nix-daemon answered after $tries retries"
