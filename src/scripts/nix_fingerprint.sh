#!/bin/sh
# Read-only fingerprint of what Nix's own facts depend on, prepended to a
# check: decides whether the facts that only `nix` itself can report (its
# version, its effective system-features) can be taken from the caller's last
# full check instead of starting `nix` again (two `nix` starts cost more than
# the rest of a check together).
# The fingerprint is one line of `stat` output (inode, size, mtime and ctime
# in nanoseconds, so an in-place edit within the same second counts) of
# everything those facts depend on: the nix binary (symlinks followed), every
# file in /etc/nix (a renamed-in or removed file changes the list or an
# inode), the files nix.conf files include, the user's and XDG nix.conf, and
# /dev/kvm (Nix adds the `kvm` feature when it exists). Of the provider's own
# /etc/nix/nixbuild.conf, only the lines naming features count
# (`system-features`, `experimental-features` and their `extra-` forms are
# what Nix's feature list is made of): changing `max-jobs` or a substituter
# then costs no `nix show-config`. Whenever a NIX_*
# configuration variable is set, or GNU stat is missing, there is no
# fingerprint and the check runs `nix` as always.
# Takes (and shifts off) the first positional argument: the fingerprint of the
# caller's last full check, or empty. Prints nix_fingerprint=...; sets (and
# prints) nix_unchanged=yes when it equals that argument (builder_check.sh
# then skips `nix show-config`), and nix_version_unchanged=yes when the nix
# binary's part does (probe.sh skips `nix --version`). Read-only.
known_fingerprint=$1
shift
PATH="$PATH:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin:$HOME/.nix-profile/bin"
export PATH
nix_fingerprint=
nix_unchanged=no
nix_version_unchanged=no
if [ -z "${NIX_CONFIG:-}${NIX_CONF_DIR:-}${NIX_USER_CONF_FILES:-}${NIX_REMOTE:-}" ] &&
  nix_binary=$(command -v nix 2>/dev/null); then
  # Files that nix.conf and its neighbours include (`include` / `!include`).
  included=
  for conf in /etc/nix/*.conf; do
    [ -f "$conf" ] || continue
    while read -r word path _; do
      case "$word" in include | '!include') included="$included $path" ;; esac
    done <"$conf"
  done
  user_conf="${XDG_CONFIG_HOME:-$HOME/.config}/nix/nix.conf"
  # The builder's credential files change no fact of Nix's, and their size
  # and times must not reach the state: left out.
  files=
  managed_features=
  for file in /etc/nix/* $included; do
    case "$file" in
      */nixbuild-credentials.conf | */nixbuild.netrc | nixbuild-credentials.conf) ;;
      /etc/nix/nixbuild.conf | nixbuild.conf)
        [ -z "$managed_features" ] || continue
        managed_features=" /etc/nix/nixbuild.conf features:"
        [ -f /etc/nix/nixbuild.conf ] || continue
        while IFS= read -r line || [ -n "$line" ]; do
          case "$line" in *features*) managed_features="$managed_features $line;" ;; esac
        done </etc/nix/nixbuild.conf
        ;;
      *) files="$files $file" ;;
    esac
  done
  # One stat: "v3 BINARY|CONFIG", the binary part alone vouching for the version.
  # shellcheck disable=SC2086 # $files is a list of paths
  nix_fingerprint="v3 $(stat -L --printf '%n %i %s %.9Y %.9Z|' "$nix_binary" 2>/dev/null)$(stat -L --printf \
    '%n %i %s %.9Y %.9Z;' $files "$user_conf" /etc/xdg/nix/nix.conf /dev/kvm 2>/dev/null)$managed_features"
  # No line for the binary: not GNU stat.
  case "$nix_fingerprint" in "v3 $nix_binary "*) ;; *) nix_fingerprint= ;; esac
fi
echo "nix_fingerprint=$nix_fingerprint"
if [ -n "$nix_fingerprint" ]; then
  [ "$nix_fingerprint" != "$known_fingerprint" ] || nix_unchanged=yes
  [ "${nix_fingerprint%%|*}" != "${known_fingerprint%%|*}" ] || nix_version_unchanged=yes
fi
echo "nix_unchanged=$nix_unchanged"
echo "nix_version_unchanged=$nix_version_unchanged"
