//! Nix store paths: `/nix/store/<hash>-<name>` with a 32-character nix-base32
//! hash. Parsing only; nothing here touches a store.

use std::fmt;

/// The store directory every supported builder uses.
pub const STORE_DIR: &str = "/nix/store";

/// Nix's base32 alphabet (no `e`, `o`, `u`, `t`).
pub const NIX_BASE32: &str = "0123456789abcdfghijklmnpqrsvwxyz";

/// A parsed store path (the top-level path; no sub-paths inside it).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StorePath {
    hash: String,
    name: String,
}

impl StorePath {
    /// Parse `/nix/store/<hash>-<name>`.
    pub fn parse(path: &str) -> Result<Self, String> {
        let rest = path
            .strip_prefix(STORE_DIR)
            .and_then(|r| r.strip_prefix('/'))
            .ok_or_else(|| format!("`{path}` is not under {STORE_DIR}/"))?;
        if rest.contains('/') {
            return Err(format!(
                "`{path}` is a file inside a store path, not a store path"
            ));
        }
        let (hash, name) = rest
            .split_once('-')
            .ok_or_else(|| format!("`{path}` lacks the `<hash>-<name>` form"))?;
        if !is_hash_part(hash) {
            return Err(format!(
                "`{path}` does not start with a 32-character nix-base32 hash"
            ));
        }
        if name.is_empty()
            || name.starts_with('.')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-._?=".contains(c))
        {
            return Err(format!("`{path}` has an invalid store path name"));
        }
        Ok(Self {
            hash: hash.to_string(),
            name: name.to_string(),
        })
    }

    /// The 32-character hash part, as used in `<hash>.narinfo`.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The `<hash>-<name>` base name, as narinfo `References:` lists it.
    pub fn base_name(&self) -> String {
        format!("{}-{}", self.hash, self.name)
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{STORE_DIR}/{}-{}", self.hash, self.name)
    }
}

/// Whether `hash` is a 32-character nix-base32 string.
pub fn is_hash_part(hash: &str) -> bool {
    hash.len() == 32 && hash.chars().all(|c| NIX_BASE32.contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_paths() {
        let p = StorePath::parse("/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app").unwrap();
        assert_eq!(p.hash(), "3z85mp8hy1d9h3xhrpw7nmfj9q4va65n");
        assert_eq!(p.name(), "nbt-app");
        assert_eq!(p.base_name(), "3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app");
        assert_eq!(
            p.to_string(),
            "/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app"
        );
        let drv = StorePath::parse("/nix/store/k5gaxlwgnxm3bryylqlflg99kxab977q-nbt-app.drv");
        assert_eq!(drv.unwrap().name(), "nbt-app.drv");
    }

    #[test]
    fn rejects_malformed_paths() {
        for bad in [
            "",
            "/nix/store",
            "/nix/store/",
            "/tmp/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-x",
            "/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n",
            "/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-",
            "/nix/store/short-x",
            // `e`, `o`, `u`, `t` are not in the alphabet.
            "/nix/store/ez85mp8hy1d9h3xhrpw7nmfj9q4va65n-x",
            "/nix/store/3Z85MP8HY1D9H3XHRPW7NMFJ9Q4VA65N-x",
            "/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-x/bin/sh",
            "/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-a b",
            "/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-x\n",
        ] {
            assert!(StorePath::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hash_part() {
        assert!(is_hash_part("3z85mp8hy1d9h3xhrpw7nmfj9q4va65n"));
        assert!(!is_hash_part("3z85mp8hy1d9h3xhrpw7nmfj9q4va65"));
        assert!(!is_hash_part("tz85mp8hy1d9h3xhrpw7nmfj9q4va65n"));
    }

    proptest::proptest! {
        /// Property: every `<hash>-<name>` made of valid parts parses to
        /// those parts and prints back as written.
        #[test]
        fn valid_store_paths_parse_and_print_back(
            hash in "[0-9a-df-np-sv-z]{32}",
            name in "[a-zA-Z0-9+_?=-][a-zA-Z0-9+._?=-]{0,40}",
        ) {
            let text = format!("{STORE_DIR}/{hash}-{name}");
            let path = StorePath::parse(&text).unwrap();
            proptest::prop_assert_eq!(path.hash(), hash.as_str());
            proptest::prop_assert_eq!(path.name(), name.as_str());
            proptest::prop_assert_eq!(path.to_string(), text);
        }

        /// Property: any text is refused or prints back exactly.
        #[test]
        fn any_text_is_refused_or_prints_back(text in "(/nix/store/)?\\PC{0,50}") {
            if let Ok(path) = StorePath::parse(&text) {
                proptest::prop_assert_eq!(path.to_string(), text);
                proptest::prop_assert!(is_hash_part(path.hash()));
            }
        }
    }
}
