//! Opening one authenticated SSH connection: TCP (or direct-tcpip through a
//! bastion), host-key verification, authentication, and retries with backoff
//! until `connect_timeout` — never past a host-key mismatch or a rejected
//! login. With an expected host key, the client offers only that key's
//! algorithm, so a host with several keys presents the one to check.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, AuthResult, Handle};
use russh::keys::agent::client::AgentClient;
use russh::keys::agent::AgentIdentity;
use russh::keys::{Algorithm, HashAlg, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::SshError;
use super::hostkey::HostKey;
use super::settings::{Endpoint, Settings};
use super::socket::QuickAckStream;

/// Verifies the server's host key against the expected one and records what
/// the server presented, so a rejection can be reported with both keys.
pub struct Verifier {
    expected: Option<HostKey>,
    presented: Arc<Mutex<Option<HostKey>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        server_key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let key = match server_key {
            PublicKeyOrCertificate::PublicKey { key, .. } => HostKey::from_public_key(key),
            PublicKeyOrCertificate::Certificate(cert) => {
                HostKey::from_public_key(&russh::keys::PublicKey::from(cert.public_key().clone()))
            }
        };
        let accepted = self
            .expected
            .as_ref()
            .is_none_or(|expected| *expected == key);
        *self.presented.lock().expect("verifier lock") = Some(key);
        Ok(accepted)
    }
}

pub type Connection = Handle<Verifier>;

/// The host-key algorithms to offer when `expected` is the key to check: just
/// its own (for RSA, its SHA-2 signature variants first).
fn host_key_algorithms(expected: &HostKey) -> Option<Vec<Algorithm>> {
    match expected.public_key().algorithm() {
        Algorithm::Rsa { .. } => Some(vec![
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha512),
            },
            Algorithm::Rsa {
                hash: Some(HashAlg::Sha256),
            },
            Algorithm::Rsa { hash: None },
        ]),
        algorithm @ (Algorithm::Ed25519 | Algorithm::Ecdsa { .. }) => Some(vec![algorithm]),
        _ => None,
    }
}

fn client_config(expected: Option<&HostKey>) -> Arc<client::Config> {
    let mut preferred = russh::Preferred::default();
    if let Some(algorithms) = expected.and_then(host_key_algorithms) {
        preferred.key = algorithms.into();
    }
    Arc::new(client::Config {
        preferred,
        // Keepalives notice a dead peer (a destroyed host) instead of hanging, and
        // keep NAT/firewall state alive during long builds.
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 4,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    })
}

/// How long one TCP connect + handshake attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);

/// One attempt over an already open byte stream (TCP or a bastion channel).
/// Returns the connection and the host key the server presented.
pub async fn handshake<S>(
    stream: S,
    endpoint: &Endpoint,
    settings: &Settings,
    expected: Option<HostKey>,
) -> Result<(Connection, HostKey), SshError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let presented = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        expected: expected.clone(),
        presented: presented.clone(),
    };
    let label = endpoint.to_string();
    let started = Instant::now();
    let result = tokio::time::timeout(
        ATTEMPT_TIMEOUT,
        client::connect_stream(client_config(expected.as_ref()), stream, verifier),
    )
    .await;
    let kex_ms = started.elapsed().as_millis() as u64;
    let seen = presented.lock().expect("verifier lock").clone();
    let mut handle = match result {
        Ok(Ok(handle)) => handle,
        Ok(Err(e)) => {
            if let Some(mismatch) = key_type_gone(&label, expected.as_ref(), &e) {
                return Err(mismatch);
            }
            if let (Some(expected), Some(seen)) = (&expected, &seen) {
                if expected != seen {
                    return Err(SshError::HostKeyMismatch {
                        host: label,
                        expected: expected.to_string(),
                        presented: seen.to_string(),
                    });
                }
            }
            return Err(SshError::Unreachable {
                host: label,
                reason: format!("SSH handshake failed: {e}"),
                waited: Duration::ZERO,
            });
        }
        Err(_) => {
            return Err(SshError::Unreachable {
                host: label,
                reason: "SSH handshake timed out".into(),
                waited: Duration::ZERO,
            })
        }
    };
    let host_key = seen.ok_or_else(|| SshError::Unreachable {
        host: label.clone(),
        reason: "the server presented no host key".into(),
        waited: Duration::ZERO,
    })?;
    authenticate(&mut handle, endpoint, settings).await?;
    // The breakdown in docs/performance.md is read from these.
    tracing::debug!(
        host = %label,
        kex_ms,
        auth_ms = started.elapsed().as_millis() as u64 - kex_ms,
        "SSH handshake and login done"
    );
    Ok((handle, host_key))
}

/// The host-key error for a host that no longer offers the expected key's
/// algorithm (the client offered only that one, so key exchange found no
/// common host-key algorithm): a re-installed host with other key types, not
/// an unreachable one. `None` for any other failure.
fn key_type_gone(
    label: &str,
    expected: Option<&HostKey>,
    error: &russh::Error,
) -> Option<SshError> {
    let expected = expected?;
    let russh::Error::NoCommonAlgo {
        kind: russh::AlgorithmKind::Key,
        theirs,
        ..
    } = error
    else {
        return None;
    };
    Some(SshError::HostKeyMismatch {
        host: label.to_string(),
        expected: expected.to_string(),
        presented: format!(
            "no {} key (it offers {})",
            expected.public_key().algorithm().as_str(),
            if theirs.is_empty() {
                "none".to_string()
            } else {
                theirs.join(", ")
            }
        ),
    })
}

async fn authenticate(
    handle: &mut Connection,
    endpoint: &Endpoint,
    settings: &Settings,
) -> Result<(), SshError> {
    let fail = |reason: String| SshError::AuthFailed {
        host: endpoint.to_string(),
        user: endpoint.user.clone(),
        reason,
    };
    let mut tried = Vec::new();
    for key in &settings.credentials.keys {
        // RSA keys sign with rsa-sha2-256/512 when the server supports it.
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| fail(e.to_string()))?
            .flatten();
        let result = handle
            .authenticate_publickey(
                endpoint.user.clone(),
                PrivateKeyWithHashAlg::new(key.clone(), hash),
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        if result.success() {
            return Ok(());
        }
        tried.push(format!(
            "key {}",
            HostKey::from_public_key(key.public_key()).fingerprint()
        ));
    }
    if settings.credentials.agent {
        let mut agent = AgentClient::connect_env()
            .await
            .map_err(|e| fail(format!("cannot reach the SSH agent (SSH_AUTH_SOCK): {e}")))?;
        let identities = agent
            .request_identities()
            .await
            .map_err(|e| fail(format!("SSH agent: {e}")))?;
        for identity in identities {
            let AgentIdentity::PublicKey { key, .. } = identity else {
                continue;
            };
            let hash = handle
                .best_supported_rsa_hash()
                .await
                .map_err(|e| fail(e.to_string()))?
                .flatten();
            let result = handle
                .authenticate_publickey_with(endpoint.user.clone(), key.clone(), hash, &mut agent)
                .await;
            if let Ok(AuthResult::Success) = result {
                return Ok(());
            }
            tried.push(format!(
                "agent key {}",
                HostKey::from_public_key(&key).fingerprint()
            ));
        }
    }
    Err(fail(if tried.is_empty() {
        "no credentials to try".into()
    } else {
        format!("the server rejected {}", tried.join(", "))
    }))
}

/// The step name an interrupted connection reports.
pub const CONNECT_STEP: &str = "connect";

/// The error for a connection that Terraform's stop ended after `tries`
/// attempts in `waited`.
fn interrupted(label: &str, tries: u32, waited: Duration) -> SshError {
    SshError::Interrupted {
        host: label.to_string(),
        step: CONNECT_STEP.into(),
        outcome: format!(
            "stopped connecting after {tries} attempt{} in {}; nothing was run on the host",
            if tries == 1 { "" } else { "s" },
            humantime::format_duration(Duration::from_secs(waited.as_secs()))
        ),
    }
}

/// Retry `attempt` with exponential backoff until `timeout` has passed; no
/// attempt outlives the budget. A host-key mismatch or a rejected login (any
/// non-retryable error) ends the loop at once, and so does Terraform's stop
/// ([`crate::interrupt`]): an attempt or a backoff in progress is abandoned.
pub async fn with_retries<T, F, Fut>(
    label: &str,
    timeout: Duration,
    mut attempt: F,
) -> Result<T, SshError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, SshError>>,
{
    let started = Instant::now();
    let mut backoff = Duration::from_millis(250);
    let mut tries = 0u32;
    loop {
        tries += 1;
        let remaining = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let attempt = crate::interrupt::or_stopped(tokio::time::timeout(remaining, attempt()));
        let result = match attempt.await {
            Err(crate::interrupt::Interrupted) => {
                return Err(interrupted(label, tries, started.elapsed()))
            }
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(SshError::Unreachable {
                host: label.to_string(),
                reason: "no SSH answer in time".into(),
                waited: Duration::ZERO,
            }),
        };
        match result {
            Ok(value) => return Ok(value),
            Err(e) if !e.is_retryable() => return Err(e),
            Err(e) => {
                let waited = started.elapsed();
                if waited + backoff > timeout {
                    return Err(match e {
                        SshError::Unreachable { host, reason, .. } => SshError::Unreachable {
                            host,
                            reason: format!("{reason} ({tries} attempts)"),
                            waited,
                        },
                        other => other,
                    });
                }
                tracing::debug!(host = label, attempt = tries, error = %e, "connection attempt failed; retrying in {}", humantime::format_duration(backoff));
                if crate::interrupt::or_stopped(tokio::time::sleep(backoff))
                    .await
                    .is_err()
                {
                    return Err(interrupted(label, tries, started.elapsed()));
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Open a TCP connection to `endpoint`.
pub async fn tcp(endpoint: &Endpoint) -> Result<QuickAckStream, SshError> {
    let started = Instant::now();
    let connect = tokio::net::TcpStream::connect((endpoint.host.as_str(), endpoint.port));
    match tokio::time::timeout(ATTEMPT_TIMEOUT, connect).await {
        Ok(Ok(stream)) => {
            tracing::debug!(host = %endpoint, tcp_ms = started.elapsed().as_millis() as u64, "TCP connected");
            // russh sets `nodelay` only on sockets it opens itself
            // (`client::connect`); small SSH packets must not wait for ACKs.
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(host = %endpoint, "cannot set TCP_NODELAY: {e}");
            }
            Ok(QuickAckStream::new(stream))
        }
        Ok(Err(e)) => Err(SshError::Unreachable {
            host: endpoint.to_string(),
            reason: e.to_string(),
            waited: Duration::ZERO,
        }),
        Err(_) => Err(SshError::Unreachable {
            host: endpoint.to_string(),
            reason: "TCP connect timed out".into(),
            waited: Duration::ZERO,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINGwoM0qHi3UCNskOgmX7C4Z1WMQBrd/cEL7joIjfvFC";

    #[test]
    fn a_host_without_the_pinned_key_type_is_a_mismatch_not_unreachable() {
        let expected = HostKey::parse(ED).unwrap();
        let gone = russh::Error::NoCommonAlgo {
            kind: russh::AlgorithmKind::Key,
            ours: vec!["ssh-ed25519".into()],
            theirs: vec!["ecdsa-sha2-nistp256".into(), "rsa-sha2-512".into()],
        };
        let error = key_type_gone("root@h:22", Some(&expected), &gone).unwrap();
        assert!(!error.is_retryable());
        let text = error.to_string();
        assert!(
            text.contains(
                "presented no ssh-ed25519 key (it offers ecdsa-sha2-nistp256, rsa-sha2-512)"
            ),
            "{text}"
        );
        // Trust on first use offers every type: nothing to compare with.
        assert!(key_type_gone("root@h:22", None, &gone).is_none());
        // No common cipher is another problem.
        let cipher = russh::Error::NoCommonAlgo {
            kind: russh::AlgorithmKind::Cipher,
            ours: vec![],
            theirs: vec![],
        };
        assert!(key_type_gone("root@h:22", Some(&expected), &cipher).is_none());
    }
}
