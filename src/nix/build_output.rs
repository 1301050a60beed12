//! The JSON that Nix commands print on the builder: `nix build --json`
//! (Nix 2.8 has no `--print-out-paths`) and `nix path-info --json [-r]`.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::store_path::StorePath;

/// One element of `nix build --json`: a derivation and its built outputs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Built {
    #[serde(rename = "drvPath", default)]
    pub drv_path: Option<String>,
    /// Output name → store path. Absent for an installable that is already a
    /// store path (Nix prints `{"path": …}` then).
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    #[serde(default)]
    pub path: Option<String>,
}

impl Built {
    /// Output paths, in output-name order (or the plain path).
    pub fn out_paths(&self) -> Vec<String> {
        if self.outputs.is_empty() {
            self.path.iter().cloned().collect()
        } else {
            self.outputs.values().cloned().collect()
        }
    }
}

/// Parse `nix build --json` output: a JSON list of [`Built`]; every path is
/// checked to be a store path.
pub fn parse_build_json(text: &str) -> Result<Vec<Built>, String> {
    let built: Vec<Built> = serde_json::from_str(text.trim())
        .map_err(|e| format!("cannot parse `nix build --json` output: {e}"))?;
    for b in &built {
        for p in b.out_paths() {
            StorePath::parse(&p)?;
        }
    }
    Ok(built)
}

/// Out paths of one installable: the `nix build --json` output of a build of
/// that installable alone, flattened in order, without duplicates.
pub fn out_paths_of(text: &str) -> Result<Vec<String>, String> {
    let mut paths = Vec::new();
    for b in parse_build_json(text)? {
        for p in b.out_paths() {
            if !paths.contains(&p) {
                paths.push(p);
            }
        }
    }
    if paths.is_empty() {
        return Err("`nix build --json` reported no output paths".into());
    }
    Ok(paths)
}

/// One element of `nix path-info --json`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct PathInfo {
    pub path: String,
    #[serde(rename = "narSize", default)]
    pub nar_size: u64,
    #[serde(default)]
    pub references: Vec<String>,
    /// `false` for a path the queried store does not have.
    #[serde(default = "yes")]
    pub valid: bool,
}

fn yes() -> bool {
    true
}

/// Parse `nix path-info --json` output.
pub fn parse_path_info(text: &str) -> Result<Vec<PathInfo>, String> {
    let infos: Vec<PathInfo> = serde_json::from_str(text.trim())
        .map_err(|e| format!("cannot parse `nix path-info --json` output: {e}"))?;
    for info in &infos {
        StorePath::parse(&info.path)?;
    }
    Ok(infos)
}

/// A closure as `nix path-info --json -r` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Closure {
    /// Sorted, without duplicates.
    pub paths: Vec<String>,
    pub nar_size: u64,
}

impl Closure {
    pub fn from_path_info(infos: &[PathInfo]) -> Result<Self, String> {
        let mut sizes = BTreeMap::new();
        for info in infos {
            if !info.valid {
                return Err(format!("{} is not valid in the builder's store", info.path));
            }
            sizes.insert(info.path.clone(), info.nar_size);
        }
        Ok(Self {
            nar_size: sizes.values().sum(),
            paths: sizes.into_keys().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nix_build_json() {
        let text = r#"[{"drvPath":"/nix/store/k5gaxlwgnxm3bryylqlflg99kxab977q-nbt-app.drv","outputs":{"out":"/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app"}},{"drvPath":"/nix/store/g37rgcq0728zhqhkz2bf81hawc2al2q7-nbt-tool.drv","outputs":{"out":"/nix/store/z062vldr5b3hadzwibq7ga8j4k82sm23-nbt-tool","dev":"/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep"}}]"#;
        let built = parse_build_json(text).unwrap();
        assert_eq!(built.len(), 2);
        assert_eq!(
            built[1].out_paths(),
            [
                "/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep",
                "/nix/store/z062vldr5b3hadzwibq7ga8j4k82sm23-nbt-tool"
            ]
        );
        assert_eq!(out_paths_of(text).unwrap().len(), 3);
        let plain = r#"[{"path":"/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep"}]"#;
        assert_eq!(out_paths_of(plain).unwrap().len(), 1);
        assert!(out_paths_of("[]").is_err());
        assert!(parse_build_json("building…").is_err());
        assert!(parse_build_json(r#"[{"outputs":{"out":"/tmp/x"}}]"#).is_err());
    }

    #[test]
    fn parses_path_info_and_sums_the_closure() {
        let text = r#"[{"path":"/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app","narHash":"sha256-5bnx","narSize":200,"references":["/nix/store/fq97lzmldxn55asasxdb7mp0j1i6lgmy-nbt-lib"],"ultimate":true},{"path":"/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep","narSize":136,"references":[]},{"path":"/nix/store/fq97lzmldxn55asasxdb7mp0j1i6lgmy-nbt-lib","narSize":184,"references":["/nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep"]}]"#;
        let infos = parse_path_info(text).unwrap();
        let closure = Closure::from_path_info(&infos).unwrap();
        assert_eq!(closure.nar_size, 520);
        assert_eq!(closure.paths.len(), 3);
        assert!(closure.paths.windows(2).all(|w| w[0] < w[1]));

        let missing = parse_path_info(
            r#"[{"path":"/nix/store/3z85mp8hy1d9h3xhrpw7nmfj9q4va65n-nbt-app","valid":false}]"#,
        )
        .unwrap();
        assert!(!missing[0].valid);
        assert!(Closure::from_path_info(&missing).is_err());
    }
}
