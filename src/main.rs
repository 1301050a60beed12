//! `terraform-provider-nixbuild`: serves the `nixbuild` provider to Terraform over
//! plugin protocol 6. Sets up logging (hclog JSON on stderr) and signal handling,
//! then hands over to tf-provider.

use terraform_provider_nixbuild::{handshake, logging, provider};

use tokio::signal::unix::{signal, SignalKind};

const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os(MAGIC_COOKIE_KEY).is_none() {
        eprintln!(
            "This binary is a Terraform plugin: Terraform starts it. Use it from a Terraform configuration \
             (see the README), or through `dev_overrides` in a Terraform CLI configuration for development."
        );
        std::process::exit(1);
    }
    // tf-provider installs its own (plain text, global) logger when
    // PLUGIN_LOG_FILE is set, which would clash with ours: ours wins.
    std::env::remove_var("PLUGIN_LOG_FILE");
    // tf-provider captures a Rust backtrace into every diagnostic when
    // backtraces are enabled; users should see our messages, not frames.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    // Before anything is printed: the handshake line must pass through the
    // forwarder that sets TCP_NODELAY on the gRPC listener first.
    // NIXBUILD_GRPC_NODELAY=off leaves the option unset, for the benchmark's
    // before/after comparison (bench/) and the test's proof that it can fail.
    let held = handshake::hold(std::env::var("NIXBUILD_GRPC_NODELAY").as_deref() != Ok("off"));
    logging::init();
    if let Err(e) = held {
        tracing::warn!(
            "cannot hold back the plugin handshake ({e}); gRPC runs without TCP_NODELAY"
        );
    }
    // Two rustls crypto backends are linked (ring for tonic, aws-lc-rs for
    // reqwest); without an explicit choice rustls panics at the first TLS use.
    let _ = rustls::crypto::ring::default_provider().install_default();

    // Terraform, not the terminal, stops the provider: a Ctrl-C reaches the whole
    // process group, and dying here would lose what an apply already created.
    let mut interrupts = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        while interrupts.recv().await.is_some() {
            tracing::info!("SIGINT ignored: Terraform will stop the provider when it is done");
        }
    });

    tracing::debug!(version = env!("CARGO_PKG_VERSION"), "starting");
    tf_provider::serve("nixbuild", provider::NixbuildProvider::new()).await?;
    tracing::debug!("Terraform is done with the provider; exiting");
    Ok(())
}
