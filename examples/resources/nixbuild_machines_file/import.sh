# shellcheck shell=sh
# Import an existing machines file: the file as found becomes the state, so a
# file that already holds what the configuration renders plans no change, and
# another one plans an in-place rewrite. Destroy then removes it while it is
# unchanged. The ID is an absolute path on the machine running Terraform:
terraform import nixbuild_machines_file.workstation /etc/nix/machines
# or, for a `target`, `user@host[:port]:/path`, optionally followed by the
# target's expected host key line (without it the first key seen is pinned):
#   terraform import nixbuild_machines_file.ci_runner "root@203.0.113.20:22:/etc/nix/machines ssh-ed25519 AAAA…"
# With Terraform 1.5 or later, an `import {}` block does the same in the plan:
#   import {
#     to = nixbuild_machines_file.workstation
#     id = "/etc/nix/machines"
#   }
