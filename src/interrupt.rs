//! Terraform's `StopProvider`, as one process-wide signal. The plugin layer
//! calls [`stop`] when Terraform asks the provider to stop (one Ctrl-C in the
//! terminal, or a cancelled CI job); every long operation (connect retries,
//! remote commands, HTTP waits) watches [`stopped`] and ends with
//! [`Interrupted`]. The server itself keeps answering, so the interrupted
//! operation still returns its diagnostics and the state Terraform records is
//! what is true on the host.
//!
//! Not a way to shut the server down: Terraform ends the process itself
//! (`GRPCController.Shutdown` or a kill) once it is done.

use std::sync::LazyLock;

use tokio_util::sync::CancellationToken;

static STOP: LazyLock<CancellationToken> = LazyLock::new(CancellationToken::new);

/// Terraform asked the provider to stop: cancel every operation in flight and
/// every one started from now on (the process is about to end).
pub fn stop() {
    if !STOP.is_cancelled() {
        tracing::warn!(
            "Terraform asked the provider to stop: interrupting every operation in flight"
        );
    }
    STOP.cancel();
}

/// Whether [`stop`] was called.
pub fn is_stopped() -> bool {
    STOP.is_cancelled()
}

/// Resolves once [`stop`] is called (at once if it already was).
pub async fn stopped() {
    STOP.cancelled().await
}

/// The error an operation returns when [`stop`] ended it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted: Terraform asked the provider to stop")]
pub struct Interrupted;

/// Run `work` unless or until the provider is stopped.
pub async fn or_stopped<T>(work: impl std::future::Future<Output = T>) -> Result<T, Interrupted> {
    tokio::select! {
        biased;
        _ = stopped() => Err(Interrupted),
        out = work => Ok(out),
    }
}
