# A flake with no inputs (no nixpkgs), so the demo builds offline: every
# derivation runs /bin/sh built-ins only. `greeting` embeds the path of
# `message`, so Nix records a reference and the pushed closure has two paths.
{
  description = "nixbuild demo flake (no inputs)";

  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: builtins.listToAttrs (map (system: { name = system; value = f system; }) systems);
      mk = system: name: script: derivation {
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" script ];
      };
    in
    {
      packages = forAllSystems (system: rec {
        message = mk system "nixbuild-demo-message" "echo 'built by a nixbuild builder' > $out";
        greeting = mk system "nixbuild-demo-greeting" "echo \"greeting, see ${message}\" > $out";
        default = greeting;
      });
    };
}
