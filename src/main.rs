//! `terraform-provider-nixbuild`: serves the `nixbuild` provider to Terraform over
//! plugin protocol 6. Sets up logging (hclog JSON on stderr) and signal handling,
//! then hands over to the plugin layer (src/plugin/).

use terraform_provider_nixbuild::{logging, plugin, provider};

use tokio::signal::unix::{signal, SignalKind};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if !plugin::handshake::started_by_terraform() {
        eprintln!(
            "This binary is a Terraform plugin: Terraform starts it. Use it from a Terraform configuration \
             (see the README), or through `dev_overrides` in a Terraform CLI configuration for development."
        );
        std::process::exit(1);
    }
    // tf-provider's diagnostics capture a Rust backtrace when backtraces are
    // enabled; users should see our messages, not frames.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    logging::init();
    // Two rustls crypto backends are linked (ring for the HTTP client,
    // aws-lc-rs for the plugin socket, which names its own); without an
    // explicit default rustls panics at the first TLS use that names none.
    let _ = rustls::crypto::ring::default_provider().install_default();

    // Terraform, not the terminal, stops the provider: a Ctrl-C reaches the whole
    // process group, and dying here would lose what an apply already created.
    // Terraform then calls StopProvider, which interrupts the work in flight.
    let mut interrupts = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        while interrupts.recv().await.is_some() {
            tracing::info!("SIGINT ignored: Terraform will stop the provider when it is done");
        }
    });

    tracing::debug!(version = env!("CARGO_PKG_VERSION"), "starting");
    if let Err(e) = plugin::serve("nixbuild", provider::NixbuildProvider::new()).await {
        tracing::error!("{e:#}");
        eprintln!("terraform-provider-nixbuild: {e:#}");
        std::process::exit(1);
    }
    tracing::debug!("Terraform is done with the provider; exiting");
    Ok(())
}
