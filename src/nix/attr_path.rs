//! Attribute paths of installables, as users write them
//! (`homeConfigurations."dev@workstation".activationPackage`, `hello^out,dev`),
//! and the form Nix's command line reads.
//!
//! Users write segments as in the Nix language: a bare name, or a quoted
//! string with Nix's escapes (`\"`, `\\`, `\${`, `\n`, `\t`, `\r`; any other
//! `\c` is `c`). Nix's command line is different: the part after `#` is a URL
//! fragment, percent-decoded before Nix splits it at dots outside `"…"`, and
//! that splitter knows no escapes. So a fragment with `\`, `{`, `}` or a bare
//! `%` is "not a valid URL", and no fragment can name an attribute holding a
//! `"` (`%22` decodes to a quote that the splitter then reads as one).
//! [`AttrPath::to_cli`] therefore quotes every segment that is not a plain
//! identifier and percent-encodes what a fragment cannot carry.

/// A parsed attribute path with its optional `^outputs` suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// A leading `.`, passed on as written: newer Nix then looks the path up
    /// at the flake's top level only (no `packages.<system>.` prefix); Nix 2.8
    /// does not know it and finds no such attribute.
    pub top_level: bool,
    /// The attribute names, unescaped.
    pub names: Vec<String>,
    /// What follows `^` (`out,dev`, `*`), if given.
    pub outputs: Option<String>,
}

/// Characters a bare (unquoted) segment cannot hold: they end it, start a
/// quote or an interpolation, or are not part of a URL fragment.
fn ends_bare(c: char) -> bool {
    matches!(c, '.' | '"' | '^' | '#' | '\\' | '$' | '{' | '}' | '%') || c.is_whitespace()
}

impl AttrPath {
    /// Parse `text`. The error says what is wrong and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the attribute path is empty".into());
        }
        let mut chars = text.chars().peekable();
        let top_level = chars.peek() == Some(&'.');
        if top_level {
            chars.next();
        }
        let mut names = Vec::new();
        let mut outputs = None;
        loop {
            // One segment.
            let mut name = String::new();
            let quoted = chars.peek() == Some(&'"');
            match chars.peek() {
                Some('"') => {
                    chars.next();
                    loop {
                        match chars.next() {
                            None => {
                                return Err(format!(
                                    "the quoted name `\"{name}` has no closing `\"`"
                                ))
                            }
                            Some('"') => break,
                            Some('\\') => match chars.next() {
                                None => {
                                    return Err(format!(
                                        "the quoted name `\"{name}\\` ends in a lone `\\`"
                                    ))
                                }
                                Some('n') => name.push('\n'),
                                Some('t') => name.push('\t'),
                                Some('r') => name.push('\r'),
                                Some(c) => name.push(c),
                            },
                            Some('$') if chars.peek() == Some(&'{') => {
                                return Err(format!(
                                    "`${{` in the quoted name `\"{name}${{…` starts a Nix interpolation, which an installable cannot evaluate: write `\\${{` for a literal `${{`"
                                ))
                            }
                            Some(c) => name.push(c),
                        }
                    }
                    if name.is_empty() {
                        return Err(
                            "`\"\"` is an empty attribute name, which Nix's command line cannot select".into(),
                        );
                    }
                    if name.contains('"') {
                        return Err(format!(
                            "the attribute name {name:?} contains `\"`: Nix's command line has no escape for it (its installable parser ends a quoted name at any `\"`), so no installable can select it; rename the attribute"
                        ));
                    }
                }
                _ => {
                    while let Some(&c) = chars.peek() {
                        if ends_bare(c) {
                            break;
                        }
                        name.push(c);
                        chars.next();
                    }
                    if name.is_empty() {
                        return Err(match chars.peek() {
                            None if names.is_empty() => "the attribute path is empty".into(),
                            None => "the attribute path ends with `.`".into(),
                            Some('.') => "the attribute path has an empty name (`..`)".into(),
                            Some(&c) => bare_char_error(c),
                        });
                    }
                }
            }
            names.push(name);
            match chars.next() {
                None => break,
                Some('.') => continue,
                Some('^') => {
                    let rest: String = chars.by_ref().collect();
                    check_outputs(&rest)?;
                    outputs = Some(rest);
                    break;
                }
                Some(c) => {
                    let last = names.last().map(String::as_str).unwrap_or_default();
                    return Err(if quoted {
                        format!("`{c}` follows the quoted name {last:?}: put a `.` between names")
                    } else if c == '"' {
                        format!("a quote follows the name `{last}` directly: quote the whole name (`\"{last}…\"`) and put a `.` between names")
                    } else {
                        bare_char_error(c)
                    });
                }
            }
        }
        Ok(Self {
            top_level,
            names,
            outputs,
        })
    }

    /// The fragment Nix's command line reads for this path: plain
    /// identifiers as they are, every other name quoted and percent-encoded
    /// where a URL fragment (or Nix's `^` and `.` splitting) would misread it.
    pub fn to_cli(&self) -> String {
        let mut out = String::new();
        if self.top_level {
            out.push('.');
        }
        for (i, name) in self.names.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            if is_plain(name) {
                out.push_str(name);
            } else {
                out.push('"');
                for byte in name.bytes() {
                    if byte.is_ascii_alphanumeric() || b"-._~@:/+=,;!'()*".contains(&byte) {
                        out.push(byte as char);
                    } else {
                        out.push_str(&format!("%{byte:02X}"));
                    }
                }
                out.push('"');
            }
        }
        if let Some(outputs) = &self.outputs {
            out.push('^');
            out.push_str(outputs);
        }
        out
    }
}

fn bare_char_error(c: char) -> String {
    match c {
        '\\' | '$' | '{' | '}' | '%' | '#' => format!(
            "`{c}` cannot appear in an unquoted name: quote the name (`\"…\"`, with Nix's escapes)"
        ),
        c if c.is_whitespace() => {
            "whitespace cannot appear in an unquoted name: quote the name (`\"…\"`)".into()
        }
        c => format!("unexpected `{c}`"),
    }
}

/// A name Nix's command line reads unquoted and unencoded.
fn is_plain(name: &str) -> bool {
    name.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\'' | '+' | '*'))
}

/// `*`, or output names separated by commas.
fn check_outputs(spec: &str) -> Result<(), String> {
    let ok = spec == "*"
        || spec.split(',').all(|name| {
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+' | '.'))
        });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`^{spec}` is not an output selection: write `^*` or output names separated by commas (`^out,dev`)"
        ))
    }
}

/// What the builder's `nix build` gets for an installable: with a flake (or
/// `source`) the attribute path alone, rendered by [`AttrPath::to_cli`];
/// without one, a full installable whose part after the first `#` is
/// rendered the same way (store paths and references without `#` are left
/// as they are).
pub fn cli_installable(value: &str, in_flake: bool) -> Result<String, String> {
    if in_flake {
        return AttrPath::parse(value).map(|p| p.to_cli());
    }
    match value.split_once('#') {
        Some((reference, fragment)) if !fragment.is_empty() => {
            let path = AttrPath::parse(fragment)?;
            Ok(format!("{reference}#{}", path.to_cli()))
        }
        _ => Ok(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<String> {
        AttrPath::parse(text)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .names
    }

    #[test]
    fn quoted_segments_take_any_character_and_nix_escapes() {
        assert_eq!(
            names(r#"homeConfigurations."dev@workstation".activationPackage"#),
            ["homeConfigurations", "dev@workstation", "activationPackage"]
        );
        assert_eq!(names(r#"x."a.b""#), ["x", "a.b"]);
        assert_eq!(names(r#"x."user@host.domain""#), ["x", "user@host.domain"]);
        assert_eq!(names(r#"x."a/b:c+d""#), ["x", "a/b:c+d"]);
        assert_eq!(names(r#"x."a\\b""#), ["x", r"a\b"]);
        assert_eq!(names(r#"x."a\${b}""#), ["x", "a${b}"]);
        assert_eq!(names(r#"x."a$b""#), ["x", "a$b"]);
        assert_eq!(names(r#"x."tab\there""#), ["x", "tab\there"]);
        assert_eq!(names(r#"x."a b ✓""#), ["x", "a b ✓"]);
        assert_eq!(names(r#""a"."b""#), ["a", "b"]);
        assert_eq!(
            names("packages.x86_64-linux.hello"),
            ["packages", "x86_64-linux", "hello"]
        );
        let p = AttrPath::parse("hello^out,dev").unwrap();
        assert_eq!(
            (p.names, p.outputs.as_deref()),
            (vec!["hello".to_string()], Some("out,dev"))
        );
        assert_eq!(
            AttrPath::parse("hello^*").unwrap().outputs.as_deref(),
            Some("*")
        );
        assert!(
            AttrPath::parse(".packages.x86_64-linux.hello")
                .unwrap()
                .top_level
        );
        // Nix's command line takes `@` bare, too.
        assert_eq!(names("x.dev@host"), ["x", "dev@host"]);
    }

    #[test]
    fn refusals_say_why() {
        for (bad, why) in [
            ("", "empty"),
            ("a..b", "empty name"),
            ("a.", "ends with `.`"),
            (r#"x."dev@host"#, "no closing"),
            (r#"x."a\"b""#, "no escape for it"),
            (r#"x."a${b}""#, "interpolation"),
            (r#"x.""#, "no closing"),
            (r#"x."""#, "empty attribute name"),
            ("x.a b", "whitespace"),
            (r"x.a\b", "quote the name"),
            ("x.a{b", "quote the name"),
            (r#"x.a"b""#, "quote the whole name"),
            (r#"x."a"b"#, "put a `.` between"),
            ("hello^out dev", "not an output selection"),
            ("hello^", "not an output selection"),
        ] {
            let err = AttrPath::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad:?}: {err}");
        }
    }

    #[test]
    fn rendering_for_the_command_line() {
        for (written, cli) in [
            ("packages.x86_64-linux.hello", "packages.x86_64-linux.hello"),
            (
                r#"homeConfigurations."dev@workstation".activationPackage"#,
                r#"homeConfigurations."dev@workstation".activationPackage"#,
            ),
            ("x.dev@host", r#"x."dev@host""#),
            (r#"x."a.b""#, r#"x."a.b""#),
            (r#""plain".x"#, "plain.x"),
            (r#"x."a\\b \${c}%""#, r#"x."a%5Cb%20%24%7Bc%7D%25""#),
            (r#"x."a^b""#, r#"x."a%5Eb""#),
            (r##"x."#b""##, r#"x."%23b""#),
            ("hello^out,dev", "hello^out,dev"),
            (".top.level", ".top.level"),
            (r#"x."✓""#, r#"x."%E2%9C%93""#),
        ] {
            assert_eq!(AttrPath::parse(written).unwrap().to_cli(), cli, "{written}");
        }
        assert_eq!(
            cli_installable(r#"git+https://h/r?ref=main&rev=ab#x."a b""#, false).unwrap(),
            r#"git+https://h/r?ref=main&rev=ab#x."a%20b""#
        );
        assert_eq!(
            cli_installable("/nix/store/abc-x.drv^out", false).unwrap(),
            "/nix/store/abc-x.drv^out"
        );
        assert_eq!(cli_installable("nixpkgs#", false).unwrap(), "nixpkgs#");
        assert!(cli_installable(r#"nixpkgs#x."a"#, false).is_err());
    }

    /// The path as a user writes it: every name quoted, with Nix's escapes.
    fn written(path: &AttrPath) -> String {
        let names: Vec<String> = path
            .names
            .iter()
            .map(|n| format!("\"{}\"", n.replace('\\', "\\\\").replace('$', "\\$")))
            .collect();
        let outputs = path.outputs.as_ref().map(|o| format!("^{o}"));
        let top = if path.top_level { "." } else { "" };
        format!("{top}{}{}", names.join("."), outputs.unwrap_or_default())
    }

    /// How Nix's command line reads a fragment: outputs after `^`, then
    /// percent-decoding, then a split at dots outside `"…"` (no escapes).
    fn nix_reads(cli: &str) -> AttrPath {
        let (path, outputs) = match cli.split_once('^') {
            Some((p, o)) => (p, Some(o.to_string())),
            None => (cli, None),
        };
        let mut bytes = Vec::new();
        let mut rest = path.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            if b == b'%' {
                let hex = std::str::from_utf8(&tail[..2]).unwrap();
                bytes.push(u8::from_str_radix(hex, 16).unwrap());
                rest = &tail[2..];
            } else {
                assert!(!b" \\{}#".contains(&b), "{cli:?} is not a URL fragment");
                bytes.push(b);
                rest = tail;
            }
        }
        let decoded = String::from_utf8(bytes).unwrap();
        let (top_level, decoded) = match decoded.strip_prefix('.') {
            Some(d) => (true, d),
            None => (false, decoded.as_str()),
        };
        let (mut names, mut current, mut quoted) = (Vec::new(), String::new(), false);
        for c in decoded.chars() {
            match c {
                '.' if !quoted => names.push(std::mem::take(&mut current)),
                '"' => quoted = !quoted,
                c => current.push(c),
            }
        }
        names.push(current);
        AttrPath {
            top_level,
            names,
            outputs,
        }
    }

    proptest::proptest! {
        /// Property: any path whose names Nix can select (non-empty, no
        /// `"`), written with Nix's escapes, parses to those names, and its
        /// command-line form reads back (as Nix reads it) to the same path.
        #[test]
        fn written_paths_parse_and_render_for_nix(
            names in proptest::collection::vec("[^\"]+", 1..5),
            top_level in proptest::bool::ANY,
            outputs in proptest::option::of("\\*|[a-z0-9_+.-]+(,[a-z0-9_+.-]+){0,2}"),
        ) {
            let path = AttrPath { top_level, names, outputs };
            let text = written(&path);
            proptest::prop_assert_eq!(AttrPath::parse(&text), Ok(path.clone()), "{}", text);
            let cli = path.to_cli();
            proptest::prop_assert_eq!(nix_reads(&cli), path, "{}", cli);
        }

        /// Property: the parser never panics, and whatever it accepts
        /// renders to a form Nix reads back to the same path.
        #[test]
        fn any_text_parses_or_is_refused(text in "\\PC{0,40}") {
            if let Ok(path) = AttrPath::parse(&text) {
                proptest::prop_assert_eq!(nix_reads(&path.to_cli()), path);
            }
        }
    }
}
