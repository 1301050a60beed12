#!/bin/sh
# The `push` block of nixbuild_builder: the post-build hook, its worker's
# configuration, the spool directories and (on systemd hosts) the units that
# run the worker. Nix's post-build-hook line is in the managed nixbuild.conf,
# written by write_config.sh: apply runs before it, clean after the daemon
# has restarted without it, so the daemon never runs a hook that is missing.
# Usage: push_hook_setup.sh apply|check|clean|drain [SECONDS]
#   apply  write the files named on stdin (one line each, `NAME BASE64`):
#          hook (0755), store-uri, exclude, secret-key (0600, root only),
#          nixbuild-push.service and nixbuild-push.path (systemd hosts only:
#          enabled and started); prints changed=yes|no
#   check  read-only key=value report: init system, file hashes, path unit
#   clean  stop and remove the units, the files, the spool and the log
#   drain  (destroy) run the worker until nothing is queued or failed, for
#          at most SECONDS; prints `builds=N paths=M`: what is still waiting
#          (0 and 0: everything queued reached the store)
set -u
mode=$1
conf=/etc/nixbuild/push
spool=/var/lib/nixbuild/push
units=/etc/systemd/system
log_file=/var/log/nixbuild-push.log
service=nixbuild-push.service
path_unit=nixbuild-push.path

sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
has_systemd() { [ -d /run/systemd/system ]; }

case "$mode" in
  check)
    if has_systemd; then echo "init=systemd"; else echo "init=other"; fi
    for name in hook store-uri exclude secret-key; do
      echo "$name=$(sha "$conf/$name")"
    done
    for unit in "$service" "$path_unit"; do
      echo "$unit=$(sha "$units/$unit")"
    done
    if [ -f "$units/$path_unit" ]; then
      echo "path_active=$(systemctl is-active "$path_unit" 2>/dev/null || true)"
    else
      echo "path_active=absent"
    fi
    if [ -d "$spool/queue" ] && [ -d "$spool/incoming" ] && [ -d "$spool/failed" ]; then
      echo "spool=yes"
    else
      echo "spool=no"
    fi
    exit 0
    ;;
  clean)
    reload=no
    for unit in "$path_unit" "$service"; do
      if [ -f "$units/$unit" ]; then
        systemctl disable --now "$unit" >/dev/null 2>&1 || true
        rm -f -- "$units/$unit"
        reload=yes
      fi
    done
    if [ "$reload" = yes ]; then systemctl daemon-reload; fi
    # Tested first: this runs on every apply of a builder without the block.
    for leftover in "$conf" "$spool" "$log_file" "$log_file.1"; do
      if [ -e "$leftover" ] || [ -L "$leftover" ]; then rm -rf -- "$leftover"; fi
    done
    echo "removed"
    exit 0
    ;;
  drain)
    seconds=${2:-60}
    # What is still waiting: entries (one per build) and the paths in them
    # that would be pushed (one line per out path, or one `deriver:` line for
    # a remote client's build), less those `exclude` matches by name.
    waiting() {
      builds=0
      paths=0
      for entry in "$spool"/queue/* "$spool"/failed/*; do
        [ -f "$entry" ] || continue
        builds=$((builds + 1))
        if [ -s "$conf/exclude" ]; then
          n=$(sed 's|^.*/[^/-]*-||' "$entry" | grep -cvE -f "$conf/exclude")
        else
          n=$(grep -c . "$entry")
        fi
        paths=$((paths + n))
      done
    }
    if [ ! -d "$spool/queue" ]; then
      echo "builds=0 paths=0"
      exit 0
    fi
    deadline=$(($(date +%s) + seconds))
    waiting
    while [ "$builds" -gt 0 ]; do
      left=$((deadline - $(date +%s)))
      [ "$left" -gt 0 ] || break
      # One worker run, in the foreground, bounded by what is left (timeout
      # ends the worker's nix copy too; an entry it was copying stays queued).
      # Another worker holding the lock makes this one return at once: then
      # that one drains, and this loop waits for it.
      if has_systemd; then
        # (A worker started while another held the lock may have run into
        # the unit's start limit: clear it.)
        systemctl reset-failed "$service" >/dev/null 2>&1 || true
        timeout "$left" systemctl start "$service" >/dev/null 2>&1 || true
      else
        timeout "$left" "$conf/hook" run </dev/null >>"$log_file" 2>&1 || true
      fi
      waiting
      [ "$builds" -gt 0 ] || break
      sleep 1
    done
    echo "builds=$builds paths=$paths"
    exit 0
    ;;
  apply) ;;
  *)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac

umask 077
mkdir -p -- "$conf" "$spool/incoming" "$spool/queue" "$spool/failed"
chmod 700 "$conf" "$spool"
changed=no
seen=" "
while read -r name data; do
  [ -n "$name" ] || continue
  case $name in
    hook) dest=$conf/hook file_mode=755 ;;
    store-uri | exclude | secret-key) dest=$conf/$name file_mode=600 ;;
    "$service" | "$path_unit")
      has_systemd || continue
      dest=$units/$name file_mode=644
      ;;
    *)
      echo "unknown file $name" >&2
      exit 2
      ;;
  esac
  seen="$seen$name "
  tmp=$(mktemp "$(dirname -- "$dest")/.nixbuild-push.XXXXXX")
  # The key is decoded straight into a 0600 file (umask 077): never an argument.
  if ! printf '%s' "$data" | base64 -d >"$tmp"; then
    rm -f -- "$tmp"
    echo "cannot decode $name" >&2
    exit 3
  fi
  chmod "$file_mode" "$tmp"
  if [ -f "$dest" ] && cmp -s "$tmp" "$dest"; then
    rm -f -- "$tmp"
  else
    mv -f -- "$tmp" "$dest"
    changed=yes
  fi
done
for required in hook secret-key store-uri; do
  case $seen in
    *" $required "*) ;;
    *)
      echo "$required was not on stdin" >&2
      exit 3
      ;;
  esac
done
if has_systemd; then
  systemctl daemon-reload
  systemctl enable "$path_unit" >/dev/null 2>&1
  if [ "$changed" = yes ]; then
    systemctl restart "$path_unit"
  else
    systemctl start "$path_unit"
  fi
fi
echo "changed=$changed"
