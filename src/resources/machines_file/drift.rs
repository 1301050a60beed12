//! Drift: what Read logs and warns about when the file on disk is no longer
//! what this resource wrote.

use tf_provider::Diagnostics;

use super::location::Location;
use crate::nix::machines::{self};

/// A managed path that is a symbolic link (or not a regular file): a
/// warning and an INFO line naming it, never what it points at.
pub(super) fn refused_drift(diags: &mut Diagnostics, location: &Location, reason: &str) {
    tracing::info!(
        file = %location.describe(),
        "{reason}; the next apply replaces it with the file"
    );
    diags.warning(
        "Managed file replaced by a link",
        format!(
            "{reason}. Someone who can write its directory may have pointed it elsewhere; the next apply replaces the link with the file (the link's target is left alone)."
        ),
        location.attribute(),
    );
}

/// Log, from the parsed files, how the file on disk differs from what this
/// resource wrote: the plan shows the raw text, this says what it means.
pub(super) fn log_drift(location: &Location, written: &str, found: &str) {
    let uris = |text: &str| -> Result<Vec<String>, String> {
        machines::parse(text)
            .map(|ms| ms.into_iter().map(|m| m.uri).collect())
            .map_err(|e| e.to_string())
    };
    match (uris(written), uris(found)) {
        (Ok(before), Ok(after)) => {
            let added: Vec<&String> = after.iter().filter(|u| !before.contains(u)).collect();
            let removed: Vec<&String> = before.iter().filter(|u| !after.contains(u)).collect();
            tracing::info!(
                file = %location.describe(),
                ?added,
                ?removed,
                "machines file changed outside Terraform; the next apply rewrites it"
            );
        }
        (_, Err(e)) => tracing::info!(
            file = %location.describe(),
            "machines file changed outside Terraform and no longer parses ({e}); the next apply rewrites it"
        ),
        _ => {}
    }
}
