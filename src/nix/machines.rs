//! Nix's machines file (`/etc/nix/machines`, `--builders @file`): the model of
//! one remote builder, the exact 8-column rendering, a parser for files written
//! by hand, and the checks that keep a rendered file loadable by Nix.
//!
//! Not here: where the file is written or how (that is the
//! `nixbuild_machines_file` resource), and Terraform values (the resource maps
//! its blocks onto [`Machine`] and the checks' messages onto attribute paths).
//!
//! The format, as Nix (2.8 and later) reads it: entries are separated by
//! newlines or `;`; in each entry everything from `#` on is a comment; the
//! columns are separated by whitespace and `-` (or a missing column) means
//! "default":
//!
//! 1. store URI (`ssh://…` or `ssh-ng://…`), 2. systems (comma-separated),
//! 3. SSH identity file, 4. max jobs, 5. speed factor, 6. supported features,
//! 7. mandatory features (both comma-separated), 8. base64 of the builder's
//!    public host key line.

use std::fmt;

use crate::ssh::settings::{check_host, check_user};
use crate::ssh::HostKey;

/// One remote builder: one line of the machines file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    pub uri: String,
    /// Empty: Nix assumes the client's own system.
    pub systems: Vec<String>,
    pub ssh_key: Option<String>,
    /// `None`: Nix's default, 1.
    pub max_jobs: Option<u64>,
    /// `None`: Nix's default, 1.
    pub speed_factor: Option<u64>,
    pub supported_features: Vec<String>,
    pub mandatory_features: Vec<String>,
    /// Base64 of an OpenSSH public key line (column 8).
    pub public_host_key: Option<String>,
}

/// The column marker Nix reads as "use the default".
const DEFAULT: &str = "-";

fn column(value: Option<String>) -> String {
    value
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| DEFAULT.to_string())
}

fn list_column(values: &[String]) -> String {
    column(Some(values.join(",")))
}

impl Machine {
    /// The machine's line: exactly 8 columns separated by one space, `-` for
    /// every default or empty column. Values are taken as they are; run
    /// [`Machine::problems`] first to be sure Nix reads them back the same.
    pub fn render(&self) -> String {
        [
            column(Some(self.uri.clone())),
            list_column(&self.systems),
            column(self.ssh_key.clone()),
            column(self.max_jobs.map(|n| n.to_string())),
            column(self.speed_factor.map(|n| n.to_string())),
            list_column(&self.supported_features),
            list_column(&self.mandatory_features),
            column(self.public_host_key.clone()),
        ]
        .join(" ")
    }

    /// Every problem of this machine as (column name, message), in column order.
    /// Empty means Nix loads the line and reads back exactly these values.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut check = |name: &'static str, result: Result<(), String>| {
            if let Err(e) = result {
                out.push((name, e));
            }
        };
        check("uri", check_uri(&self.uri));
        for system in &self.systems {
            check("systems", check_system(system));
        }
        if let Some(key) = &self.ssh_key {
            check("ssh_key", check_ssh_key(key));
        }
        if let Some(n) = self.max_jobs {
            check("max_jobs", check_count(n as f64).map(|_| ()));
        }
        if let Some(n) = self.speed_factor {
            check("speed_factor", check_count(n as f64).map(|_| ()));
        }
        for feature in &self.supported_features {
            check("supported_features", check_feature(feature));
        }
        for feature in &self.mandatory_features {
            check("mandatory_features", check_feature(feature));
        }
        if let Some(key) = &self.public_host_key {
            check("public_host_key", check_public_host_key(key).map(|_| ()));
        }
        out
    }
}

/// The whole file: one line per machine, in the given order, each ending in a
/// newline. No machines: the empty file (Nix then builds nothing remotely).
pub fn render(machines: &[Machine]) -> String {
    machines.iter().map(|m| m.render() + "\n").collect()
}

/// The one-line form for `--builders` / `--option builders` / `builders =` in
/// nix.conf: the same entries joined with `; `.
pub fn builders_line(machines: &[Machine]) -> String {
    machines
        .iter()
        .map(Machine::render)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The nix.conf lines that make Nix use a machines file at `path`, and let the
/// builders fetch dependencies from their own substituters instead of through
/// the client.
pub fn nix_conf_for_file(path: &str) -> String {
    format!("builders = @{path}\nbuilders-use-substitutes = true\n")
}

/// Like [`nix_conf_for_file`] but with the machines inline, for when no file is
/// written.
pub fn nix_conf_inline(machines: &[Machine]) -> String {
    format!(
        "builders = {}\nbuilders-use-substitutes = true\n",
        builders_line(machines)
    )
}

/// The `nix build` invocation that builds only on `machines` (no local build
/// slots) and lets them substitute dependencies themselves; the installable is
/// appended by the user. The builders line is shell-quoted as one word.
pub fn nix_build_command(machines: &[Machine]) -> String {
    // Rendered lines never hold a NUL (the checks refuse control characters),
    // and quoting fails only on NUL.
    let line = builders_line(machines).replace('\0', "");
    let quoted = crate::ssh::quote::quote(&line).unwrap_or_default();
    format!(
        "nix build --max-jobs 0 --option builders {quoted} --option builders-use-substitutes true"
    )
}

/// A Nix string literal holding `text` exactly.
fn nix_string(text: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn nix_list(items: &[String]) -> String {
    if items.is_empty() {
        return "[ ]".into();
    }
    let items: Vec<String> = items.iter().map(|i| nix_string(i)).collect();
    format!("[ {} ]", items.join(" "))
}

impl Machine {
    /// The store URI split the way NixOS's `nix.buildMachines` takes it:
    /// (protocol, user, host name with any `?key=value` settings).
    fn uri_parts(&self) -> (&str, Option<&str>, &str) {
        let (protocol, rest) = self
            .uri
            .split_once("://")
            .unwrap_or(("ssh", self.uri.as_str()));
        let authority_end = rest.find('?').unwrap_or(rest.len());
        match rest[..authority_end].split_once('@') {
            Some((user, _)) => (protocol, Some(user), &rest[user.len() + 1..]),
            None => (protocol, None, rest),
        }
    }

    /// This machine as one `nix.buildMachines` element (a Nix attribute set).
    /// Defaults are spelled out as NixOS would apply them (1 job, speed 1).
    fn to_nix(&self) -> String {
        let (protocol, user, host) = self.uri_parts();
        let mut fields = vec![
            format!("hostName = {};", nix_string(host)),
            format!("protocol = {};", nix_string(protocol)),
        ];
        if let Some(user) = user {
            fields.push(format!("sshUser = {};", nix_string(user)));
        }
        if let Some(key) = &self.ssh_key {
            fields.push(format!("sshKey = {};", nix_string(key)));
        }
        fields.push(format!("systems = {};", nix_list(&self.systems)));
        fields.push(format!("maxJobs = {};", self.max_jobs.unwrap_or(1)));
        fields.push(format!("speedFactor = {};", self.speed_factor.unwrap_or(1)));
        fields.push(format!(
            "supportedFeatures = {};",
            nix_list(&self.supported_features)
        ));
        fields.push(format!(
            "mandatoryFeatures = {};",
            nix_list(&self.mandatory_features)
        ));
        if let Some(key) = &self.public_host_key {
            fields.push(format!("publicHostKey = {};", nix_string(key)));
        }
        let body: String = fields.iter().map(|f| format!("    {f}\n")).collect();
        format!("  {{\n{body}  }}\n")
    }
}

/// The machines as a `nix.buildMachines` value for NixOS and nix-darwin
/// clients: a Nix list of attribute sets (hostName, sshUser, sshKey, protocol,
/// systems, maxJobs, speedFactor, supportedFeatures, mandatoryFeatures,
/// publicHostKey), in machine order. NixOS writes the same 8 columns from it.
pub fn build_machines_nix(machines: &[Machine]) -> String {
    if machines.is_empty() {
        return "[ ]\n".into();
    }
    let items: String = machines.iter().map(Machine::to_nix).collect();
    format!("[\n{items}]\n")
}

/// Why a machines file does not parse: the line (1-based) and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parse a machines file (or a `builders` value) the way Nix does: split the
/// text at newlines and `;` first, then drop everything from `#` on in each
/// piece, then split the piece at whitespace. Fewer than 8 columns and `-`
/// mean defaults. (So, as in Nix, a `;` inside a comment still starts a new
/// entry.) Numbers must be whole and column 8 must be base64, as Nix requires;
/// other values are taken as written: use [`Machine::problems`] to judge them.
pub fn parse(text: &str) -> Result<Vec<Machine>, ParseError> {
    let mut machines = Vec::new();
    for (index, line) in text.split('\n').enumerate() {
        for entry in line.split(';') {
            let entry = entry.split('#').next().unwrap_or_default();
            let columns: Vec<&str> = entry.split_whitespace().collect();
            if columns.is_empty() {
                continue;
            }
            let error = |message: String| ParseError {
                line: index + 1,
                message,
            };
            if columns.len() > 8 {
                return Err(error(format!(
                    "{} columns in `{}`; a machine has at most 8",
                    columns.len(),
                    entry.trim()
                )));
            }
            let get = |i: usize| columns.get(i).copied().filter(|c| *c != DEFAULT);
            let list = |i: usize| -> Vec<String> {
                get(i)
                    .map(|c| {
                        c.split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let number = |i: usize, name: &str| -> Result<Option<u64>, ParseError> {
                get(i)
                    .map(|c| {
                        c.parse::<u64>()
                            .map_err(|_| error(format!("{name} `{c}` is not a whole number")))
                    })
                    .transpose()
            };
            let Some(uri) = get(0) else {
                return Err(error("the first column (the store URI) is `-`".into()));
            };
            let public_host_key = get(7).map(str::to_string);
            if let Some(key) = &public_host_key {
                if base64_decode(key).is_none() {
                    return Err(error(format!("column 8 `{key}` is not base64")));
                }
            }
            machines.push(Machine {
                uri: uri.to_string(),
                systems: list(1),
                ssh_key: get(2).map(str::to_string),
                max_jobs: number(3, "max jobs")?,
                speed_factor: number(4, "speed factor")?,
                supported_features: list(5),
                mandatory_features: list(6),
                public_host_key,
            });
        }
    }
    Ok(machines)
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

/// Characters that would split a column, an entry or start a comment.
fn format_breaking(c: char) -> bool {
    c.is_whitespace() || c.is_control() || matches!(c, ';' | '#')
}

/// A store URI Nix can build on: `ssh://` or `ssh-ng://`, an optional `user@`,
/// a host name or address, and optional `?key=value` store settings. No port:
/// Nix hands the authority to `ssh` as a host name, so a port goes in
/// `~/.ssh/config` (or `NIX_SSHOPTS`) of the user running the builds.
pub fn check_uri(uri: &str) -> Result<(), String> {
    const EXAMPLE: &str = "e.g. `ssh-ng://nixbuild@203.0.113.7`";
    if let Some(c) = uri.chars().find(|c| format_breaking(*c)) {
        return Err(format!(
            "`{uri}` contains {}, which would break the machines file",
            describe_char(c)
        ));
    }
    let Some(rest) = uri
        .strip_prefix("ssh-ng://")
        .or_else(|| uri.strip_prefix("ssh://"))
    else {
        return Err(format!(
            "`{uri}` must start with `ssh://` or `ssh-ng://` ({EXAMPLE})"
        ));
    };
    let (authority, query) = match rest.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (rest, None),
    };
    if authority.contains('/') {
        return Err(format!(
            "`{uri}` has a path after the host; a builder URI is only `scheme://[user@]host` ({EXAMPLE})"
        ));
    }
    let host = match authority.rsplit_once('@') {
        Some((user, host)) => {
            check_user(user).map_err(|e| format!("the user in `{uri}`: {e}"))?;
            host
        }
        None => authority,
    };
    if host.is_empty() {
        return Err(format!("`{uri}` has no host ({EXAMPLE})"));
    }
    check_host(host).map_err(|e| format!("the host in `{uri}`: {e}"))?;
    let colons = host.matches(':').count();
    if colons == 1 {
        return Err(format!(
            "`{uri}` has a port; Nix passes the host to ssh as a name, so set the machine's \
             `ssh_config` (nixbuild_builder.ssh_config: its Host alias carries the port) instead"
        ));
    }
    let ipv6 = colons > 1;
    let valid_char = |c: char| {
        c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' || (ipv6 && c == ':')
    };
    if let Some(c) = host.chars().find(|c| !valid_char(*c)) {
        return Err(format!(
            "the host in `{uri}` contains {}: use a host name, an IPv4 address or an IPv6 address without brackets",
            describe_char(c)
        ));
    }
    if let Some(query) = query {
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some((key, _)) if !key.is_empty() => {}
                _ => {
                    return Err(format!(
                        "`{uri}`: `{pair}` is not a `key=value` store setting"
                    ))
                }
            }
        }
    }
    Ok(())
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\t' => "a tab".into(),
        '\n' => "a newline".into(),
        c if c.is_control() => format!("a control character (U+{:04X})", c as u32),
        c => format!("`{c}`"),
    }
}

/// A Nix system name: `<cpu>-<os>` in lower case, such as `x86_64-linux`,
/// `aarch64-darwin` or `armv7l-linux`.
pub fn check_system(system: &str) -> Result<(), String> {
    let part_ok = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    match system.split_once('-') {
        Some((cpu, os)) if part_ok(cpu) && part_ok(os) => Ok(()),
        _ => Err(format!(
            "`{system}` is not a Nix system name: expected `<cpu>-<os>` in lower case, such as `x86_64-linux` or `aarch64-darwin`"
        )),
    }
}

/// An SSH identity file for column 3: an absolute path (Nix runs `ssh` from
/// the daemon, whose working directory and home are not the user's) that fits
/// in one column.
pub fn check_ssh_key(path: &str) -> Result<(), String> {
    if path.is_empty() {
        return Err("the identity file path is empty; omit `ssh_key` to use ssh's default".into());
    }
    if let Some(c) = path.chars().find(|c| format_breaking(*c)) {
        return Err(format!(
            "`{path}` contains {}, which cannot appear in a machines-file column",
            describe_char(c)
        ));
    }
    if !path.starts_with('/') {
        return Err(format!(
            "`{path}` is not an absolute path; Nix runs ssh from its daemon, whose working directory and home are not yours"
        ));
    }
    Ok(())
}

/// Max jobs and speed factor: a whole number from 1 to 2^32-1 (Nix reads them
/// as unsigned ints; 0 jobs would make a builder that never builds).
pub fn check_count(n: f64) -> Result<u64, String> {
    if n.fract() != 0.0 || !n.is_finite() {
        return Err(format!("{n} is not a whole number"));
    }
    if n < 1.0 {
        return Err(format!("{n} is less than 1"));
    }
    if n > f64::from(u32::MAX) {
        return Err(format!("{n} is larger than {} (Nix's limit)", u32::MAX));
    }
    Ok(n as u64)
}

/// A system feature such as `kvm` or `big-parallel`: one word, no commas
/// (features are comma-separated in the file).
pub fn check_feature(feature: &str) -> Result<(), String> {
    if feature.is_empty() {
        return Err("a feature name is empty".into());
    }
    if feature == DEFAULT {
        // A list of just `-` renders as the column `-`: Nix's "default".
        return Err("`-` is not a feature name: in the machines file it means \"none\"".into());
    }
    if let Some(c) = feature.chars().find(|c| format_breaking(*c) || *c == ',') {
        return Err(format!(
            "feature `{feature}` contains {}; a feature is one word such as `kvm` or `big-parallel`",
            describe_char(c)
        ));
    }
    Ok(())
}

/// Column 8: base64 of an OpenSSH public key line, as `host_key_base64` of the
/// `nixbuild_host` data source gives it.
pub fn check_public_host_key(encoded: &str) -> Result<HostKey, String> {
    if encoded.chars().any(format_breaking) || encoded.is_empty() {
        // A plain key line ("ssh-ed25519 AAAA…") is the usual mistake.
        return Err(if HostKey::parse(encoded).is_ok() {
            format!(
                "`{encoded}` is a key line, but column 8 needs it base64-encoded: use `base64encode(…)` or `host_key_base64`"
            )
        } else {
            format!("`{encoded}` is not base64 of a public key line")
        });
    }
    HostKey::from_base64_line(encoded).map_err(|e| {
        format!(
            "`{encoded}` does not decode to an OpenSSH public key line ({e}); give base64 of e.g. the content of /etc/ssh/ssh_host_ed25519_key.pub"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINGwoM0qHi3UCNskOgmX7C4Z1WMQBrd/cEL7joIjfvFC";

    fn b64(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    fn full() -> Machine {
        Machine {
            uri: "ssh-ng://nixbuild@203.0.113.7".into(),
            systems: vec!["x86_64-linux".into(), "i686-linux".into()],
            ssh_key: Some("/root/.ssh/nixbuild".into()),
            max_jobs: Some(8),
            speed_factor: Some(2),
            supported_features: vec!["kvm".into(), "big-parallel".into()],
            mandatory_features: vec!["benchmark".into()],
            public_host_key: Some(b64(ED)),
        }
    }

    fn minimal() -> Machine {
        Machine {
            uri: "ssh://builder.example.org".into(),
            ..Default::default()
        }
    }

    /// The exact format, byte for byte, is pinned by a golden file.
    #[test]
    fn golden_file() {
        let machines = vec![
            full(),
            minimal(),
            Machine {
                uri: "ssh-ng://root@2001:db8::7?remote-store=/nix".into(),
                systems: vec!["aarch64-linux".into()],
                max_jobs: Some(1),
                ..Default::default()
            },
        ];
        let golden = include_str!("../../tests/golden/machines.txt");
        assert_eq!(render(&machines), golden);
        assert_eq!(parse(golden).unwrap(), machines);
        for m in &machines {
            assert!(m.problems().is_empty(), "{m:?}: {:?}", m.problems());
            assert_eq!(m.render().split(' ').count(), 8);
        }
        assert_eq!(
            builders_line(&machines),
            golden.trim_end().replace('\n', "; ")
        );
    }

    #[test]
    fn defaults_are_dashes() {
        assert_eq!(
            minimal().render(),
            "ssh://builder.example.org - - - - - - -"
        );
        // Empty lists and strings are defaults too, never an empty column.
        let m = Machine {
            ssh_key: Some(String::new()),
            systems: vec![],
            ..minimal()
        };
        assert_eq!(m.render(), "ssh://builder.example.org - - - - - - -");
        assert_eq!(render(&[]), "");
        assert_eq!(builders_line(&[]), "");
    }

    #[test]
    fn nix_conf_snippets() {
        assert_eq!(
            nix_conf_for_file("/etc/nix/machines"),
            "builders = @/etc/nix/machines\nbuilders-use-substitutes = true\n"
        );
        assert_eq!(
            nix_conf_inline(&[minimal(), minimal()]),
            "builders = ssh://builder.example.org - - - - - - -; ssh://builder.example.org - - - - - - -\nbuilders-use-substitutes = true\n"
        );
    }

    /// Files people write: comments, blank lines, `;` separators, short lines,
    /// tabs and runs of spaces, and Nix's quirk that `;` splits even a comment.
    #[test]
    fn parses_hand_written_files() {
        let text = "\
# Our builders
   
ssh://a x86_64-linux   # the old one
ssh-ng://root@b\tx86_64-linux,aarch64-linux /k 4 ; ssh://c - - - 3

#ssh://commented-out x86_64-linux
ssh://d - - - - kvm,nixos-test big-parallel # trailing; ssh://e
";
        let got = parse(text).unwrap();
        let uris: Vec<&str> = got.iter().map(|m| m.uri.as_str()).collect();
        assert_eq!(
            uris,
            [
                "ssh://a",
                "ssh-ng://root@b",
                "ssh://c",
                "ssh://d",
                "ssh://e"
            ]
        );
        assert_eq!(got[0].systems, ["x86_64-linux"]);
        assert_eq!(got[0].max_jobs, None);
        assert_eq!(got[1].systems, ["x86_64-linux", "aarch64-linux"]);
        assert_eq!(got[1].ssh_key.as_deref(), Some("/k"));
        assert_eq!(got[1].max_jobs, Some(4));
        assert_eq!(got[2].systems, Vec::<String>::new());
        assert_eq!(got[2].speed_factor, Some(3));
        assert_eq!(got[3].supported_features, ["kvm", "nixos-test"]);
        assert_eq!(got[3].mandatory_features, ["big-parallel"]);
        assert_eq!(parse("").unwrap(), vec![]);
        assert_eq!(parse("# nothing\n\n;;\n").unwrap(), vec![]);
        // Windows line endings are whitespace.
        assert_eq!(
            parse("ssh://a x86_64-linux\r\n").unwrap()[0].systems,
            ["x86_64-linux"]
        );
    }

    #[test]
    fn rejects_unparseable_files_with_the_line() {
        let e = parse("ssh://a\nssh://b - - four\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("`four`"), "{e}");
        let e = parse("ssh://a - - - - - - - extra").unwrap_err();
        assert!(e.message.contains("9 columns"), "{e}");
        let e = parse("\n\n- x86_64-linux").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(parse("ssh://a - - - - - - %%%").is_err());
        assert!(parse("ssh://a - - -1").is_err());
    }

    #[test]
    fn uri_checks() {
        for good in [
            "ssh://h",
            "ssh-ng://h",
            "ssh-ng://nixbuild@builder-1.example.org",
            "ssh://root@10.0.0.1",
            "ssh-ng://root@fe80::1",
            "ssh-ng://u@h?remote-store=/mnt/nix&compress=true",
        ] {
            assert_eq!(check_uri(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("", "must start with"),
            ("h1", "must start with"),
            ("http://h", "must start with"),
            ("ssh://", "no host"),
            ("ssh-ng://root@", "no host"),
            ("ssh://@h", "user"),
            ("ssh://h:2222", "port"),
            ("ssh://h/path", "path"),
            ("ssh://a b", "a space"),
            ("ssh://a;b", "`;`"),
            ("ssh://a#b", "`#`"),
            ("ssh://-oProxyCommand=x", "must not start with `-`"),
            ("ssh://h?novalue", "key=value"),
            ("ssh://[::1]", "brackets"),
        ] {
            let e = check_uri(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    /// Found by the machines fuzz target: a mandatory (or supported) feature
    /// list of just `-` passed `problems()` but rendered as the column `-`,
    /// which Nix reads as no features at all.
    #[test]
    fn a_lone_dash_feature_is_refused() {
        let text =
            "ssh://.7 x86_64-lhnux,i686-linux /root/.ssh/nixbuild 8 2 k/builder.example.or ,- -\n";
        let machines = parse(text).unwrap();
        assert_eq!(machines[0].mandatory_features, ["-"]);
        assert_eq!(
            machines[0].problems(),
            [(
                "mandatory_features",
                "`-` is not a feature name: in the machines file it means \"none\"".to_string()
            )]
        );
        assert!(check_feature("-").is_err());
        assert!(check_feature("a-b").is_ok());
    }

    #[test]
    fn system_feature_key_and_count_checks() {
        for good in [
            "x86_64-linux",
            "aarch64-darwin",
            "armv7l-linux",
            "i686-linux",
        ] {
            assert_eq!(check_system(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "x86_64",
            "x86_64-",
            "-linux",
            "X86_64-linux",
            "x86_64 linux",
            "a-b-c",
        ] {
            assert!(check_system(bad).is_err(), "{bad}");
        }
        assert_eq!(check_feature("big-parallel"), Ok(()));
        for bad in ["", "big parallel", "a,b", "a;b", "a#b"] {
            assert!(check_feature(bad).is_err(), "{bad}");
        }
        assert_eq!(check_ssh_key("/root/.ssh/id"), Ok(()));
        for bad in ["", "id_ed25519", "~/.ssh/id", "/a b", "-"] {
            assert!(check_ssh_key(bad).is_err(), "{bad}");
        }
        assert_eq!(check_count(1.0), Ok(1));
        assert_eq!(check_count(64.0), Ok(64));
        for bad in [0.0, -1.0, 1.5, f64::NAN, 1e12] {
            assert!(check_count(bad).is_err(), "{bad}");
        }
        assert!(check_public_host_key(&b64(ED)).is_ok());
        let e = check_public_host_key(ED).unwrap_err();
        assert!(e.contains("base64encode"), "{e}");
        assert!(check_public_host_key("bm90IGEga2V5").is_err()); // "not a key"
        assert!(check_public_host_key("%%%").is_err());
        assert!(check_public_host_key("").is_err());
    }

    #[test]
    fn round_trip_of_examples() {
        for m in [full(), minimal()] {
            let text = render(std::slice::from_ref(&m));
            assert_eq!(parse(&text).unwrap(), vec![m.clone()]);
            assert_eq!(render(&parse(&text).unwrap()), text);
        }
    }

    /// A small deterministic generator (xorshift), so the property test needs
    /// no extra crate and every failure is reproducible from the seed.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }
        fn word(&mut self, alphabet: &str, len: usize) -> String {
            let chars: Vec<char> = alphabet.chars().collect();
            (0..len)
                .map(|_| chars[self.below(chars.len() as u64) as usize])
                .collect()
        }
        fn maybe<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> Option<T> {
            if self.below(3) == 0 {
                None
            } else {
                Some(f(self))
            }
        }
        fn list(&mut self, f: impl Fn(&mut Self) -> String) -> Vec<String> {
            let n = self.below(4);
            (0..n).map(|_| f(self)).collect()
        }
        fn machine(&mut self) -> Machine {
            const LOWER: &str = "abcdefghijklmnopqrstuvwxyz0123456789_";
            let host = match self.below(3) {
                0 => format!(
                    "{}.{}",
                    self.word("abcdefghijklmnopqrstuvwxyz", 1) + &self.word(LOWER, 6),
                    self.pick(&["example.org", "internal", "lan"])
                ),
                1 => format!(
                    "10.{}.{}.{}",
                    self.below(256),
                    self.below(256),
                    self.below(256)
                ),
                _ => format!("fd00::{:x}", self.below(65536)),
            };
            let user = self.maybe(|g| g.word("abcdefghijklmnopqrstuvwxyz", 1) + &g.word(LOWER, 5));
            let query = if self.below(5) == 0 {
                "?compress=true"
            } else {
                ""
            };
            let scheme = self.pick(&["ssh", "ssh-ng"]);
            let uri = match user {
                Some(u) => format!("{scheme}://{u}@{host}{query}"),
                None => format!("{scheme}://{host}{query}"),
            };
            let system = |g: &mut Self| {
                format!(
                    "{}-{}",
                    g.pick(&["x86_64", "aarch64", "i686", "armv7l", "riscv64"]),
                    g.pick(&["linux", "darwin", "freebsd"])
                )
            };
            let feature = |g: &mut Self| {
                let base = g.pick(&[
                    "kvm",
                    "big-parallel",
                    "nixos-test",
                    "benchmark",
                    "gccarch-x86-64-v3",
                ]);
                format!("{base}{}", g.word("xyz", 1))
            };
            let keys = [
                ED,
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ5DofdXXNOW+iHCkB8EMZ/6rhaT69FUZcmve8Z7mcdb",
            ];
            Machine {
                uri,
                systems: self.list(system),
                ssh_key: self.maybe(|g| format!("/keys/{}", g.word(LOWER, 8))),
                max_jobs: self.maybe(|g| 1 + g.below(64)),
                speed_factor: self.maybe(|g| 1 + g.below(10)),
                supported_features: self.list(feature),
                mandatory_features: self.list(feature),
                public_host_key: self.maybe(|g| b64(keys[g.below(2) as usize])),
            }
        }
    }

    #[test]
    fn nix_build_command_passes_the_line_as_one_word() {
        let fleet = vec![full(), minimal()];
        let command = nix_build_command(&fleet);
        let words = shlex::split(&command).expect("the command is shell words");
        assert_eq!(
            words,
            [
                "nix",
                "build",
                "--max-jobs",
                "0",
                "--option",
                "builders",
                &builders_line(&fleet),
                "--option",
                "builders-use-substitutes",
                "true"
            ]
        );
        assert_eq!(
            shlex::split(&nix_build_command(&[])).unwrap()[6],
            "",
            "no machines: an empty builders value"
        );
    }

    #[test]
    fn build_machines_expression() {
        let expected = format!(
            "[\n  {{\n    hostName = \"203.0.113.7\";\n    protocol = \"ssh-ng\";\n    sshUser = \"nixbuild\";\n    sshKey = \"/root/.ssh/nixbuild\";\n    systems = [ \"x86_64-linux\" \"i686-linux\" ];\n    maxJobs = 8;\n    speedFactor = 2;\n    supportedFeatures = [ \"kvm\" \"big-parallel\" ];\n    mandatoryFeatures = [ \"benchmark\" ];\n    publicHostKey = \"{}\";\n  }}\n  {{\n    hostName = \"builder.example.org\";\n    protocol = \"ssh\";\n    systems = [ ];\n    maxJobs = 1;\n    speedFactor = 1;\n    supportedFeatures = [ ];\n    mandatoryFeatures = [ ];\n  }}\n]\n",
            b64(ED)
        );
        assert_eq!(build_machines_nix(&[full(), minimal()]), expected);
        assert_eq!(build_machines_nix(&[]), "[ ]\n");
        let odd = Machine {
            uri: "ssh-ng://root@2001:db8::7?remote-store=/nix".into(),
            ..Default::default()
        };
        let (protocol, user, host) = odd.uri_parts();
        assert_eq!(
            (protocol, user, host),
            ("ssh-ng", Some("root"), "2001:db8::7?remote-store=/nix")
        );
        assert_eq!(nix_string("a\"b\\c${d}$e\n"), r#""a\"b\\c\${d}$e\n""#);
    }

    /// Property: for many generated valid fleets, parse(render(x)) == x, the
    /// rendering is stable, every line has exactly 8 columns, and the one-line
    /// `builders` form parses to the same machines.
    #[test]
    fn render_parse_render_round_trip_property() {
        let mut g = Gen(0x9E37_79B9_7F4A_7C15);
        for case in 0..2000 {
            let n = g.below(6) as usize;
            let fleet: Vec<Machine> = (0..n).map(|_| g.machine()).collect();
            for m in &fleet {
                assert!(
                    m.problems().is_empty(),
                    "case {case}: {m:?}: {:?}",
                    m.problems()
                );
            }
            let text = render(&fleet);
            let parsed = parse(&text).unwrap_or_else(|e| panic!("case {case}: {e}\n{text}"));
            assert_eq!(parsed, fleet, "case {case}:\n{text}");
            assert_eq!(render(&parsed), text, "case {case}");
            assert!(text.lines().all(|l| l.split(' ').count() == 8), "{text}");
            assert_eq!(parse(&builders_line(&fleet)).unwrap(), fleet, "case {case}");
        }
    }
}
