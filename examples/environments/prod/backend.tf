# Remote state: the S3 backend, configured at init time (a partial
# configuration), so the same files serve every bucket, CI run and laptop:
#
#   terraform init -backend-config=backend.hcl
#
# backend.hcl.example is a complete one for an S3-compatible store with state
# locking; `terraform init -backend=false` (validate, fork pull requests)
# needs none. Credentials come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY,
# never from a file in the repository.
terraform {
  backend "s3" {}
}
