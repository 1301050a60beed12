//! Where the file goes ([`Location`]): nowhere, a local path, or a path on a
//! remote `target`; and the companion files beside it.

use tf_provider::value::Value;
use tf_provider::AttributePath;

use super::schema::*;
use crate::context::SshBlock;

/// Where the file goes, once every input is known.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Location {
    Nowhere,
    Local(String),
    Remote {
        host: String,
        path: String,
        ssh: Box<Value<SshBlock>>,
    },
}

impl Location {
    /// `None` while a deciding value is unknown.
    pub(super) fn of(state: &MachinesFileState) -> Option<Self> {
        match (&state.path, &state.target) {
            (Value::Unknown, _) | (_, Value::Unknown) => None,
            (Value::Value(path), _) => Some(Self::Local(path.clone())),
            (Value::Null, Value::Null) => Some(Self::Nowhere),
            (Value::Null, Value::Value(target)) => {
                let path = match &target.path {
                    Value::Value(p) => p.clone(),
                    Value::Null => DEFAULT_TARGET_PATH.to_string(),
                    Value::Unknown => return None,
                };
                Some(Self::Remote {
                    host: target.host.as_ref_option()?.clone(),
                    path,
                    ssh: Box::new(target.ssh.clone()),
                })
            }
        }
    }

    /// The attribute a diagnostic about the file points at.
    pub(super) fn attribute(&self) -> AttributePath {
        match self {
            Self::Remote { .. } => AttributePath::new("target").index(0).attribute("path"),
            _ => AttributePath::new("path"),
        }
    }

    /// The file beside this one with `suffix` appended to its name.
    pub(super) fn companion(&self, suffix: &str) -> Self {
        match self {
            Self::Nowhere => Self::Nowhere,
            Self::Local(path) => Self::Local(format!("{path}{suffix}")),
            Self::Remote { host, path, ssh } => Self::Remote {
                host: host.clone(),
                path: format!("{path}{suffix}"),
                ssh: ssh.clone(),
            },
        }
    }

    pub(super) fn path(&self) -> Option<&str> {
        match self {
            Self::Nowhere => None,
            Self::Local(path) | Self::Remote { path, .. } => Some(path),
        }
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Self::Nowhere => "nowhere".into(),
            Self::Local(path) => path.clone(),
            Self::Remote { host, path, .. } => format!("{path} on {host}"),
        }
    }
}
