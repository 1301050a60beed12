#!/bin/sh
# Who owns the account NAME, as far as nixbuild_builder knows: prints
# `created` (this provider made it), `adopted` (it existed and the configuration
# adopted it), `other` (another nixbuild_builder resource created or adopted
# it: never touch it), `foreign` (it exists, but no record says either: never
# touch it) or `absent`. A record is RECORD_DIR/NAME with `origin=`, `uid=`,
# `name=` and `owner=` lines. It counts only for the account it names: a
# record whose uid is not the account's (the account was deleted and made
# again by someone else), or whose name is another (a record copied), does
# not count. Its `owner=` is the owner id of the resource that wrote it: one
# that is neither OWNER_ID nor ADOPT_OWNER_ID makes the account `other`.
# Records written before owner ids (no `name=`/`owner=`) count for any owner.
# Read-only. Prepended to the scripts that need it, which call:
#   account_owner NAME RECORD_DIR [OWNER_ID [ADOPT_OWNER_ID]]
account_owner() {
  owner_uid=$(id -u "$1" 2>/dev/null) || {
    echo absent
    return 0
  }
  owner_record="$2/$1"
  # Read with the shell itself: a check runs this on many hosts at once.
  record_uid=''
  record_origin=''
  record_name=''
  record_owner=''
  if [ -f "$owner_record" ] && [ ! -L "$owner_record" ]; then
    while IFS='=' read -r field value; do
      case "$field" in
        uid) record_uid=$value ;;
        origin) record_origin=$value ;;
        name) record_name=$value ;;
        owner) record_owner=$value ;;
      esac
    done <"$owner_record"
  fi
  if [ "$record_uid" = "$owner_uid" ] && { [ -z "$record_name" ] || [ "$record_name" = "$1" ]; }; then
    if [ -n "$record_owner" ] && [ -n "${3:-}" ] &&
      [ "$record_owner" != "$3" ] && [ "$record_owner" != "${4:-}" ]; then
      echo other
      return 0
    fi
    case "$record_origin" in
      created) echo created && return 0 ;;
      adopted) echo adopted && return 0 ;;
    esac
  fi
  echo foreign
}

# The owner id in NAME's record (empty: none), for messages.
account_record_owner() {
  sed -n 's/^owner=//p' "$2/$1" 2>/dev/null | head -n 1
}
