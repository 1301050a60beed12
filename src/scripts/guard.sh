#!/bin/sh
# Every remote command of the provider runs under this guard (src/ssh/exec.rs),
# so that Terraform's StopProvider (one Ctrl-C) ends it on the host too.
# The guard prints `TOKEN pid PID` on stderr (PID: its own), then runs COMMAND
# in the background with the guard's stdin and waits for it. To stop it, the
# provider sends the guard SIGUSR1 over another channel of its connection (as
# the same user: through sudo for a privileged command); SIGTERM, SIGHUP and
# SIGINT do the same. The guard then sends SIGTERM to its whole process group
# (sshd made the session a group of its own, or sudo's pty did): the command,
# the scripts it started and their `nix` processes, so the scripts' traps run
# and Nix ends its builds. What is still there GRACE seconds later gets
# SIGKILL (the guard itself ends with COMMAND's top process, which may be
# before that). The guard exits with COMMAND's exit status.
# A cut connection stops COMMAND the same way: sshd ends the session's process,
# but without a terminal nothing signals the command, which would run on (an
# apt-get holding dpkg's lock against the re-apply, a build nobody waits for).
# So the guard watches its nearest sshd ancestor (Linux /proc; elsewhere there
# is no watch) and stops COMMAND when that process is gone.
# Usage: sh -c GUARD nixbuild TOKEN GRACE COMMAND
#   TOKEN    a random word that marks the pid line (output cannot fake it)
#   GRACE    seconds between SIGTERM and SIGKILL
#   COMMAND  shell text, evaluated in a subshell
nb_guard_token=$1
nb_guard_grace=$2
nb_guard_command=$3
nb_guard_stopping=

# shellcheck disable=SC2317 # run by the traps
nb_guard_stop() {
  nb_guard_trapped=yes
  [ -z "$nb_guard_stopping" ] || return 0
  nb_guard_stopping=yes
  # The group's SIGTERM is for the command, not for the guard.
  trap '' TERM
  kill -TERM 0 2>/dev/null
  # Without the channel's descriptors: the channel closes when the command ends.
  (sleep "$nb_guard_grace" && kill -KILL 0) </dev/null >/dev/null 2>&1 &
}
trap nb_guard_stop USR1 TERM HUP INT

# Sets nb_guard_sshd to the pid of the nearest `sshd` (OpenSSH >= 9.8:
# `sshd-session`) ancestor: the process of this connection. Builtins only
# (`read`), no process per level and no subshell.
nb_guard_session() {
  nb_pid=$PPID
  nb_depth=0
  while [ "$nb_depth" -lt 8 ] && [ "${nb_pid:-1}" -gt 1 ] &&
    read -r nb_comm <"/proc/$nb_pid/comm" 2>/dev/null; do
    case $nb_comm in
      sshd | sshd-session)
        nb_guard_sshd=$nb_pid
        return 0
        ;;
    esac
    read -r nb_stat <"/proc/$nb_pid/stat" || return 1
    # Fields after `(comm) `: state, then the parent's pid.
    # shellcheck disable=SC2086 # split into fields on purpose
    set -- ${nb_stat##*) }
    nb_pid=$2
    nb_depth=$((nb_depth + 1))
  done
  return 1
}
printf '%s pid %s\n' "$nb_guard_token" "$$" >&2
# A stop that came before the command started: it does not start.
[ -z "$nb_guard_stopping" ] || exit 143
nb_guard_watch=
if nb_guard_session; then
  nb_guard_self=$$
  # Without the channel's descriptors: the watch never holds the channel open.
  (while [ -d "/proc/$nb_guard_sshd" ]; do sleep 1; done
    kill -USR1 "$nb_guard_self") </dev/null >/dev/null 2>&1 &
  nb_guard_watch=$!
fi
# A background command's stdin would be /dev/null: hand it the guard's.
exec 3<&0
(eval "$nb_guard_command") <&3 3<&- &
nb_guard_child=$!
exec 3<&-
# A trapped signal ends `wait` early (status > 128): wait again for the
# command's own status.
while :; do
  nb_guard_trapped=
  nb_guard_status=0
  wait "$nb_guard_child" || nb_guard_status=$?
  [ -n "$nb_guard_trapped" ] || break
done
[ -z "$nb_guard_watch" ] || kill "$nb_guard_watch" 2>/dev/null
exit "$nb_guard_status"
