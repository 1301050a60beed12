//! The one shell-quoting function: every value that reaches a remote shell goes
//! through [`quote`]. Remote scripts receive their inputs as quoted positional
//! arguments or on stdin, never by pasting raw strings into shell text.

use thiserror::Error;

/// A value that cannot be passed to a POSIX shell at all.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("value contains a NUL byte, which no shell argument can carry")]
pub struct UnquotableError;

/// Quote `value` so that a POSIX `sh` reads it back as exactly one word equal to
/// `value`, whatever it contains (quotes, `$()`, newlines, unicode, empty).
pub fn quote(value: &str) -> Result<String, UnquotableError> {
    // shlex's quoter is written for POSIX sh (dash), not only bash; the
    // round-trip tests below run every hostile value through the real /bin/sh.
    shlex::try_quote(value)
        .map(|q| q.into_owned())
        .map_err(|_| UnquotableError)
}

/// Quote several words and join them with spaces, ready to follow a command name.
pub fn quote_all<I, S>(values: I) -> Result<String, UnquotableError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let words: Result<Vec<String>, _> = values.into_iter().map(|v| quote(v.as_ref())).collect();
    Ok(words?.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const HOSTILE: &[&str] = &[
        "",
        "plain",
        "with space",
        "it's",
        "''",
        "\"double\"",
        "$(touch /tmp/nixbuild-pwned)",
        "`id`",
        "${HOME}",
        "$HOME",
        "a\nb\n",
        "\n",
        "tab\there",
        "back\\slash\\",
        "semi;colon && echo no | cat > /dev/null",
        "glob * ? [a-z]",
        "~root",
        "-n",
        "--",
        "ünïcödé ✓ 日本語 🚀",
        "'\"'\"'$(x)'",
        "\r\u{7f}\u{1b}[31m",
        "!event",
        "#comment",
    ];

    /// Round trip through the real /bin/sh: `printf %s <quoted>` must print the
    /// original bytes exactly.
    #[test]
    fn quote_round_trips_through_sh() {
        for value in HOSTILE {
            let script = format!("printf %s {}", quote(value).unwrap());
            let out = Command::new("/bin/sh")
                .arg("-c")
                .arg(&script)
                .output()
                .expect("run /bin/sh");
            assert!(out.status.success(), "sh failed for {value:?}");
            assert_eq!(
                String::from_utf8(out.stdout).unwrap(),
                *value,
                "round trip of {value:?}"
            );
        }
        assert!(!std::path::Path::new("/tmp/nixbuild-pwned").exists());
    }

    /// All hostile values quoted together stay separate words.
    #[test]
    fn quote_all_keeps_word_boundaries() {
        let script = format!(
            "for w in {}; do printf '<%s>' \"$w\"; done",
            quote_all(HOSTILE).unwrap()
        );
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        let expected: String = HOSTILE.iter().map(|v| format!("<{v}>")).collect();
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    }

    #[test]
    fn nul_is_rejected() {
        assert_eq!(quote("a\0b"), Err(UnquotableError));
    }

    /// `sh -c 'printf "<%s>" "$@"' sh <quoted>` run by /bin/sh: every word
    /// the outer shell reads from `quoted`, each in `<…>`.
    fn through_sh(quoted: &str) -> String {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("sh -c 'printf \"<%s>\" \"$@\"' sh {quoted}"))
            .output()
            .expect("run /bin/sh");
        assert!(out.status.success(), "sh failed for {quoted:?}");
        String::from_utf8(out.stdout).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Property: any string without NUL reaches a program through a
        /// shell as exactly that string, alone or among other words.
        #[test]
        fn any_string_round_trips_through_sh(value in "[^\\x00]*", other in "[^\\x00]{0,8}") {
            proptest::prop_assert_eq!(through_sh(&quote(&value).unwrap()), format!("<{value}>"));
            let both = quote_all([&value, &other]).unwrap();
            proptest::prop_assert_eq!(through_sh(&both), format!("<{value}><{other}>"));
        }
    }

    #[test]
    fn quote_shape() {
        assert_eq!(quote("").unwrap(), "''");
    }
}
