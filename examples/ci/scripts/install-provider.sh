#!/usr/bin/env bash
# Installs the nixbuild provider from its release archive into a Terraform
# filesystem mirror (the "packed" layout: the zip as released), and points
# Terraform at it for this provider only; every other provider still comes
# from its registry. `terraform init` then installs it the way it installs any
# provider, and records its checksums in .terraform.lock.hcl.
#
#   NIXBUILD_PROVIDER_VERSION  release to install, e.g. 0.2.0 (required)
#   NIXBUILD_PROVIDER_ARCHIVE  the release zip: an https:// URL or a local
#                              file. Default: the GitHub release asset.
#   NIXBUILD_PROVIDER_SHA256   expected SHA-256 of the zip (from the release's
#                              SHA256SUMS); checked when set
#   NIXBUILD_PROVIDER_SOURCE   default registry.terraform.io/my-modular-workspace/nixbuild
# Sets TF_CLI_CONFIG_FILE for the later steps.
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname "$0")/lib.sh"

require NIXBUILD_PROVIDER_VERSION
version=$NIXBUILD_PROVIDER_VERSION
source_address=${NIXBUILD_PROVIDER_SOURCE:-registry.terraform.io/my-modular-workspace/nixbuild}
case "$(uname -m)" in
  x86_64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "no release archive for $(uname -m)" ;;
esac
os=$(uname -s | tr '[:upper:]' '[:lower:]')
zip_name="terraform-provider-nixbuild_${version}_${os}_${arch}.zip"
archive=${NIXBUILD_PROVIDER_ARCHIVE:-https://github.com/my-modular-workspace/terraform-provider-nixbuild/releases/download/v$version/$zip_name}

mirror="$(scratch_dir)/terraform-mirror"
dest="$mirror/$source_address"
mkdir -p "$dest"
case "$archive" in
  https://* | http://*) curl -fsSL --retry 3 -o "$dest/$zip_name" "$archive" ;;
  *) cp -- "$archive" "$dest/$zip_name" ;;
esac
if [ -n "${NIXBUILD_PROVIDER_SHA256:-}" ]; then
  echo "$NIXBUILD_PROVIDER_SHA256  $dest/$zip_name" | sha256sum -c --quiet - ||
    die "$zip_name does not match NIXBUILD_PROVIDER_SHA256"
fi
# Terraform would say only "no available releases match": check the archive
# holds the binary Terraform looks for.
unzip -Z1 "$dest/$zip_name" | grep -qx "terraform-provider-nixbuild_v$version" ||
  die "$archive does not hold terraform-provider-nixbuild_v$version"

config="$(scratch_dir)/terraform.rc"
cat >"$config" <<HCL
provider_installation {
  filesystem_mirror {
    path    = "$mirror"
    include = ["$source_address"]
  }
  direct {
    exclude = ["$source_address"]
  }
}
HCL
ci_env TF_CLI_CONFIG_FILE "$config"
echo "nixbuild $version: $zip_name in the filesystem mirror $mirror"
