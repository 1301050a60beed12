//! Typed SSH errors. Callers branch on them (a host-key mismatch is never retried,
//! an unreachable host during Read is a warning), and every message names the host
//! and, for commands, the step and the tail of the remote output.

use std::time::Duration;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SshError {
    #[error(
        "host key mismatch for {host}: expected {expected}, but the host presented {presented}. \
         Nothing was run on the host: the connection was closed before logging in"
    )]
    HostKeyMismatch {
        host: String,
        expected: String,
        presented: String,
    },

    #[error("cannot reach {host}: {reason}{}", waited_text(*.waited))]
    Unreachable {
        host: String,
        reason: String,
        waited: Duration,
    },

    #[error("authentication as {host} failed: {reason}")]
    AuthFailed {
        host: String,
        user: String,
        reason: String,
    },

    #[error("{host}: step `{step}` {}{}", exit_text(*.exit), tail_text(.tail))]
    CommandFailed {
        host: String,
        step: String,
        exit: Option<u32>,
        tail: String,
    },

    #[error("{host}: step `{step}` refused: {reason}")]
    Refused {
        host: String,
        step: String,
        reason: String,
    },

    #[error("{host}: step `{step}` gave output the provider cannot read: {reason}")]
    Unexpected {
        host: String,
        step: String,
        reason: String,
    },

    #[error("{host}: SSH session failed during step `{step}`: {reason}")]
    Session {
        host: String,
        step: String,
        reason: String,
    },

    /// Terraform asked the provider to stop ([`crate::interrupt`]) while this
    /// step ran; `outcome` says what became of the remote side.
    #[error("{host}: step `{step}` interrupted: Terraform asked the provider to stop; {outcome}")]
    Interrupted {
        host: String,
        step: String,
        outcome: String,
    },
}

impl SshError {
    /// The step a command error names (`None` for connection errors).
    pub fn step(&self) -> Option<&str> {
        match self {
            Self::CommandFailed { step, .. }
            | Self::Refused { step, .. }
            | Self::Unexpected { step, .. }
            | Self::Session { step, .. }
            | Self::Interrupted { step, .. } => Some(step),
            _ => None,
        }
    }

    /// Whether Terraform's stop ended this step ([`crate::interrupt::stop`]).
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Self::Interrupted { .. })
    }
}

fn waited_text(waited: Duration) -> String {
    if waited.is_zero() {
        String::new()
    } else {
        // Whole seconds: nobody needs nanoseconds of a connect timeout.
        format!(
            " (kept retrying for {}; raise ssh.connect_timeout if the host needs longer)",
            humantime::format_duration(Duration::from_secs(waited.as_secs().max(1)))
        )
    }
}

fn exit_text(exit: Option<u32>) -> String {
    match exit {
        Some(code) => format!("failed with exit status {code}"),
        None => "ended without an exit status (connection lost or killed by a signal)".into(),
    }
}

fn tail_text(tail: &str) -> String {
    if tail.trim().is_empty() {
        " (no output)".into()
    } else {
        format!("; last output lines:\n{tail}")
    }
}

impl SshError {
    /// Errors worth another connection attempt while a host boots. A
    /// host-key mismatch is never among them, nor a rejected login: retrying
    /// would only repeat it (and may lock the account out).
    pub fn is_retryable(&self) -> bool {
        matches!(self, SshError::Unreachable { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreachable_hosts_are_retried() {
        let unreachable = SshError::Unreachable {
            host: "h".into(),
            reason: "refused".into(),
            waited: Duration::ZERO,
        };
        let auth = SshError::AuthFailed {
            host: "h".into(),
            user: "root".into(),
            reason: "rejected".into(),
        };
        let mismatch = SshError::HostKeyMismatch {
            host: "h".into(),
            expected: "a".into(),
            presented: "b".into(),
        };
        assert!(unreachable.is_retryable());
        assert!(!auth.is_retryable());
        assert!(!mismatch.is_retryable());
    }

    #[test]
    fn auth_failure_names_the_endpoint_once() {
        let e = SshError::AuthFailed {
            host: "root@203.0.113.7:22".into(),
            user: "root".into(),
            reason: "the server rejected key SHA256:abc".into(),
        };
        assert_eq!(
            e.to_string(),
            "authentication as root@203.0.113.7:22 failed: the server rejected key SHA256:abc"
        );
    }
}
