//! `terraform-provider-nixbuild`: serves the `nixbuild` provider to Terraform over
//! plugin protocol 6. Sets up logging (hclog JSON on stderr) and signal handling,
//! then hands over to the plugin layer (src/plugin/).

use terraform_provider_nixbuild::{interrupt, logging, plugin, provider};

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

    // A Ctrl-C reaches the whole process group, this process too. Dying here
    // would lose what an apply already did: the provider keeps serving until
    // Terraform ends it. The signal stops the work in flight, as Terraform's
    // StopProvider does, which Terraform sends only once an apply is past its
    // plan: a Ctrl-C while `terraform apply` still refreshes (a dead host's
    // connect retries) would otherwise wait for the refresh to end.
    let mut interrupts = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        while interrupts.recv().await.is_some() {
            tracing::info!(
                "SIGINT: stopping the work in flight; the provider keeps serving until Terraform is done"
            );
            interrupt::stop();
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
