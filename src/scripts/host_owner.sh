#!/bin/sh
# The host's claim file: which nixbuild_builder resource (its owner id, kept
# in its private state) owns the builder's objects on this host. They are one
# per host (/etc/nix/nixbuild.conf, the include line, the watch-store, push,
# monitoring and gc units, the credential files), so one claim covers them.
# Usage: host_owner.sh MODE FILE OWNER_ID ADOPT_OWNER_ID BUILD_USER
#   check:   read-only: `owner=other` (see claim) or `owner=this` (no claim,
#            or OWNER_ID's or ADOPT_OWNER_ID's).
#   claim:   before an apply changes anything. No claim yet (a host
#            from an earlier release or a fresh one): write one for OWNER_ID.
#            A claim of OWNER_ID: nothing to do. A claim of ADOPT_OWNER_ID
#            (the configuration takes that resource's objects over): rewrite
#            it for OWNER_ID. Any other claim: print `owner=other` with the
#            claim's lines and change nothing (the caller stops there).
#   release: remove the claim if it is OWNER_ID's (after a clean).
# Prints `owner=this` when the host is (now) OWNER_ID's.
set -eu
mode=$1
file=$2
owner_id=$3
adopt_owner_id=$4
build_user=$5

if [ -L "$file" ] || { [ -e "$file" ] && [ ! -f "$file" ]; }; then
  echo "$file is not a regular file: refusing to use it as the host's owner claim" >&2
  exit 4
fi
claimed=$(sed -n 's/^owner=//p' "$file" 2>/dev/null | head -n 1)

case "$mode" in
  check | claim)
    if [ -n "$claimed" ] && [ "$claimed" != "$owner_id" ] &&
      { [ -z "$adopt_owner_id" ] || [ "$claimed" != "$adopt_owner_id" ]; }; then
      echo "owner=other"
      # The claim's own lines (owner, build_user, since), for the error.
      sed -n 's/^\(owner\|build_user\|since\)=/other_\1=/p' "$file"
      exit 0
    fi
    if [ "$mode" = claim ] && [ "$claimed" != "$owner_id" ]; then
      mkdir -p "${file%/*}"
      next=$(mktemp "$file.XXXXXX")
      trap 'rm -f "$next"' EXIT
      # The provider's stop (guard.sh) sends SIGTERM: exit through the EXIT trap.
      trap 'exit 143' TERM
      printf 'owner=%s\nbuild_user=%s\nsince=%s\n' "$owner_id" "$build_user" \
        "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$next"
      chmod 0644 "$next"
      if [ -z "$claimed" ]; then
        # A link fails when the claim appeared meanwhile (another apply
        # claimed the host first): that one owns it.
        if ! ln "$next" "$file" 2>/dev/null; then
          echo "owner=other"
          sed -n 's/^\(owner\|build_user\|since\)=/other_\1=/p' "$file"
          exit 0
        fi
      else
        mv -f "$next" "$file"
        echo "took_over=$claimed"
      fi
    fi
    echo "owner=this"
    ;;
  release)
    if [ "$claimed" = "$owner_id" ]; then
      rm -f "$file"
      echo "released"
    fi
    ;;
  *)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac
