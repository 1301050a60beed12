#!/bin/sh
# The builder's post-build hook and its push worker (nixbuild_builder `push`),
# installed as /etc/nixbuild/push/hook by push_hook_setup.sh.
#
# Without arguments it is Nix's `post-build-hook`: the daemon runs it as root
# after every build (also builds it runs for remote clients) with OUT_PATHS
# and DRV_PATH set, waits for it and for its stdout to close, and stops
# building when it fails. So it only enqueues the build (one file per build:
# its OUT_PATHS, or `deriver:DRV_PATH` when OUT_PATHS is empty, as Nix 2.8.0
# leaves it, NixOS/nix#6446), starts the worker detached from every
# descriptor of the daemon, and always exits 0.
#
# `hook run` is the worker: under one lock it signs every queued path (and
# its closure) with the configured key and copies it to the store with
# `nix copy --to`. A failed entry is logged and kept for the next run (every
# run retries failed entries younger than a day after the new ones; older
# ones are dropped, logged); once the store fails in a run, the rest wait. On systemd hosts the unit nixbuild-push.service runs it
# (started by nixbuild-push.path when the queue is not empty) and its output
# goes to the journal; elsewhere the hook starts it in the background and it
# appends to /var/log/nixbuild-push.log.
set -u
conf=/etc/nixbuild/push
spool=/var/lib/nixbuild/push
log_file=/var/log/nixbuild-push.log
PATH=/nix/var/nix/profiles/default/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

if [ "${1:-}" != run ]; then
  # The hook. Nothing here may fail the build or print into its log.
  {
    [ -n "${OUT_PATHS:-}${DRV_PATH:-}" ] || exit 0
    umask 077
    tmp=$(mktemp "$spool/incoming/build.XXXXXX") || exit 0
    if [ -n "${OUT_PATHS:-}" ]; then
      # OUT_PATHS is space-separated store paths: split on purpose.
      # shellcheck disable=SC2086
      printf '%s\n' $OUT_PATHS >"$tmp"
    else
      printf 'deriver:%s\n' "$DRV_PATH" >"$tmp"
    fi || { rm -f -- "$tmp"; exit 0; }
    mv -f -- "$tmp" "$spool/queue/$(date +%s).${tmp##*.}" || exit 0
    if [ ! -d /run/systemd/system ]; then
      # Detached: no descriptor of the daemon stays open, so the hook returns now.
      setsid "$0" run </dev/null >>"$log_file" 2>&1 &
    fi
  } </dev/null >/dev/null 2>&1
  exit 0
fi

log() { printf '%s nixbuild-push: %s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$*"; }

# Keep the log file (hosts without systemd) under about 1 MiB.
if [ -f "$log_file" ] && [ "$(wc -c <"$log_file")" -gt 1048576 ]; then
  mv -f -- "$log_file" "$log_file.1"
fi

uri=$(cat "$conf/store-uri" 2>/dev/null) || uri=
if [ -z "$uri" ] || [ ! -s "$conf/secret-key" ]; then
  log "not configured ($conf/store-uri or $conf/secret-key missing): queued builds kept for a later run"
  mv -f -- "$spool"/queue/* "$spool/failed/" 2>/dev/null
  exit 0
fi

nix_cmd() { nix --extra-experimental-features nix-command "$@"; }

# The outputs of a derivation. A remote client's build sends no .drv file
# (only its content): then the valid paths that name it as their deriver,
# from one listing of the store per run.
outputs_of() {
  if [ -e "$1" ]; then
    nix-store --query --outputs "$1" 2>/dev/null
    return 0
  fi
  [ -s "$spool/paths.json" ] || nix_cmd path-info --all --json >"$spool/paths.json" 2>/dev/null
  tr '{' '\n' <"$spool/paths.json" | grep -F "\"deriver\":\"$1\"" |
    sed -n 's/.*"path":"\([^"]*\)".*/\1/p'
}

# The store paths of an entry that still exist and match no exclude pattern
# (matched against the name after `<hash>-`, as grep -E).
wanted() {
  while read -r line; do
    case $line in
      deriver:*) outputs_of "${line#deriver:}" ;;
      *) printf '%s\n' "$line" ;;
    esac
  done <"$1" | while read -r path; do
    if [ -z "$path" ] || [ ! -e "$path" ]; then continue; fi
    base=${path##*/}
    name=${base#*-}
    if [ -s "$conf/exclude" ] && printf '%s\n' "$name" | grep -qE -f "$conf/exclude"; then
      continue
    fi
    printf '%s\n' "$path"
  done
}

push_entry() { # ENTRY: 0 pushed or nothing to push, 1 failed, 2 the store failed
  paths=$(wanted "$1")
  listed=$(printf '%s' "$paths" | tr '\n' ' ')
  if [ -z "$paths" ]; then
    log "$(basename -- "$1"): nothing to push (excluded or gone)"
    return 0
  fi
  # shellcheck disable=SC2086 # one store path per word
  if ! out=$(nix_cmd store sign --recursive --key-file "$conf/secret-key" $paths 2>&1); then
    log "signing failed for $listed: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    return 1
  fi
  # Nix remembers narinfos it saw: ask the store afresh, and give up on an
  # unreachable one quickly (the entry is retried on the next run).
  # shellcheck disable=SC2086
  if ! out=$(nix_cmd copy --option narinfo-cache-positive-ttl 0 \
    --option connect-timeout 10 --to "$uri" $paths 2>&1); then
    log "push to $uri failed for $listed: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    return 2
  fi
  log "pushed $listed to $uri"
  return 0
}

# Push ENTRY (removed when done, kept in failed/ otherwise). After the store
# failed once in this run, the other entries wait for the next run untried:
# a cache that is down costs one attempt per run, not one per queued build.
store_failed=no
deferred=0
attempt() {
  if [ "$store_failed" = yes ]; then
    deferred=$((deferred + 1))
    [ "$(dirname -- "$1")" = "$spool/failed" ] || mv -f -- "$1" "$spool/failed/"
    return
  fi
  status=0
  push_entry "$1" || status=$?
  if [ "$status" = 0 ]; then
    rm -f -- "$1"
    return
  fi
  [ "$status" = 2 ] && store_failed=yes
  [ "$(dirname -- "$1")" = "$spool/failed" ] || mv -f -- "$1" "$spool/failed/"
}

exec 9>"$spool/lock"
first=yes
while :; do
  # Another worker holds the lock: it drains what is queued, this entry too.
  flock -n 9 || exit 0
  rm -f -- "$spool/paths.json"
  # New builds first, then (once per run) what had failed before this run.
  # Entry names are `<epoch>.<random>`: one word each.
  retry=
  [ "$first" = no ] || retry=$(ls "$spool/failed")
  for entry in "$spool"/queue/*; do
    [ -f "$entry" ] && attempt "$entry"
  done
  if [ "$first" = yes ]; then
    first=no
    for name in $retry; do
      entry=$spool/failed/$name
      [ -f "$entry" ] || continue
      if [ -n "$(find "$entry" -mmin +1440 2>/dev/null)" ]; then
        log "giving up on $(basename -- "$entry") after a day of failures: $(tr '\n' ' ' <"$entry")"
        rm -f -- "$entry"
      else
        attempt "$entry"
      fi
    done
  fi
  rm -f -- "$spool/paths.json"
  if [ "$deferred" -gt 0 ]; then
    log "$deferred build(s) wait for the next run (the store failed)"
    deferred=0
  fi
  flock -u 9
  # An entry queued after the last look (its worker found the lock taken).
  [ -n "$(ls -A "$spool/queue" 2>/dev/null)" ] || exit 0
done
