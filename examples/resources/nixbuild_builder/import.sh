# shellcheck shell=sh
# Import an already bootstrapped builder by its administrative connection,
# `user@host:port`; the next refresh reads its arguments back from the host.
terraform import nixbuild_builder.x86 root@203.0.113.7:22
