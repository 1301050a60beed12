//! The `<hash>.narinfo` files of a binary cache: `Key: value` lines describing
//! one store path (where its NAR is, its size, references and signatures).
//! Parsing only; fetching them is `cache::http`.

/// The fields of a narinfo the provider uses. Unknown keys are ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NarInfo {
    pub store_path: String,
    pub url: String,
    pub compression: Option<String>,
    pub nar_hash: String,
    pub nar_size: u64,
    pub file_size: Option<u64>,
    /// Base names (`<hash>-<name>`) of the referenced store paths.
    pub references: Vec<String>,
    pub deriver: Option<String>,
    /// `Sig:` lines, each `<key name>:<base64 signature>`.
    pub sigs: Vec<String>,
}

impl NarInfo {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut info = NarInfo::default();
        for (n, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once(": ")
                .or_else(|| line.split_once(':'))
                .ok_or_else(|| format!("narinfo line {} is not `Key: value`", n + 1))?;
            let value = value.trim();
            let number = |v: &str| {
                v.parse::<u64>()
                    .map_err(|_| format!("narinfo {key} is not a number: `{v}`"))
            };
            match key {
                "StorePath" => info.store_path = value.to_string(),
                "URL" => info.url = value.to_string(),
                "Compression" => info.compression = Some(value.to_string()),
                "NarHash" => info.nar_hash = value.to_string(),
                "NarSize" => info.nar_size = number(value)?,
                "FileSize" => info.file_size = Some(number(value)?),
                "References" => {
                    info.references = value.split_whitespace().map(str::to_string).collect()
                }
                "Deriver" if value != "unknown-deriver" => info.deriver = Some(value.to_string()),
                "Sig" => info.sigs.push(value.to_string()),
                _ => {}
            }
        }
        if info.store_path.is_empty() || info.url.is_empty() || info.nar_hash.is_empty() {
            return Err("narinfo lacks StorePath, URL or NarHash".into());
        }
        Ok(info)
    }

    /// Whether a `Sig:` from the key named `key_name` (the part of a public key
    /// before `:`) is present.
    pub fn signed_by(&self, key_name: &str) -> bool {
        self.sigs
            .iter()
            .any(|s| s.split_once(':').map(|(k, _)| k) == Some(key_name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "StorePath: /nix/store/z062vldr5b3hadzwibq7ga8j4k82sm23-nbt-tool
URL: nar/1117jr4bgzbz63c6h1w651cghskpddh1q69na1xcyrws8rlzb2l5.nar.xz
Compression: xz
FileHash: sha256:1117jr4bgzbz63c6h1w651cghskpddh1q69na1xcyrws8rlzb2l5
FileSize: 184
NarHash: sha256:1rd6gh8laxsqphpwjb6kjincv6m92b1fc7m6i0f7yw1nnjxqp64x
NarSize: 176
References: d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep
Deriver: g37rgcq0728zhqhkz2bf81hawc2al2q7-nbt-tool.drv
Sig: nbt-probe-1:ZNUqQmoUXS7VBUr79ddu1yHjn9ZLFIpKHq6we6a8fd5UExL5FoAFtKzoRlY+XHFvBwG8Hd+KFNmbfg/0I06fAA==
";

    #[test]
    fn parses_a_real_narinfo() {
        let n = NarInfo::parse(SAMPLE).unwrap();
        assert_eq!(
            n.store_path,
            "/nix/store/z062vldr5b3hadzwibq7ga8j4k82sm23-nbt-tool"
        );
        assert_eq!(n.nar_size, 176);
        assert_eq!(n.file_size, Some(184));
        assert_eq!(n.compression.as_deref(), Some("xz"));
        assert_eq!(n.references, ["d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep"]);
        assert!(n.signed_by("nbt-probe-1"));
        assert!(!n.signed_by("cache.nixos.org-1"));
    }

    #[test]
    fn empty_references_and_errors() {
        let n = NarInfo::parse(
            "StorePath: /nix/store/d6h0ywspvbdgg3kb3p1zj2vcpbb21a6v-nbt-dep\nURL: nar/x.nar\nNarHash: sha256:x\nNarSize: 1\nReferences: \n",
        )
        .unwrap();
        assert!(n.references.is_empty());
        assert!(n.sigs.is_empty());
        assert!(NarInfo::parse("<html>not found</html>").is_err());
        assert!(NarInfo::parse("StorePath: /nix/store/x\nNarSize: big\n").is_err());
    }
}
