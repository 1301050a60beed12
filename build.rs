//! Generates the Rust types and gRPC services of the plugin protocol from the
//! project's own definitions in src/plugin/proto/ (needs `protoc`, which
//! `make world` installs).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "src/plugin/proto/tfplugin6.proto",
        "src/plugin/proto/go_plugin.proto",
        "src/plugin/proto/health.proto",
    ];
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    tonic_build::configure()
        .build_server(true)
        // Clients too: the tests speak to the real provider process with them.
        .build_client(true)
        .compile_protos(&protos, &["src/plugin/proto"])?;
    Ok(())
}
