//! The provider process's SSH connections: one pooled connection per
//! (host, port, user), at most `max_sessions_per_host` channels per host at once,
//! and the host keys seen so far pinned for the life of the process.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, Semaphore};

use super::connect::{handshake, tcp, with_retries, Connection};
use super::error::SshError;
use super::exec::Remote;
use super::hostkey::HostKey;
use super::settings::{Endpoint, Settings};

pub const DEFAULT_MAX_SESSIONS_PER_HOST: usize = 4;

struct Pooled {
    conn: Arc<Connection>,
    host_key: HostKey,
}

#[derive(Default)]
struct PoolState {
    connections: HashMap<Endpoint, Arc<Mutex<Option<Pooled>>>>,
    /// Keys seen per (host, port): later connections must present the same one.
    pinned: HashMap<(String, u16), HostKey>,
    /// Channel limits per (host, port), shared by every user on that host.
    limits: HashMap<(String, u16), Arc<Semaphore>>,
}

pub struct Pool {
    max_sessions_per_host: usize,
    state: std::sync::Mutex<PoolState>,
}

impl Pool {
    pub fn new(max_sessions_per_host: usize) -> Self {
        Self {
            max_sessions_per_host: max_sessions_per_host.max(1),
            state: Default::default(),
        }
    }

    /// A connected host, reusing the pooled connection when it is still open.
    pub async fn connect(&self, settings: &Settings) -> Result<Remote, SshError> {
        let endpoint = settings.endpoint.clone();
        let host_port = (endpoint.host.clone(), endpoint.port);
        let (slot, sessions, pinned) = {
            let mut state = self.state.lock().expect("pool lock");
            let slot = state
                .connections
                .entry(endpoint.clone())
                .or_default()
                .clone();
            let max = self.max_sessions_per_host;
            let sessions = state
                .limits
                .entry(host_port.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(max)))
                .clone();
            (slot, sessions, state.pinned.get(&host_port).cloned())
        };
        // An explicit host_key wins over a key pinned earlier in this process.
        let expected = settings.host_key.clone().or(pinned);

        // One connect at a time per endpoint; others wait and reuse it.
        let mut guard = slot.lock().await;
        if let Some(pooled) = guard.as_ref() {
            if !pooled.conn.is_closed() {
                if let Some(expected) = &expected {
                    if *expected != pooled.host_key {
                        return Err(SshError::HostKeyMismatch {
                            host: endpoint.to_string(),
                            expected: expected.to_string(),
                            presented: pooled.host_key.to_string(),
                        });
                    }
                }
                return Ok(Remote {
                    endpoint,
                    conn: pooled.conn.clone(),
                    host_key: pooled.host_key.clone(),
                    sessions,
                });
            }
        }
        let (conn, host_key) = self.open(settings, expected).await?;
        tracing::info!(host = %endpoint, host_key = %host_key.fingerprint(), "connected");
        let conn = Arc::new(conn);
        *guard = Some(Pooled {
            conn: conn.clone(),
            host_key: host_key.clone(),
        });
        self.state
            .lock()
            .expect("pool lock")
            .pinned
            .insert(host_port, host_key.clone());
        Ok(Remote {
            endpoint,
            conn,
            host_key,
            sessions,
        })
    }

    /// Open a fresh connection, directly or through the bastion, with retries.
    async fn open(
        &self,
        settings: &Settings,
        expected: Option<HostKey>,
    ) -> Result<(Connection, HostKey), SshError> {
        let endpoint = &settings.endpoint;
        let label = endpoint.to_string();
        match &settings.bastion {
            None => {
                with_retries(&label, settings.connect_timeout, || async {
                    let stream = tcp(endpoint).await?;
                    handshake(stream, endpoint, settings, expected.clone()).await
                })
                .await
            }
            Some(bastion) => {
                let jump_settings = Settings {
                    endpoint: bastion.endpoint.clone(),
                    credentials: settings.credentials.clone(),
                    host_key: bastion.host_key.clone(),
                    connect_timeout: settings.connect_timeout,
                    bastion: None,
                };
                let jump = Box::pin(self.connect(&jump_settings)).await?;
                with_retries(&label, settings.connect_timeout, || async {
                    let channel = jump
                        .conn
                        .channel_open_direct_tcpip(
                            endpoint.host.clone(),
                            endpoint.port.into(),
                            "127.0.0.1",
                            0,
                        )
                        .await
                        .map_err(|e| SshError::Unreachable {
                            host: label.clone(),
                            reason: format!(
                                "bastion {} cannot open a tunnel: {e}",
                                jump.endpoint()
                            ),
                            waited: std::time::Duration::ZERO,
                        })?;
                    handshake(channel.into_stream(), endpoint, settings, expected.clone()).await
                })
                .await
            }
        }
    }
}
