//! The provider process's SSH connections: one pooled connection per route,
//! users and credentials (see `Slot`), at most `max_sessions_per_host` channels per host at once, at most
//! [`MAX_IDLE_CONNECTIONS`] kept open unused, and the host keys seen so far
//! pinned for the life of the process.
//!
//! Everything is keyed by the whole [`Route`] (the bastion included): the same
//! address reached through a jump host may be another machine than the one
//! reached directly. A bastion that is the target itself is not used as a jump
//! (connecting to it already reaches the target), which also means no
//! connection ever waits for itself.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::{Mutex, Semaphore};

use super::connect::{handshake, tcp, with_retries, Connection};
use super::error::SshError;
use super::exec::Remote;
use super::hostkey::HostKey;
use super::settings::Settings;

pub const DEFAULT_MAX_SESSIONS_PER_HOST: usize = 4;

/// At most this many open connections are kept while nothing uses them
/// (beyond it, idle ones are closed; a host's pin stays). A plan over
/// hundreds of builders reads each host once, and every open connection
/// costs the provider about 100 kB (docs/performance.md, goal R4); Terraform
/// runs 10 operations at a time by default.
pub const MAX_IDLE_CONNECTIONS: usize = 24;

/// How a host is reached: its address, and the jump host's (if any).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Route {
    pub host: String,
    pub port: u16,
    pub bastion: Option<(String, u16)>,
}

impl Route {
    pub fn of(settings: &Settings) -> Self {
        Self {
            host: settings.endpoint.host.clone(),
            port: settings.endpoint.port,
            bastion: settings
                .bastion
                .as_ref()
                .map(|b| (b.endpoint.host.clone(), b.endpoint.port)),
        }
    }
}

struct Pooled {
    conn: Arc<Connection>,
    host_key: HostKey,
    bastion_host_key: Option<HostKey>,
}

/// One pooled connection, keyed by everything that decided whether it could
/// be opened: the route, the users on both ends, the credentials that logged
/// in (their [`Credentials::identity`](super::auth::Credentials::identity),
/// never the secrets), the key the bastion had to present, and the host-key
/// algorithm an explicit key asked for (a host holds one key per algorithm,
/// so connections checking different algorithms cannot stand in for each
/// other). A connection opened with one key never answers for another key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Slot {
    route: Route,
    user: String,
    bastion_user: Option<String>,
    credentials: [u8; 32],
    bastion_host_key: Option<String>,
    host_key_algorithm: Option<String>,
}

impl Slot {
    fn of(settings: &Settings) -> Self {
        Self {
            route: Route::of(settings),
            user: settings.endpoint.user.clone(),
            bastion_user: settings.bastion.as_ref().map(|b| b.endpoint.user.clone()),
            credentials: settings.credentials.identity(),
            bastion_host_key: settings
                .bastion
                .as_ref()
                .and_then(|b| b.host_key.as_ref())
                .map(HostKey::openssh_line),
            host_key_algorithm: settings
                .host_key
                .as_ref()
                .map(|k| k.public_key().algorithm().as_str().to_string()),
        }
    }
}

#[derive(Default)]
struct PoolState {
    connections: HashMap<Slot, Arc<Mutex<Option<Pooled>>>>,
    /// Keys seen (or recorded) per route: later connections must present the same one.
    pinned: HashMap<Route, HostKey>,
    /// Channel limits per route, shared by every user on that host.
    limits: HashMap<Route, Arc<Semaphore>>,
}

pub struct Pool {
    max_sessions_per_host: usize,
    state: std::sync::Mutex<PoolState>,
}

/// A bastion that is the target itself is dropped: the target is reached directly,
/// expecting the bastion's key if the target has none of its own.
fn without_self_jump(settings: &Settings) -> Settings {
    let mut settings = settings.clone();
    if let Some(bastion) = &settings.bastion {
        let (b, t) = (&bastion.endpoint, &settings.endpoint);
        if b.host == t.host && b.port == t.port {
            if settings.host_key.is_none() {
                settings.host_key = bastion.host_key.clone();
            }
            settings.bastion = None;
        }
    }
    settings
}

impl Pool {
    pub fn new(max_sessions_per_host: usize) -> Self {
        Self {
            max_sessions_per_host: max_sessions_per_host.max(1),
            state: Default::default(),
        }
    }

    /// The key pinned for `settings`' route in this process, if any.
    pub fn pinned(&self, settings: &Settings) -> Option<HostKey> {
        let route = Route::of(&without_self_jump(settings));
        self.state
            .lock()
            .expect("pool lock")
            .pinned
            .get(&route)
            .cloned()
    }

    /// Whether a connection with `settings` would compare every host key
    /// it meets (the target's and its bastion's) with a known one: given in
    /// `settings`, or pinned earlier in this process. `false` means it would
    /// trust a key on first use.
    pub fn knows_host_keys(&self, settings: &Settings) -> bool {
        let settings = without_self_jump(settings);
        let state = self.state.lock().expect("pool lock");
        let known = |key: &Option<HostKey>, route: Route| {
            key.is_some() || state.pinned.contains_key(&route)
        };
        let bastion_known = settings.bastion.as_ref().is_none_or(|b| {
            let jump = Route {
                host: b.endpoint.host.clone(),
                port: b.endpoint.port,
                bastion: None,
            };
            known(&b.host_key, jump)
        });
        bastion_known && known(&settings.host_key, Route::of(&settings))
    }

    /// Record `key` as the one `settings`' route must present for the rest of
    /// this process, without connecting (e.g. the pin of a resource being
    /// replaced, so that its successor does not trust another key on first use).
    /// A bastion key in `settings` is recorded for the bastion's own route too.
    pub fn pin(&self, settings: &Settings, key: HostKey) {
        let settings = without_self_jump(settings);
        let mut state = self.state.lock().expect("pool lock");
        if let Some(bastion) = &settings.bastion {
            if let Some(bastion_key) = &bastion.host_key {
                let jump = Route {
                    host: bastion.endpoint.host.clone(),
                    port: bastion.endpoint.port,
                    bastion: None,
                };
                state.pinned.entry(jump).or_insert(bastion_key.clone());
            }
        }
        state.pinned.entry(Route::of(&settings)).or_insert(key);
    }

    /// A connected host, reusing the pooled connection when it is still open.
    pub async fn connect(&self, settings: &Settings) -> Result<Remote, SshError> {
        let settings = without_self_jump(settings);
        let endpoint = settings.endpoint.clone();
        let route = Route::of(&settings);
        let slot_key = Slot::of(&settings);
        let (slot, sessions, pinned) = {
            let mut state = self.state.lock().expect("pool lock");
            let slot = state.connections.entry(slot_key).or_default().clone();
            let max = self.max_sessions_per_host;
            let sessions = state
                .limits
                .entry(route.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(max)))
                .clone();
            (slot, sessions, state.pinned.get(&route).cloned())
        };
        // An explicit host_key wins over a key pinned earlier in this process.
        let expected = settings.host_key.clone().or(pinned);

        // One connect at a time per slot; others wait and reuse it.
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
                    bastion_host_key: pooled.bastion_host_key.clone(),
                    sessions,
                });
            }
        }
        let started = std::time::Instant::now();
        let (conn, host_key, bastion_host_key) = self.open(&settings, expected.clone()).await?;
        let connect_ms = started.elapsed().as_millis() as u64;
        if expected.is_none() {
            tracing::info!(host = %endpoint, host_key = %host_key.fingerprint(), "pinned the first host key seen (trust on first use)");
        }
        tracing::info!(host = %endpoint, host_key = %host_key.fingerprint(), connect_ms, "connected");
        let conn = Arc::new(conn);
        *guard = Some(Pooled {
            conn: conn.clone(),
            host_key: host_key.clone(),
            bastion_host_key: bastion_host_key.clone(),
        });
        drop(guard);
        self.close_idle_beyond(MAX_IDLE_CONNECTIONS);
        // The first key verified on a route stays its pin; a connection that
        // checked another algorithm's explicit key does not replace it.
        self.state
            .lock()
            .expect("pool lock")
            .pinned
            .entry(route)
            .or_insert_with(|| host_key.clone());
        Ok(Remote {
            endpoint,
            conn,
            host_key,
            bastion_host_key,
            sessions,
        })
    }

    /// Close idle pooled connections (no [`Remote`] holds them) while more
    /// than `max` are open. Slots another task holds locked count as busy.
    fn close_idle_beyond(&self, max: usize) {
        let slots: Vec<_> = {
            let state = self.state.lock().expect("pool lock");
            state.connections.values().cloned().collect()
        };
        let mut open: usize = 0;
        let mut idle = Vec::new();
        for slot in &slots {
            match slot.try_lock() {
                Ok(guard) => match guard.as_ref() {
                    Some(pooled) if !pooled.conn.is_closed() => {
                        open += 1;
                        // The pool's own reference is the only one.
                        if Arc::strong_count(&pooled.conn) == 1 {
                            idle.push(slot.clone());
                        }
                    }
                    _ => {}
                },
                Err(_) => open += 1,
            }
        }
        for slot in idle.into_iter().take(open.saturating_sub(max)) {
            let Ok(mut guard) = slot.try_lock() else {
                continue;
            };
            if let Some(pooled) = guard.take() {
                tracing::debug!("closing an idle SSH connection ({open} open)");
                tokio::spawn(async move {
                    let _ = pooled
                        .conn
                        .disconnect(russh::Disconnect::ByApplication, "", "en")
                        .await;
                });
            }
        }
    }

    /// Open a fresh connection, directly or through the bastion, with retries;
    /// also returns the bastion's verified key.
    async fn open(
        &self,
        settings: &Settings,
        expected: Option<HostKey>,
    ) -> Result<(Connection, HostKey, Option<HostKey>), SshError> {
        let endpoint = &settings.endpoint;
        let label = endpoint.to_string();
        match &settings.bastion {
            None => {
                let (conn, key) = with_retries(&label, settings.connect_timeout, || async {
                    let stream = tcp(endpoint).await?;
                    handshake(stream, endpoint, settings, expected.clone()).await
                })
                .await?;
                Ok((conn, key, None))
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
                let (conn, key) = with_retries(&label, settings.connect_timeout, || async {
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
                .await?;
                Ok((conn, key, Some(jump.host_key.clone())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::auth::Credentials;
    use crate::ssh::settings::{Bastion, Endpoint};

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINGwoM0qHi3UCNskOgmX7C4Z1WMQBrd/cEL7joIjfvFC";

    fn settings(host: &str, bastion: Option<&str>) -> Settings {
        let endpoint = |host: &str| Endpoint {
            host: host.into(),
            port: 22,
            user: "root".into(),
        };
        Settings {
            endpoint: endpoint(host),
            credentials: Credentials::default(),
            host_key: None,
            connect_timeout: std::time::Duration::from_secs(1),
            bastion: bastion.map(|b| Bastion {
                endpoint: endpoint(b),
                host_key: Some(HostKey::parse(KEY).unwrap()),
            }),
        }
    }

    #[test]
    fn routes_include_the_bastion_and_drop_a_self_jump() {
        let direct = Route::of(&settings("10.0.0.5", None));
        let jumped = Route::of(&settings("10.0.0.5", Some("192.0.2.1")));
        assert_ne!(direct, jumped);
        let self_jump = without_self_jump(&settings("192.0.2.1", Some("192.0.2.1")));
        assert!(self_jump.bastion.is_none());
        assert_eq!(self_jump.host_key, Some(HostKey::parse(KEY).unwrap()));
        assert_eq!(
            Route::of(&self_jump),
            Route::of(&settings("192.0.2.1", None))
        );
    }

    #[test]
    fn slots_are_keyed_by_credentials_and_the_bastion_key() {
        let base = settings("10.0.0.5", Some("192.0.2.1"));
        let key = |seed: u8| {
            let private = russh::keys::PrivateKey::from(
                russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]),
            );
            Arc::new(private)
        };
        let with_keys = |keys: Vec<Arc<russh::keys::PrivateKey>>, agent: bool| {
            let mut s = base.clone();
            s.credentials = Credentials { keys, agent };
            Slot::of(&s)
        };
        assert_eq!(
            with_keys(vec![key(1)], false),
            with_keys(vec![key(1)], false)
        );
        assert_ne!(
            with_keys(vec![key(1)], false),
            with_keys(vec![key(2)], false)
        );
        assert_ne!(
            with_keys(vec![key(1)], false),
            with_keys(vec![key(1)], true)
        );
        assert_ne!(
            with_keys(vec![key(1), key(2)], false),
            with_keys(vec![key(2), key(1)], false)
        );
        let mut other_bastion_key = base.clone();
        other_bastion_key.bastion.as_mut().unwrap().host_key = None;
        assert_ne!(Slot::of(&base), Slot::of(&other_bastion_key));
        // The key never appears in the slot's debug output.
        let text = format!("{:?}", with_keys(vec![key(1)], false));
        assert!(!text.contains("PRIVATE"), "{text}");
    }

    #[test]
    fn recorded_pins_are_per_route() {
        let pool = Pool::new(1);
        let key = HostKey::parse(KEY).unwrap();
        pool.pin(&settings("10.0.0.5", None), key.clone());
        assert_eq!(pool.pinned(&settings("10.0.0.5", None)), Some(key));
        assert_eq!(pool.pinned(&settings("10.0.0.5", Some("192.0.2.1"))), None);
    }
}
