#!/bin/sh
# The SSH build user, and the record of what nixbuild_builder did to it, so
# that it never changes or deletes an account it did not create.
# Usage: build_user.sh MODE NAME RECORD_DIR ADOPT
#   owner:   print owner=created|adopted|foreign|absent (read-only).
#   ensure:  create the account (recorded as created), or, with ADOPT=yes, adopt
#            an existing one (recorded as adopted; its own authorized_keys are
#            saved once). Then write authorized_keys from stdin. Refuses (exit 3,
#            nothing changed) an account this provider did not create unless
#            ADOPT=yes. Prints changed=yes when the account or its groups changed.
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
record="$records/$name"
saved_keys="$records/$name.authorized_keys"
PATH="$PATH:/usr/sbin:/sbin"
owner=$(account_owner "$name" "$records")

home_of() { getent passwd "$name" | cut -d: -f6; }

# Whether the user runs a process (from /proc: procps may be missing).
has_processes() {
  for proc in /proc/[0-9]*; do
    [ "$(stat -c %U "$proc" 2>/dev/null)" != "$name" ] || return 0
  done
  return 1
}

write_record() { # ORIGIN GROUPS KEYS
  mkdir -p "$records"
  chmod 0700 "$records"
  next=$(mktemp "$record.XXXXXX")
  printf 'origin=%s\nuid=%s\ngroups=%s\nkeys=%s\n' "$1" "$(id -u "$name")" "$2" "$3" >"$next"
  chmod 0600 "$next"
  mv -f "$next" "$record"
}

recorded() { sed -n "s/^$1=//p" "$record" 2>/dev/null || true; }

case "$mode" in
  owner)
    echo "owner=$owner"
    exit 0
    ;;
  claim)
    if [ "$owner" = foreign ]; then
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
      *) echo "left $name alone ($owner)" ;;
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
    # '*' instead of a locked '!' password: sshd without PAM refuses key
    # logins to locked accounts. In the daemon socket's group from the
    # start: one useradd instead of a useradd and a usermod (each rewrites
    # /etc/passwd, /etc/group and their shadows).
    if getent group "$socket_group" >/dev/null 2>&1; then
      useradd --create-home --shell /bin/sh -p '*' -G "$socket_group" "$name"
      groups=$socket_group
    else
      useradd --create-home --shell /bin/sh -p '*' "$name"
      groups=
    fi
    rm -f "$saved_keys"
    write_record created "$groups" none
    changed=yes
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
