#!/bin/sh
# The builder's monitoring: the distribution's Prometheus node exporter as the
# service nixbuild-node-exporter (the package's own service stays disabled),
# with a textfile collector fed by nix_metrics.sh from the timer
# nixbuild-nix-metrics.
# Usage: monitoring.sh apply|check|clean LISTEN
#   apply  install the package when missing, write the units and the metrics
#          script (on stdin), start the timer and the exporter
#   check  read-only key=value report (units' state, hashes)
#   clean  stop and remove both units, the script and the textfile directory
set -u
mode=$1
listen=${2:-}
exporter=nixbuild-node-exporter.service
timer=nixbuild-nix-metrics.timer
collect=nixbuild-nix-metrics.service
units=/etc/systemd/system
script=/etc/nixbuild/nix-metrics.sh
textfiles=/var/lib/nixbuild/node-exporter

sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }

exporter_unit() {
  cat <<UNIT
# Managed by terraform-provider-nixbuild (nixbuild_builder monitoring).
[Unit]
Description=Prometheus node exporter with Nix metrics (managed by terraform-provider-nixbuild)
After=network-online.target

[Service]
ExecStart=/usr/bin/prometheus-node-exporter --web.listen-address=$listen --collector.textfile.directory=$textfiles
Restart=on-failure
DynamicUser=yes

[Install]
WantedBy=multi-user.target
UNIT
}

collect_unit() {
  cat <<UNIT
# Managed by terraform-provider-nixbuild (nixbuild_builder monitoring).
[Unit]
Description=Collect Nix metrics for the node exporter (managed by terraform-provider-nixbuild)

[Service]
Type=oneshot
Nice=19
IOSchedulingClass=idle
ExecStart=/bin/sh $script $textfiles
UNIT
}

timer_unit() {
  cat <<UNIT
# Managed by terraform-provider-nixbuild (nixbuild_builder monitoring).
[Unit]
Description=Collect Nix metrics every minute (managed by terraform-provider-nixbuild)

[Timer]
OnBootSec=30s
OnUnitInactiveSec=60s

[Install]
WantedBy=timers.target
UNIT
}

case "$mode" in
  check)
    echo "exporter=$(systemctl is-active "$exporter" 2>/dev/null || true)"
    echo "timer=$(systemctl is-active "$timer" 2>/dev/null || true)"
    echo "exporter_listen=$(sed -n 's/^ExecStart=.*--web.listen-address=\([^ ]*\).*/\1/p' "$units/$exporter" 2>/dev/null)"
    echo "script_sha256=$(sha "$script")"
    exit 0
    ;;
  clean)
    removed=no
    for u in "$timer" "$collect" "$exporter"; do
      if [ -f "$units/$u" ]; then
        systemctl disable --now "$u" >/dev/null 2>&1 || true
        rm -f -- "$units/$u"
        removed=yes
      fi
    done
    [ "$removed" = no ] || systemctl daemon-reload
    # Tested first: this runs on every apply of a builder without the block.
    for leftover in "$script" "$textfiles"; do
      if [ -e "$leftover" ] || [ -L "$leftover" ]; then rm -rf -- "$leftover"; fi
    done
    nb_remove_stale_policy_rc
    echo "removed"
    exit 0
    ;;
  apply) nb_remove_stale_policy_rc ;;
  *)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac

if [ ! -d /run/systemd/system ]; then
  echo "monitoring needs systemd (the exporter and the metrics timer are systemd units)" >&2
  exit 4
fi
if [ ! -x /usr/bin/prometheus-node-exporter ]; then
  command -v apt-get >/dev/null 2>&1 || {
    echo "prometheus-node-exporter is not installed and this host has no apt-get: install it first" >&2
    exit 5
  }
  nb_apt_install prometheus-node-exporter prometheus-node-exporter.service || exit $?
fi

mkdir -p -- "$(dirname -- "$script")" "$textfiles"
chmod 755 "$textfiles"
changed=no
write() { # PATH: stdin to PATH when it differs
  tmp=$(mktemp "$(dirname -- "$1")/.nixbuild-upload.XXXXXX")
  cat >"$tmp"
  chmod 644 "$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then
    rm -f -- "$tmp"
  else
    mv -f -- "$tmp" "$1"
    changed=yes
  fi
}
write "$script"
exporter_unit | write "$units/$exporter"
collect_unit | write "$units/$collect"
timer_unit | write "$units/$timer"
systemctl daemon-reload
systemctl start "$collect" || true
systemctl enable "$timer" "$exporter" >/dev/null 2>&1
if [ "$changed" = yes ]; then
  systemctl restart "$timer" "$exporter"
else
  systemctl start "$timer" "$exporter"
fi
i=0
while [ "$(systemctl is-active "$exporter" 2>/dev/null)" != active ]; do
  i=$((i + 1))
  if [ "$i" -gt 50 ]; then
    echo "$exporter did not start:" >&2
    journalctl -u "$exporter" -n 20 --no-pager >&2 2>/dev/null || true
    exit 7
  fi
  sleep 0.2
done
echo "changed=$changed"
