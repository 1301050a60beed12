//! Builders whose state release 0.1.0 wrote. 0.1.0 kept no ownership records
//! on the host (`/etc/nixbuild/users/<name>`): it created the build user, or
//! silently took an existing account of that name, and `on_destroy = "clean"`
//! deleted it either way. The current build would see that account as
//! foreign and refuse it; instead, such a state's build user is claimed
//! (recorded as created) before the next apply or clean, which keeps what
//! 0.1.0 promised that configuration. A state is from 0.1.0 when its private
//! state lacks `records_ownership` (every later build sets it).

use super::config::BuilderPrivate;

/// Whether `private` was written by a build that kept no ownership records.
pub fn is_legacy(private: &BuilderPrivate) -> bool {
    !private.records_ownership && !private.imported
}

/// The foreign-account finding of a Read, unless the state is from 0.1.0
/// (its build user is this resource's, and is claimed on the next apply).
pub fn foreign_user_finding(private: &BuilderPrivate, found: String) -> String {
    if is_legacy(private) {
        String::new()
    } else {
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_state_of_0_1_0_is_legacy() {
        // The private state 0.1.0 wrote: three fields, no `records_ownership`.
        let old: BuilderPrivate =
            serde_json::from_str(r#"{"token_salt":"s","token_fingerprint":"","imported":false}"#)
                .unwrap();
        assert!(is_legacy(&old));
        assert_eq!(foreign_user_finding(&old, "nixbuild".into()), "");
        let current = BuilderPrivate {
            records_ownership: true,
            ..old.clone()
        };
        assert!(!is_legacy(&current));
        assert_eq!(
            foreign_user_finding(&current, "nixbuild".into()),
            "nixbuild"
        );
        // An import is never legacy: a foreign account it finds is foreign.
        let imported = BuilderPrivate {
            imported: true,
            ..old
        };
        assert!(!is_legacy(&imported));
    }
}
