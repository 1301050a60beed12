# shellcheck shell=sh
# Import an already bootstrapped builder by its administrative connection,
# `user@host:port`; the import reads its arguments back from the host and pins
# the first host key it sees. To check the key instead, put the expected key
# line after the address, in one argument:
#   terraform import nixbuild_builder.x86 "root@203.0.113.7:22 ssh-ed25519 AAAA…"
terraform import nixbuild_builder.x86 root@203.0.113.7:22
# With Terraform 1.5 or later, an `import {}` block does the same in the plan:
#   import {
#     to = nixbuild_builder.x86
#     id = "root@203.0.113.7:22"
#   }
