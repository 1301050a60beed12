#!/bin/sh
# Nix facts for the node exporter's textfile collector, written atomically to
# $1/nix.prom (run by the timer nixbuild-nix-metrics, as root).
# Usage: nix_metrics.sh TEXTFILE_DIR
set -u
dir=$1
PATH="$PATH:/nix/var/nix/profiles/default/bin"
export PATH
store=/nix/store
mkdir -p -- "$dir"
tmp=$(mktemp "$dir/.nix.prom.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT

# Daemon up: it answers on its socket. Asked first: a fresh daemon creates
# the store on first use (Debian's nix-daemon), which the size below measures.
if nix --extra-experimental-features nix-command store ping --store daemon >/dev/null 2>&1; then
  up=1
else
  up=0
fi
# Store size: du over the store (can take a while on big stores: the unit runs
# it at low CPU and I/O priority).
size=$(du -sx --block-size=1 "$store" 2>/dev/null | cut -f1)
# Free and total space of the file system holding the store.
free=$(df -P -B1 "$store" 2>/dev/null | awk 'NR==2 {print $4}')
total=$(df -P -B1 "$store" 2>/dev/null | awk 'NR==2 {print $2}')
# Builds running: each build holds one build user (nixbld*) while it runs.
# (The owner of /proc/PID is the process's user; no procps needed.)
builds=$(stat -c %U /proc/[0-9]* 2>/dev/null | sort -u | grep -c '^nixbld')

{
  echo "# HELP nix_store_size_bytes Disk usage of /nix/store."
  echo "# TYPE nix_store_size_bytes gauge"
  echo "nix_store_size_bytes ${size:-0}"
  echo "# HELP nix_store_filesystem_free_bytes Free space of the file system holding /nix/store."
  echo "# TYPE nix_store_filesystem_free_bytes gauge"
  echo "nix_store_filesystem_free_bytes ${free:-0}"
  echo "# HELP nix_store_filesystem_size_bytes Size of the file system holding /nix/store."
  echo "# TYPE nix_store_filesystem_size_bytes gauge"
  echo "nix_store_filesystem_size_bytes ${total:-0}"
  echo "# HELP nix_builds_running Builds running now (build users in use)."
  echo "# TYPE nix_builds_running gauge"
  echo "nix_builds_running $builds"
  echo "# HELP nix_daemon_up Whether nix-daemon answers on its socket."
  echo "# TYPE nix_daemon_up gauge"
  echo "nix_daemon_up $up"
  echo "# HELP nix_metrics_last_run_timestamp_seconds When these metrics were collected."
  echo "# TYPE nix_metrics_last_run_timestamp_seconds gauge"
  echo "nix_metrics_last_run_timestamp_seconds $(date +%s)"
} >"$tmp"
chmod 644 "$tmp"
mv -f -- "$tmp" "$dir/nix.prom"
trap - EXIT
