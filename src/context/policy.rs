//! The connection policies, per purpose, written once: how long a connection
//! may keep retrying, and whether a failure is a warning (the prior state is
//! kept) or an error. Pure functions, so the whole table is unit-tested.
//!
//! | failure            | create | read (resource) | plan    | update | delete | data source |
//! |--------------------|--------|-----------------|---------|--------|--------|-------------|
//! | unreachable        | error  | warning         | warning | error  | error  | error       |
//! | auth failed        | error  | warning         | warning | error  | error  | error       |
//! | host key mismatch  | error  | error           | error   | error  | error  | error       |
//! | interrupted (stop) | error  | error           | error   | error  | error  | error       |
//!
//! "plan" is a plan's optional look at a host (`nixbuild_cache_push`'s
//! evaluation of its installables): a host that does not answer leaves
//! values unknown until the apply, with a warning; it never fails the plan.
//!
//! A Read that cannot reach a host keeps the prior state, so `terraform plan`
//! and `terraform destroy` of a dead fleet still work; a changed host key is
//! never a warning, nor is Terraform's stop (an "Interrupted" error made by
//! [`super::Context::connect`]; a Read still keeps its prior state). A Read
//! gives up connecting after [`READ_CONNECT_BUDGET`] whatever
//! `connect_timeout` says (that setting is for hosts still booting on
//! create), and its remote commands get [`READ_COMMAND_BUDGET`]. Rejected
//! logins are never retried (see `SshError::is_retryable`).

use std::time::Duration;

use crate::ssh::SshError;

/// How long a resource's Read keeps trying to connect: a dead host's warning
/// comes within 15 s.
pub const READ_CONNECT_BUDGET: Duration = Duration::from_secs(10);

/// How long the remote commands of one Read or data source may take.
pub const READ_COMMAND_BUDGET: Duration = Duration::from_secs(120);

/// What a resource's Read warning adds to the error: advice for a resource
/// with a state, which a data source's report leaves out.
pub const READ_WARNING_ADVICE: &str =
    "Drift cannot be checked until the host is back; destroy still works with on_destroy = \"keep\".";

/// What a refused login adds: where the login's user and key come from. It
/// is not retried (the server's answer would not change).
pub const LOGIN_ADVICE: &str = "The host answered and refused the key: check `ssh.user` and `ssh.private_key_file` (or the keys of the agent, `ssh.agent`), on the resource or in the provider's `ssh` block, against the host's authorized_keys. A refused login is not retried.";

/// What a plan's warning adds: the plan goes on without the host.
pub const PLAN_WARNING_ADVICE: &str =
    "The plan goes on without it: what it would have evaluated is \"known after apply\".";

/// The cause alone from a Read warning's `detail`, without the resource
/// advice ([`READ_WARNING_ADVICE`]).
pub fn cause_of(detail: &str) -> &str {
    detail
        .strip_suffix(READ_WARNING_ADVICE)
        .map(|cause| cause.trim_end().trim_end_matches('.'))
        .unwrap_or(detail)
}

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
    /// A plan's optional look at a host: without it, values stay unknown.
    Plan,
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
        match self {
            Purpose::Read | Purpose::Plan => connect_timeout.min(READ_CONNECT_BUDGET),
            // Create, update and delete may meet a host that is still booting;
            // a data source is often read right after its host was created.
            _ => connect_timeout,
        }
    }

    /// Warning or error for a failed connection.
    pub fn severity(self, error: &SshError) -> Severity {
        match (self, error) {
            (_, SshError::HostKeyMismatch { .. }) => Severity::Error,
            (
                Purpose::Read | Purpose::Plan,
                SshError::Unreachable { .. } | SshError::AuthFailed { .. },
            ) => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

/// Severity, summary and detail of the diagnostic for a failed connection to
/// `endpoint` (`user@host:port`).
pub fn diagnose(purpose: Purpose, endpoint: &str, error: &SshError) -> (Severity, String, String) {
    let severity = purpose.severity(error);
    let (summary, detail) = match (error, severity) {
        (SshError::HostKeyMismatch { host, .. }, _) => {
            // The mismatch may be the bastion's, on the way to `endpoint`.
            let (who, attribute) = if host == endpoint {
                ("host", "ssh.host_key")
            } else {
                ("bastion", "ssh.bastion_host_key")
            };
            (
                format!("Host key of {host} changed"),
                format!(
                    "{error}. If the {who} was really re-installed, set its new key in \
                     `{attribute}` and run `terraform apply -refresh=false` (see the security \
                     guide, \"Re-keying a host\"); otherwise treat this as a possible \
                     man-in-the-middle attack."
                ),
            )
        }
        (SshError::AuthFailed { .. }, Severity::Warning) if purpose == Purpose::Plan => (
            format!("Login to {endpoint} refused: values stay unknown until the apply"),
            format!("{error}. {LOGIN_ADVICE} {PLAN_WARNING_ADVICE}"),
        ),
        (_, Severity::Warning) if purpose == Purpose::Plan => (
            format!("{endpoint} did not answer: values stay unknown until the apply"),
            format!("{error}. {PLAN_WARNING_ADVICE}"),
        ),
        (SshError::AuthFailed { .. }, Severity::Warning) => (
            format!("Login to {endpoint} refused; keeping the last known state"),
            format!("{error}. {LOGIN_ADVICE} {READ_WARNING_ADVICE}"),
        ),
        (_, Severity::Warning) => (
            format!("{endpoint} is unreachable; keeping the last known state"),
            format!("{error}. {READ_WARNING_ADVICE}"),
        ),
        (SshError::AuthFailed { .. }, Severity::Error) => (
            format!("Login to {endpoint} refused"),
            format!("{error}. {LOGIN_ADVICE}"),
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

    const ALL: [Purpose; 6] = [
        Purpose::Create,
        Purpose::Read,
        Purpose::Update,
        Purpose::Delete,
        Purpose::DataSource,
        Purpose::Plan,
    ];

    fn looks_without_fallback(purpose: Purpose) -> bool {
        matches!(purpose, Purpose::Read | Purpose::Plan)
    }

    #[test]
    fn a_plan_warning_says_the_values_wait_for_the_apply() {
        let (severity, summary, detail) =
            diagnose(Purpose::Plan, "root@203.0.113.7:22", &unreachable());
        assert_eq!(severity, Severity::Warning);
        assert!(summary.contains("until the apply"), "{summary}");
        assert!(detail.contains(PLAN_WARNING_ADVICE), "{detail}");
        assert!(!detail.contains("Drift"), "{detail}");
        let (severity, _, _) = diagnose(Purpose::Plan, "root@203.0.113.7:22", &mismatch());
        assert_eq!(severity, Severity::Error, "a changed key fails the plan");
    }

    /// Issue 26, item 5: a refused login says so (not "unreachable") and
    /// names where the user and key come from, for every purpose.
    #[test]
    fn a_refused_login_is_named_as_such_with_the_settings_to_check() {
        for purpose in ALL {
            let (_, summary, detail) = diagnose(purpose, "root@203.0.113.7:22", &auth_failed());
            assert!(
                summary.starts_with("Login to root@203.0.113.7:22 refused"),
                "{purpose:?}: {summary}"
            );
            assert!(!summary.contains("unreachable"), "{summary}");
            for setting in ["ssh.user", "ssh.private_key_file", "ssh.agent"] {
                assert!(detail.contains(setting), "{purpose:?}: {detail}");
            }
        }
        let (_, summary, _) = diagnose(Purpose::Read, "root@203.0.113.7:22", &unreachable());
        assert!(summary.contains("unreachable"), "{summary}");
    }

    #[test]
    fn a_data_source_reports_the_cause_without_the_resource_advice() {
        let (_, _, detail) = diagnose(Purpose::Read, "root@203.0.113.7:22", &auth_failed());
        assert!(detail.contains(READ_WARNING_ADVICE), "{detail}");
        let cause = cause_of(&detail);
        assert!(cause.starts_with(&auth_failed().to_string()), "{cause}");
        assert!(
            cause.contains("ssh.private_key_file"),
            "the login advice stays: {cause}"
        );
        assert!(!cause.contains("Drift"));
        assert_eq!(cause_of("no advice here."), "no advice here.");
    }

    #[test]
    fn only_a_resource_read_or_a_plan_turns_an_unreachable_host_into_a_warning() {
        for purpose in ALL {
            let want = if looks_without_fallback(purpose) {
                Severity::Warning
            } else {
                Severity::Error
            };
            assert_eq!(purpose.severity(&unreachable()), want, "{purpose:?}");
            assert_eq!(purpose.severity(&auth_failed()), want, "{purpose:?}");
        }
    }

    #[test]
    fn only_a_resource_read_or_a_plan_caps_the_connect_timeout() {
        let five_minutes = Duration::from_secs(300);
        for purpose in ALL {
            let want = if looks_without_fallback(purpose) {
                READ_CONNECT_BUDGET
            } else {
                five_minutes
            };
            assert_eq!(purpose.connect_budget(five_minutes), want, "{purpose:?}");
            // A shorter timeout is kept as it is.
            assert_eq!(
                purpose.connect_budget(Duration::from_secs(3)),
                Duration::from_secs(3)
            );
        }
        assert!(READ_CONNECT_BUDGET < Duration::from_secs(15));
    }

    #[test]
    fn an_interrupted_connection_is_an_error_for_every_purpose() {
        let interrupted = SshError::Interrupted {
            host: "root@203.0.113.7:22".into(),
            step: "connect".into(),
            outcome: "stopped connecting after 3 attempts in 2s".into(),
        };
        assert!(!interrupted.is_retryable());
        for purpose in ALL {
            assert_eq!(
                purpose.severity(&interrupted),
                Severity::Error,
                "{purpose:?}"
            );
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
            let (_, summary, detail) = diagnose(purpose, "root@203.0.113.7:22", &mismatch());
            assert_eq!(summary, "Host key of root@203.0.113.7:22 changed");
            assert!(detail.contains("Nothing was run on the host"), "{detail}");
            assert!(detail.contains("-refresh=false"), "{detail}");
            assert!(detail.contains("man-in-the-middle"), "{detail}");
            assert!(detail.contains("`ssh.host_key`"), "{detail}");
        }
    }

    #[test]
    fn a_bastion_key_mismatch_names_the_bastion() {
        // The mismatch is the jump host's, met on the way to another target.
        let (_, summary, detail) = diagnose(Purpose::Read, "root@10.0.0.5:22", &mismatch());
        assert_eq!(summary, "Host key of root@203.0.113.7:22 changed");
        assert!(
            detail.contains("If the bastion was really re-installed"),
            "{detail}"
        );
        assert!(detail.contains("`ssh.bastion_host_key`"), "{detail}");
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
