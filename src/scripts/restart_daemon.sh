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
socket=/nix/var/nix/daemon-socket/socket
# A daemon that starts creates its socket anew: a new inode or change time
# (the inode number is often reused) says one is up. A socket systemd holds
# stays as it is; the ping decides in any case.
inode() { stat -c '%i %.9Z' "$socket" 2>/dev/null || echo none; }
answers() { said=$(nix --extra-experimental-features nix-command store ping --store daemon 2>&1); }
before=$(inode)
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
# Each ping starts nix, so ask when the socket is new, or when the schedule
# says: at once after `systemctl restart` (it returns once the daemon has
# started); after a custom command, which may return before the new daemon
# listens, a tenth of a second at most; after a failed ping, half a second
# later. Give up after about 30 s.
next_ping=0
[ -z "$custom" ] || next_ping=4
polls=0
failed=no
while :; do
  now=$(inode)
  if [ "$now" != "$before" ] || [ "$polls" -ge "$next_ping" ]; then
    before=$now
    ! answers || break
    failed=yes
    next_ping=$((polls + 20))
  fi
  polls=$((polls + 1))
  if [ "$polls" -ge 1200 ]; then
    echo "nix-daemon did not answer within 30 s after the restart: $(printf '%s\n' "$said" | tail -n 1)" >&2
    exit 1
  fi
  sleep 0.025 2>/dev/null || sleep 1
done
[ "$failed" = no ] || echo "nix-daemon answered after $polls polls of its socket"
