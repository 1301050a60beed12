# terraform-provider-nixbuild as a flake: the provider package, a development
# shell and checks.
#
#   nix build              # ./result/bin/terraform-provider-nixbuild
#   nix develop            # cargo, clippy, rustfmt, protoc, terraform, ssh, nix, shellcheck
#   nix flake check        # builds the package, checks rustfmt and shellcheck
#
# Checked in the tests only with `nix-instantiate --parse flake.nix` (syntax): the
# test machines are offline, so nixpkgs cannot be fetched and the flake cannot be
# evaluated or built there. CI and developers with network evaluate it for real.
{
  description = "Terraform provider that bootstraps Nix remote builders over SSH and pushes builds to binary caches";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
  };

  outputs =
    { self, nixpkgs }:
    let
      # The platforms the release workflow builds for.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
        "x86_64-darwin"
        "aarch64-darwin"
      ];
      forAllSystems =
        f:
        nixpkgs.lib.genAttrs systems (
          system:
          f (
            import nixpkgs {
              inherit system;
              # Terraform is under the BUSL (unfree) since 1.6; the dev shell
              # provides the real Terraform because the tests drive it. Only
              # `terraform` is allowed, nothing else unfree slips in.
              config.allowUnfreePredicate = pkg: (nixpkgs.lib.getName pkg) == "terraform";
            }
          )
        );
      cargoToml = builtins.fromTOML (builtins.readFile ./Cargo.toml);
    in
    {
      packages = forAllSystems (pkgs: {
        default = pkgs.rustPlatform.buildRustPackage {
          pname = cargoToml.package.name;
          version = cargoToml.package.version;
          src = pkgs.lib.cleanSource ./.;
          cargoLock.lockFile = ./Cargo.lock;

          # tf-provider's build.rs runs tonic-build, which needs protoc.
          nativeBuildInputs = [ pkgs.protobuf ];
          PROTOC = "${pkgs.protobuf}/bin/protoc";

          # Only the unit tests could run in the sandbox; the acceptance tests need
          # real sshd hosts with Nix, Terraform and an HTTP cache (`make test`), which
          # the Nix build sandbox cannot provide. Run them outside Nix.
          doCheck = false;

          meta = {
            description = cargoToml.package.description;
            license = pkgs.lib.licenses.asl20;
            mainProgram = "terraform-provider-nixbuild";
            platforms = systems;
          };
        };
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.default ];
          packages = [
            pkgs.cargo
            pkgs.rustc
            pkgs.clippy
            pkgs.rustfmt
            pkgs.protobuf
            pkgs.terraform
            pkgs.openssh
            pkgs.nix
            pkgs.shellcheck
            pkgs.actionlint
            pkgs.gnumake
          ];
          PROTOC = "${pkgs.protobuf}/bin/protoc";
        };
      });

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.default;

        # rustfmt directly (cargo fmt would want a writable CARGO_HOME).
        fmt =
          pkgs.runCommand "terraform-provider-nixbuild-fmt" { nativeBuildInputs = [ pkgs.rustfmt ]; }
            ''
              cd ${./.}
              find src tests -name '*.rs' -exec rustfmt --check --edition 2021 {} +
              touch $out
            '';

        shellcheck =
          pkgs.runCommand "terraform-provider-nixbuild-shellcheck"
            { nativeBuildInputs = [ pkgs.shellcheck ]; }
            ''
              cd ${./.}
              shellcheck src/scripts/*.sh scripts/*.sh scripts/testworld/*.sh bench/*.sh .ci/run
              touch $out
            '';
      });
    };
}
