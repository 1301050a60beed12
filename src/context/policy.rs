//! The connection policies, per purpose, written once: how long a connection
//! may keep retrying, and whether a failure is a warning (the prior state is
//! kept) or an error. Pure functions, so the whole table is unit-tested.
//!
//! | failure            | create | read (resource) | update | delete | data source |
//! |--------------------|--------|-----------------|--------|--------|-------------|
//! | unreachable        | error  | warning         | error  | error  | error       |
//! | auth failed        | error  | warning         | error  | error  | error       |
//! | host key mismatch  | error  | error           | error  | error  | error       |
//!
//! A Read that cannot reach a host keeps the prior state, so `terraform plan`
//! and `terraform destroy` of a dead fleet still work; a changed host key is
//! never a warning.

use std::time::Duration;

use crate::ssh::SshError;

/// Why a resource or data source connects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    Create,
    /// A resource's refresh: it has a prior state to fall back to.
    Read,
    Update,
    Delete,
    /// A data source read: there is nothing to fall back to.
    DataSource,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Warning,
    Error,
}

impl Purpose {
    /// How long a connection for this purpose may keep retrying, given the
    /// configured `connect_timeout`.
    pub fn connect_budget(self, connect_timeout: Duration) -> Duration {
        connect_timeout
    }

    /// Warning or error for a failed connection.
    pub fn severity(self, error: &SshError) -> Severity {
        match (self, error) {
            (_, SshError::HostKeyMismatch { .. }) => Severity::Error,
            (Purpose::Read, SshError::Unreachable { .. } | SshError::AuthFailed { .. }) => {
                Severity::Warning
            }
            _ => Severity::Error,
        }
    }
}

/// Severity, summary and detail of the diagnostic for a failed connection to
/// `endpoint` (`user@host:port`).
pub fn diagnose(purpose: Purpose, endpoint: &str, error: &SshError) -> (Severity, String, String) {
    let severity = purpose.severity(error);
    let (summary, detail) = match (error, severity) {
        (SshError::HostKeyMismatch { .. }, _) => (
            format!("Host key of {endpoint} changed"),
            format!(
                "{error}. If the host was really re-installed, set its new key in `ssh.host_key` \
                 and run `terraform apply -refresh=false` (see the security guide, \
                 \"Re-keying a host\"); otherwise treat this as a possible man-in-the-middle attack."
            ),
        ),
        (_, Severity::Warning) => (
            format!("{endpoint} is unreachable; keeping the last known state"),
            format!(
                "{error}. Drift cannot be checked until the host is back; destroy still works \
                 with on_destroy = \"keep\"."
            ),
        ),
        (_, Severity::Error) => (format!("Cannot connect to {endpoint}"), error.to_string()),
    };
    (severity, summary, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unreachable() -> SshError {
        SshError::Unreachable {
            host: "root@203.0.113.7:22".into(),
            reason: "connection refused".into(),
            waited: Duration::from_secs(10),
        }
    }

    fn auth_failed() -> SshError {
        SshError::AuthFailed {
            host: "root@203.0.113.7:22".into(),
            user: "root".into(),
            reason: "the server rejected key SHA256:abc".into(),
        }
    }

    fn mismatch() -> SshError {
        SshError::HostKeyMismatch {
            host: "root@203.0.113.7:22".into(),
            expected: "ssh-ed25519 AAAA… (SHA256:old)".into(),
            presented: "ssh-ed25519 BBBB… (SHA256:new)".into(),
        }
    }

    const ALL: [Purpose; 5] = [
        Purpose::Create,
        Purpose::Read,
        Purpose::Update,
        Purpose::Delete,
        Purpose::DataSource,
    ];

    #[test]
    fn only_a_resource_read_turns_an_unreachable_host_into_a_warning() {
        for purpose in ALL {
            let want = if purpose == Purpose::Read {
                Severity::Warning
            } else {
                Severity::Error
            };
            assert_eq!(purpose.severity(&unreachable()), want, "{purpose:?}");
            assert_eq!(purpose.severity(&auth_failed()), want, "{purpose:?}");
        }
    }

    #[test]
    fn a_changed_host_key_is_an_error_for_every_purpose() {
        for purpose in ALL {
            assert_eq!(
                purpose.severity(&mismatch()),
                Severity::Error,
                "{purpose:?}"
            );
            let (_, summary, detail) = diagnose(purpose, "root@h:22", &mismatch());
            assert_eq!(summary, "Host key of root@h:22 changed");
            assert!(detail.contains("nothing was run on the host"), "{detail}");
            assert!(detail.contains("-refresh=false"), "{detail}");
            assert!(detail.contains("man-in-the-middle"), "{detail}");
        }
    }

    #[test]
    fn messages_name_the_endpoint_and_what_happens_to_the_state() {
        let (severity, summary, detail) = diagnose(Purpose::Read, "root@h:22", &unreachable());
        assert_eq!(severity, Severity::Warning);
        assert!(summary.contains("root@h:22") && summary.contains("keeping the last known state"));
        assert!(detail.contains("connection refused"), "{detail}");
        let (severity, summary, _) = diagnose(Purpose::Create, "root@h:22", &unreachable());
        assert_eq!(severity, Severity::Error);
        assert_eq!(summary, "Cannot connect to root@h:22");
    }
}
