# The flake `source` points at: uploaded to the builder and built there.
# No inputs, so it builds anywhere; a real one would use nixpkgs.
{
  outputs = { self }: {
    packages.x86_64-linux.default = derivation {
      name = "hello-cache";
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [ "-c" "echo hello > $out" ];
    };
  };
}
