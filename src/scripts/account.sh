#!/bin/sh
# Who owns the account NAME, as far as nixbuild_builder knows: prints
# `created` (this provider made it), `adopted` (it existed and the configuration
# adopted it), `foreign` (it exists, but no record says either: never touch it)
# or `absent`. A record is RECORD_DIR/NAME with `origin=` and `uid=` lines; a
# record whose uid is not the account's (the account was deleted and made again
# by someone else) does not count. Read-only. Prepended to the scripts that
# need it, which call: account_owner NAME RECORD_DIR
account_owner() {
  owner_uid=$(id -u "$1" 2>/dev/null) || {
    echo absent
    return 0
  }
  owner_record="$2/$1"
  # Read with the shell itself: a check runs this on many hosts at once.
  record_uid=''
  record_origin=''
  if [ -f "$owner_record" ]; then
    while IFS='=' read -r field value; do
      case "$field" in
        uid) record_uid=$value ;;
        origin) record_origin=$value ;;
      esac
    done <"$owner_record"
  fi
  if [ "$record_uid" = "$owner_uid" ]; then
    case "$record_origin" in
      created) echo created && return 0 ;;
      adopted) echo adopted && return 0 ;;
    esac
  fi
  echo foreign
}
