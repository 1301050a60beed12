#!/bin/sh
# The builder's periodic garbage collection: the systemd timer nixbuild-gc.timer
# starting nixbuild-gc.service, which runs nix-collect-garbage.
# Usage: gc.sh probe|apply|check|clean SCHEDULE DELETE_OLDER_THAN
#   probe  read-only: init system, and whether systemd accepts SCHEDULE
#   apply  write both units, enable and start the timer
#   check  read-only key=value report: timer state, units as expected or not
#   clean  stop and remove both units
set -u
mode=$1
schedule=${2:-}
older_than=${3:-}
timer=nixbuild-gc.timer
service=nixbuild-gc.service
units=/etc/systemd/system
PATH="$PATH:/nix/var/nix/profiles/default/bin"
export PATH

has_systemd() { [ -d /run/systemd/system ]; }

service_unit() {
  collect=$(command -v nix-collect-garbage || echo /usr/bin/nix-collect-garbage)
  args=""
  [ -z "$older_than" ] || args=" --delete-older-than $older_than"
  cat <<UNIT
# Managed by terraform-provider-nixbuild (nixbuild_builder gc).
[Unit]
Description=Nix garbage collection (managed by terraform-provider-nixbuild)
After=nix-daemon.service

[Service]
Type=oneshot
Nice=19
IOSchedulingClass=idle
ExecStart=$collect$args
UNIT
}

timer_unit() {
  cat <<UNIT
# Managed by terraform-provider-nixbuild (nixbuild_builder gc).
[Unit]
Description=Periodic Nix garbage collection (managed by terraform-provider-nixbuild)

[Timer]
OnCalendar=$schedule
Persistent=true

[Install]
WantedBy=timers.target
UNIT
}

# "ok", or "bad: <what systemd says>".
calendar() {
  if ! command -v systemd-analyze >/dev/null 2>&1; then
    echo ok
  elif said=$(systemd-analyze calendar "$schedule" 2>&1); then
    echo ok
  else
    echo "bad: $(printf '%s' "$said" | tr '\n' ' ')"
  fi
}

case "$mode" in
  probe)
    if has_systemd; then
      echo "init=systemd"
      echo "calendar=$(calendar)"
    else
      echo "init=other"
    fi
    exit 0
    ;;
  check)
    echo "timer=$(systemctl is-active "$timer" 2>/dev/null || true)"
    if [ ! -f "$units/$timer" ] || [ ! -f "$units/$service" ]; then
      echo "units=missing"
    elif service_unit | cmp -s - "$units/$service" && timer_unit | cmp -s - "$units/$timer"; then
      echo "units=same"
    else
      echo "units=changed"
    fi
    exit 0
    ;;
  clean)
    removed=no
    for u in "$timer" "$service"; do
      if [ -f "$units/$u" ]; then
        systemctl disable --now "$u" >/dev/null 2>&1 || true
        rm -f -- "$units/$u"
        removed=yes
      fi
    done
    [ "$removed" = no ] || systemctl daemon-reload
    echo "removed=$removed"
    exit 0
    ;;
  apply) ;;
  *)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac

if ! has_systemd; then
  echo "gc.schedule needs systemd (the periodic collection is a systemd timer); this host has none" >&2
  exit 4
fi
verdict=$(calendar)
if [ "$verdict" != ok ]; then
  echo "systemd refuses the schedule '$schedule': ${verdict#bad: }" >&2
  exit 5
fi
changed=no
write() { # PATH: stdin to PATH when it differs
  tmp=$(mktemp "$units/.nixbuild-upload.XXXXXX")
  cat >"$tmp"
  chmod 644 "$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
    rm -f -- "$tmp"
  else
    mv -f -- "$tmp" "$1"
    changed=yes
  fi
}
service_unit | write "$units/$service"
timer_unit | write "$units/$timer"
systemctl daemon-reload
systemctl enable "$timer" >/dev/null 2>&1
if [ "$changed" = yes ]; then
  systemctl restart "$timer"
else
  systemctl start "$timer"
fi
echo "changed=$changed"
