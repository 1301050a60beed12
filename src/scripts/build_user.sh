#!/bin/sh
# The SSH build user, and the record of what nixbuild_builder did to it, so
# that it never changes or deletes an account it did not create.
# Usage: build_user.sh MODE NAME RECORD_DIR ADOPT OWNER_ID ADOPT_OWNER_ID
#   OWNER_ID: the resource's owner id, written into every record it writes;
#   a record with another id (unless ADOPT_OWNER_ID) is another resource's.
#   owner:   print owner=created|adopted|other|foreign|absent (read-only),
#            and refuse=yes when ensure would refuse the account.
#   ensure:  create the account (recorded as created), or, with ADOPT=yes, adopt
#            an existing one (recorded as adopted; its own authorized_keys are
#            saved once). Then write authorized_keys from stdin. Refuses (exit 3,
#            nothing changed) an account this provider did not create unless
#            ADOPT=yes, and (exit 3) another resource's account. A new account
#            and its record come together: the record's file is made before
#            useradd, and the account is deleted again if the record cannot be
#            written. Prints changed=yes when the account or its groups changed.
#   claim:   record a foreign account as created (a builder from release 0.1.0,
#            which kept no records, made or took it and deletes it on clean).
#   release: undo ensure: delete an account it created (with its home); give an
#            adopted account back its own authorized_keys and groups. An account
#            without a record is left alone.
# Needs account_owner (account.sh) prepended.
set -eu
mode=$1
name=$2
records=$3
adopt=$4
owner_id=$5
adopt_owner_id=$6
record="$records/$name"
saved_keys="$records/$name.authorized_keys"
PATH="$PATH:/usr/sbin:/sbin"
owner=$(account_owner "$name" "$records" "$owner_id" "$adopt_owner_id")

# useradd, usermod and userdel fail at once while another process holds the
# account files' lock. The usual holder is this script's run on a connection
# that was just cut, which its guard is stopping (SIGTERM, SIGKILL 3 s
# later): wait up to 15 s for a live holder to go. A lock whose process is
# gone is stale, and the tools remove it themselves.
wait_for_account_locks() {
  waited=0
  for lock in /etc/passwd.lock /etc/shadow.lock /etc/group.lock /etc/gshadow.lock; do
    while [ -f "$lock" ] && [ "$waited" -lt 15 ]; do
      holder=$(tr -dc '0-9' <"$lock" 2>/dev/null || true)
      if [ -z "$holder" ] || [ ! -d "/proc/$holder" ]; then
        break
      fi
      sleep 1
      waited=$((waited + 1))
    done
  done
}
case "$mode" in
  ensure | release) wait_for_account_locks ;;
esac

home_of() { getent passwd "$name" | cut -d: -f6; }

# Whether the user runs a process (from /proc: procps may be missing).
has_processes() {
  for proc in /proc/[0-9]*; do
    [ "$(stat -c %U "$proc" 2>/dev/null)" != "$name" ] || return 0
  done
  return 1
}

# A new file for the record, beside it (renamed over it by write_record).
record_file() {
  mkdir -p "$records"
  chmod 0700 "$records"
  mktemp "$record.XXXXXX"
}

write_record() { # ORIGIN GROUPS KEYS [FILE from record_file]
  next=${4:-$(record_file)}
  printf 'origin=%s\nuid=%s\nname=%s\nowner=%s\ngroups=%s\nkeys=%s\n' \
    "$1" "$(id -u "$name")" "$name" "$owner_id" "$2" "$3" >"$next"
  chmod 0600 "$next"
  mv -f "$next" "$record"
}

other_owner_message() {
  echo "the account $name belongs to another nixbuild_builder (owner id $(account_record_owner "$name" "$records"), record $record): refusing to change it (destroy that resource first, or set adopt_owner = \"$(account_record_owner "$name" "$records")\" to take over its objects)" >&2
}

recorded() { sed -n "s/^$1=//p" "$record" 2>/dev/null || true; }

case "$mode" in
  owner)
    echo "owner=$owner"
    # What ensure would refuse (the caller stops there, before any change).
    case "$owner" in
      other) echo "refuse=yes" ;;
      foreign) [ "$adopt" = yes ] || echo "refuse=yes" ;;
    esac
    exit 0
    ;;
  claim)
    if [ "$owner" = foreign ] && [ ! -L "$record" ]; then
      write_record created "" none
      echo "claimed $name"
    fi
    exit 0
    ;;
  release)
    case "$owner" in
      created)
        # A client's last login may have left a session or a systemd user
        # manager behind, which makes userdel refuse: end them, give them
        # 10 s, then kill what is left.
        pkill -u "$name" 2>/dev/null || true
        waited=0
        while has_processes && [ "$waited" -lt 50 ]; do
          sleep 0.2
          waited=$((waited + 1))
        done
        pkill -KILL -u "$name" 2>/dev/null || true
        userdel -r "$name" 2>/dev/null || userdel "$name"
        echo "deleted $name"
        ;;
      adopted)
        for group in $(recorded groups); do
          gpasswd -d "$name" "$group" >/dev/null 2>&1 || true
        done
        keys="$(home_of)/.ssh/authorized_keys"
        if [ "$(recorded keys)" = saved ] && [ -f "$saved_keys" ]; then
          cp -p "$saved_keys" "$keys"
        else
          rm -f "$keys"
        fi
        echo "gave $name back"
        ;;
      *)
        # Another resource's record (or none) stays as it is.
        echo "left $name alone ($owner)"
        exit 0
        ;;
    esac
    rm -f "$record" "$saved_keys"
    exit 0
    ;;
  ensure) ;;
  *)
    echo "unknown mode $mode" >&2
    exit 2
    ;;
esac

changed=no
socket_group=nix-users
case "$owner" in
  absent)
    # The record's file first: a records directory that cannot be written
    # fails here, before there is an account without a record (which every
    # later apply would refuse as foreign).
    pending=$(record_file)
    # Until the record is in place, a failure (or a stop) deletes the new
    # account again.
    account_made=no
    undo_account() {
      rm -f "$pending"
      if [ "$account_made" = yes ]; then
        userdel -r "$name" 2>/dev/null || userdel "$name" || true
      fi
    }
    trap undo_account EXIT
    trap 'exit 143' TERM
    # '*' instead of a locked '!' password: sshd without PAM refuses key
    # logins to locked accounts. In the daemon socket's group from the
    # start: one useradd instead of a useradd and a usermod (each rewrites
    # /etc/passwd, /etc/group and their shadows).
    if getent group "$socket_group" >/dev/null 2>&1; then
      account_made=yes
      useradd --create-home --shell /bin/sh -p '*' -G "$socket_group" "$name"
      groups=$socket_group
    else
      account_made=yes
      useradd --create-home --shell /bin/sh -p '*' "$name"
      groups=
    fi
    rm -f "$saved_keys"
    write_record created "$groups" none "$pending"
    account_made=no
    trap - EXIT
    changed=yes
    ;;
  other)
    other_owner_message
    exit 3
    ;;
  foreign)
    if [ "$adopt" != yes ]; then
      echo "the account $name already exists and was not created by nixbuild_builder: refusing to change it (set build_user.adopt_existing = true to adopt it)" >&2
      exit 3
    fi
    keys=none
    if [ -f "$(home_of)/.ssh/authorized_keys" ]; then
      mkdir -p "$records"
      chmod 0700 "$records"
      cp -p "$(home_of)/.ssh/authorized_keys" "$saved_keys"
      keys=saved
    fi
    write_record adopted "" "$keys"
    changed=yes
    ;;
esac

# A record from before owner ids, or the one of the owner this resource
# takes over (adopt_owner), is claimed: it names this resource from now on.
case "$owner" in
  created | adopted)
    if [ "$(account_record_owner "$name" "$records")" != "$owner_id" ]; then
      write_record "$owner" "$(recorded groups)" "$(recorded keys)"
    fi
    ;;
esac

# Debian's nix-daemon socket is reserved for group nix-users.
# In the socket group? Its member list first (one getent, read by the
# shell); `id -nG` only when the list does not name the user (a primary group).
in_socket_group() {
  members=$(getent group "$socket_group" 2>/dev/null) || return 0
  case ",${members##*:}," in *",$name,"*) return 0 ;; esac
  id -nG "$name" | tr ' ' '\n' | grep -qxF "$socket_group"
}
if [ "$owner" != absent ] && ! in_socket_group; then
  usermod -a -G "$socket_group" "$name"
  groups="$(recorded groups) $socket_group"
  write_record "$(recorded origin)" "${groups# }" "$(recorded keys)"
  changed=yes
fi

home=$(home_of)
[ -n "$home" ] || { echo "the account $name has no home directory" >&2; exit 5; }
# The keys (stdin) read once, compared with cmp, written only when they differ.
keys=$(cat; echo x)
keys=${keys%x}
if [ ! -f "$home/.ssh/authorized_keys" ] ||
  ! printf '%s' "$keys" | cmp -s - "$home/.ssh/authorized_keys"; then
  group=$(id -gn "$name")
  if [ ! -d "$home/.ssh" ]; then
    mkdir -p "$home/.ssh"
    chown "$name:$group" "$home/.ssh"
    chmod 0700 "$home/.ssh"
  fi
  new=$(mktemp "$home/.ssh/.authorized_keys.XXXXXX")
  trap 'rm -f "$new"' EXIT
  # The provider's stop (guard.sh) sends SIGTERM: exit through the EXIT trap.
  trap 'exit 143' TERM
  printf '%s' "$keys" >"$new"
  chown "$name:$group" "$new"
  chmod 0600 "$new"
  mv -f "$new" "$home/.ssh/authorized_keys"
fi
echo "changed=$changed"
