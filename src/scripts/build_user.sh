#!/bin/sh
# Create the SSH build user and write its authorized_keys (stdin), if needed.
# Usage: build_user.sh NAME
# Prints changed=yes when the user or its groups changed.
set -eu
name=$1
changed=no
PATH="$PATH:/usr/sbin:/sbin"

if ! id -u "$name" >/dev/null 2>&1; then
  # '*' instead of a locked '!' password: sshd without PAM refuses key logins
  # to locked accounts.
  useradd --create-home --shell /bin/sh -p '*' "$name"
  changed=yes
fi

# Debian's nix-daemon socket is reserved for group nix-users.
socket_group=nix-users
if getent group "$socket_group" >/dev/null 2>&1 && ! id -nG "$name" | tr ' ' '\n' | grep -qxF "$socket_group"; then
  usermod -a -G "$socket_group" "$name"
  changed=yes
fi

home=$(getent passwd "$name" | cut -d: -f6)
group=$(id -gn "$name")
mkdir -p "$home/.ssh"
chown "$name:$group" "$home/.ssh"
chmod 0700 "$home/.ssh"
new=$(mktemp "$home/.ssh/.authorized_keys.XXXXXX")
trap 'rm -f "$new"' EXIT
cat >"$new"
if [ -f "$home/.ssh/authorized_keys" ] && cmp -s "$new" "$home/.ssh/authorized_keys"; then
  rm -f "$new"
else
  chown "$name:$group" "$new"
  chmod 0600 "$new"
  mv -f "$new" "$home/.ssh/authorized_keys"
fi
echo "changed=$changed"
