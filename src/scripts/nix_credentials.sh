#!/bin/sh
# The builder's Nix credentials: the settings file with `extra-access-tokens`
# / `netrc-file` (included from the managed config) and the netrc file, both
# root-only 0600. Contents come on stdin and are never printed or put on a
# command line (printf is a shell builtin).
# Usage: nix_credentials.sh apply|check|digest|clean CONF_PATH NETRC_PATH
#   stdin (apply, check): lines `conf BASE64` and `netrc BASE64`; a file not
#   listed is not wanted.
#   apply  writes the wanted files, removes the others; prints changed=yes|no
#   check  prints conf=… and netrc=…: ok, missing, changed (content, owner
#          or mode), unexpected (on the host, not wanted) or absent
#   digest (a refresh that does not know the contents: write-only arguments)
#          prints conf=… and netrc=…: the file's SHA-256, `mode` (not a
#          root-owned 0600 regular file) or `absent`; never the content
#   clean  removes both files; prints changed=yes|no
set -eu
mode=$1
conf=$2
netrc=$3
umask 077
changed=no
conf_data=
netrc_data=
if [ "$mode" = apply ] || [ "$mode" = check ]; then
  while read -r name data; do
    case "$name" in
      conf) conf_data=$data ;;
      netrc) netrc_data=$data ;;
      "") ;;
      *)
        echo "unexpected credentials entry $name" >&2
        exit 2
        ;;
    esac
  done
fi

# root_only PATH: a regular file (not a link), root's, mode 0600.
# `ls -ln` rather than GNU stat, so BSD and busybox hosts answer the same
# (a trailing `.` or `+` is an SELinux context or an ACL).
root_only() {
  if [ ! -f "$1" ] || [ -L "$1" ]; then
    return 1
  fi
  # shellcheck disable=SC2046 # split the listing into its fields
  set -- $(ls -ln "$1")
  case "$1" in
    -rw-------*) ;;
    *) return 1 ;;
  esac
  [ "$3" = 0 ]
}

# same PATH BASE64: the file holds exactly that content, root's, mode 0600.
same() {
  root_only "$1" && printf '%s' "$2" | base64 -d | cmp -s - "$1"
}

# digest PATH: its SHA-256, `mode` or `absent` (see the usage above).
digest() {
  if [ ! -e "$1" ] && [ ! -L "$1" ]; then
    echo absent
  elif root_only "$1"; then
    sha256sum <"$1" | cut -d' ' -f1
  else
    echo mode
  fi
}

converge() {
  path=$1
  data=$2
  if [ -z "$data" ]; then
    if [ -e "$path" ] || [ -L "$path" ]; then
      rm -f -- "$path"
      changed=yes
    fi
    return 0
  fi
  if same "$path" "$data"; then
    return 0
  fi
  mkdir -p -- "$(dirname -- "$path")"
  tmp=$(mktemp "$path.XXXXXX")
  if ! printf '%s' "$data" | base64 -d >"$tmp"; then
    rm -f -- "$tmp"
    echo "cannot decode the content of $path" >&2
    exit 3
  fi
  chown 0:0 "$tmp"
  chmod 0600 "$tmp"
  mv -f -- "$tmp" "$path"
  changed=yes
}

report() {
  path=$1
  data=$2
  if [ -z "$data" ]; then
    if [ -e "$path" ] || [ -L "$path" ]; then echo unexpected; else echo absent; fi
  elif [ ! -e "$path" ] && [ ! -L "$path" ]; then
    echo missing
  elif same "$path" "$data"; then
    echo ok
  else
    echo changed
  fi
}

case "$mode" in
  apply)
    converge "$conf" "$conf_data"
    converge "$netrc" "$netrc_data"
    echo "changed=$changed"
    ;;
  check)
    echo "conf=$(report "$conf" "$conf_data")"
    echo "netrc=$(report "$netrc" "$netrc_data")"
    ;;
  digest)
    echo "conf=$(digest "$conf")"
    echo "netrc=$(digest "$netrc")"
    ;;
  clean)
    converge "$conf" ""
    converge "$netrc" ""
    echo "changed=$changed"
    ;;
  *)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac
