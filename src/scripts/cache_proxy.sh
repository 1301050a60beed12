#!/bin/sh
# The nginx binary-cache proxy of nixbuild_cache_proxy, as a systemd service of
# its own (it never touches the distribution's nginx.service or its sites).
# Usage: cache_proxy.sh MODE CONF_DIR UNIT CACHE_DIR
#   apply  install nginx when missing (the distribution's package, its own
#          service kept stopped and disabled), write the files named on stdin,
#          check the config with `nginx -t`, (re)start the service; prints
#          changed=yes|no
#   check  read-only key=value report: init system, nginx, file hashes, service
#   clean  stop and remove the service, its files and the cache directory
# stdin of apply: one line per file, `NAME BASE64`; NAME is nginx.conf, tls.crt
# or tls.key (into CONF_DIR; tls.key mode 0600) or `unit` (the systemd unit).
# TLS files not on stdin are removed.
set -u
mode=$1
conf_dir=$2
unit=$3
cache_dir=$4
unit_path=/etc/systemd/system/$unit
conf=$conf_dir/nginx.conf

sha() { sha256sum "$1" 2>/dev/null | cut -d' ' -f1; }
nginx_bin() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }; }
has_systemd() { [ -d /run/systemd/system ]; }

case "$mode" in
  check)
    if has_systemd; then echo "init=systemd"; else echo "init=other"; fi
    if [ -n "$(nginx_bin)" ]; then echo "nginx=yes"; else echo "nginx=no"; fi
    echo "config_sha256=$(sha "$conf")"
    echo "unit_sha256=$(sha "$unit_path")"
    echo "tls_crt_sha256=$(sha "$conf_dir/tls.crt")"
    echo "tls_key_sha256=$(sha "$conf_dir/tls.key")"
    if [ -f "$unit_path" ]; then
      echo "active=$(systemctl is-active "$unit" 2>/dev/null || true)"
      echo "enabled=$(systemctl is-enabled "$unit" 2>/dev/null || true)"
    else
      echo "active=absent"
      echo "enabled=absent"
    fi
    exit 0
    ;;
  clean)
    if [ -f "$unit_path" ]; then
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
      rm -f -- "$unit_path"
      systemctl daemon-reload
    fi
    rm -rf -- "$conf_dir" "$cache_dir"
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

if ! has_systemd; then
  echo "this host does not run systemd: nixbuild_cache_proxy runs nginx as a systemd service" >&2
  exit 4
fi

if [ -z "$(nginx_bin)" ]; then
  command -v apt-get >/dev/null 2>&1 || {
    echo "nginx is not installed and this host has no apt-get: install nginx first" >&2
    exit 5
  }
  # The package would start its own nginx with the default site on port 80:
  # keep it from starting for the install (unless the host has its own policy).
  nb_apt_install nginx nginx.service || exit $?
  echo "installed nginx (its own nginx.service is left disabled)"
fi

mkdir -p -- "$conf_dir"
chmod 755 "$conf_dir"
changed=no
unit_changed=no
seen=" "
while read -r name data; do
  [ -n "$name" ] || continue
  case "$name" in
    nginx.conf | tls.crt) path=$conf_dir/$name file_mode=644 ;;
    tls.key) path=$conf_dir/$name file_mode=600 ;;
    unit) path=$unit_path file_mode=644 ;;
    *)
      echo "unexpected file $name" >&2
      exit 2
      ;;
  esac
  seen="$seen$name "
  tmp=$(mktemp "$(dirname -- "$path")/.nixbuild-upload.XXXXXX")
  printf '%s' "$data" | base64 -d >"$tmp" || {
    rm -f -- "$tmp"
    exit 3
  }
  chmod "$file_mode" "$tmp"
  if [ -f "$path" ] && cmp -s "$tmp" "$path" && [ "$(stat -c %a "$path")" = "$file_mode" ]; then
    rm -f -- "$tmp"
  else
    mv -f -- "$tmp" "$path"
    changed=yes
    [ "$name" != unit ] || unit_changed=yes
  fi
done
for name in tls.crt tls.key; do
  case "$seen" in
    *" $name "*) ;;
    *) if [ -e "$conf_dir/$name" ]; then
      rm -f -- "$conf_dir/$name"
      changed=yes
    fi ;;
  esac
done

# nginx makes its temp directories, but not their parent.
mkdir -p -- "$cache_dir/tmp"
chown www-data: "$cache_dir" "$cache_dir/tmp" 2>/dev/null || true
chmod 700 "$cache_dir"

# nginx -t opens the pid file's directory (systemd makes it again at start).
mkdir -p /run/nixbuild-cache-proxy
if ! out=$("$(nginx_bin)" -t -q -c "$conf" 2>&1); then
  echo "nginx -t refused the configuration: $out" >&2
  exit 6
fi
[ "$unit_changed" = no ] || systemctl daemon-reload
systemctl enable "$unit" >/dev/null 2>&1
if [ "$(systemctl is-active "$unit" 2>/dev/null)" != active ] || [ "$unit_changed" = yes ]; then
  systemctl restart "$unit"
elif [ "$changed" = yes ]; then
  systemctl reload "$unit"
fi
i=0
while [ "$(systemctl is-active "$unit" 2>/dev/null)" != active ]; do
  i=$((i + 1))
  if [ "$i" -gt 50 ]; then
    echo "$unit did not start:" >&2
    journalctl -u "$unit" -n 20 --no-pager >&2 2>/dev/null || true
    exit 7
  fi
  sleep 0.2
done
# Active is not listening: nginx retries a port another process holds for
# 2.5 s, then exits (and systemd restarts it). Wait until nginx holds every
# TCP address it listens on (with ss), or the retries are over (without).
addresses=$(sed -n 's/^[[:space:]]*listen[[:space:]][[:space:]]*\([^u;[:space:]][^;[:space:]]*\).*/\1/p' "$conf")
restarts=$(systemctl show -p NRestarts --value "$unit" 2>/dev/null || echo 0)
listening() {
  held=$(ss -ltnpH 2>/dev/null)
  for address in $addresses; do
    printf '%s\n' "$held" | grep -F " $address " | grep -q nginx || return 1
  done
}
# Without ss: still active, not restarted, once nginx's retries are over.
still_up() {
  sleep 3
  [ "$(systemctl is-active "$unit" 2>/dev/null)" = active ] &&
    [ "$(systemctl show -p NRestarts --value "$unit" 2>/dev/null || echo 0)" = "$restarts" ]
}
up=no
if command -v ss >/dev/null 2>&1; then
  i=0
  while [ "$i" -le 25 ]; do
    if listening; then
      up=yes
      break
    fi
    i=$((i + 1))
    sleep 0.2
  done
elif still_up; then
  up=yes
fi
if [ "$up" = no ]; then
  echo "$unit does not listen on $(echo "$addresses" | tr '\n' ' '):" >&2
  journalctl -u "$unit" -n 5 --no-pager >&2 2>/dev/null || true
  exit 7
fi
echo "changed=$changed"
