//! The docs in `docs/` against the code: the generated pages must be what
//! `gen-docs` produces from the current schema descriptions and examples, and
//! the hand-written guides may only name attributes that exist. No hosts and
//! no Terraform needed.

use std::path::Path;
use std::process::Command;

use terraform_provider_nixbuild::docs::Schemas;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Fails when a schema description or an example changed and `make docs` was
/// not run (or a generated page was edited by hand, or a type was removed).
#[test]
fn committed_docs_match_the_schema() {
    let out = Command::new(env!("CARGO_BIN_EXE_gen-docs"))
        .arg("--check")
        .arg("--root")
        .arg(root())
        .output()
        .expect("run gen-docs");
    assert!(
        out.status.success(),
        "docs/ is out of date with the schema descriptions or examples/ (run `make docs` and commit the result), or breaks the Registry rules of src/docs/registry.rs.\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Inline code spans of a Markdown text, outside fenced code blocks.
fn inline_code(text: &str) -> Vec<String> {
    let mut spans = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut parts = line.split('`');
        parts.next();
        while let (Some(code), Some(_)) = (parts.next(), parts.next()) {
            spans.push(code.to_string());
        }
    }
    spans
}

/// A span such as `nixbuild_builder.ssh.host_key` or `data.nixbuild_host`:
/// the type, then attribute or block names. `None` for anything else.
fn reference(span: &str) -> Option<(String, Vec<String>)> {
    let span = span.strip_prefix("data.").unwrap_or(span);
    if !span.starts_with("nixbuild_") {
        return None;
    }
    let mut parts = span.split('.');
    let type_name = parts.next()?.to_string();
    let path: Vec<String> = parts.map(str::to_string).collect();
    let word = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    };
    (word(&type_name) && path.iter().all(|p| word(p))).then_some((type_name, path))
}

#[test]
fn reference_parsing() {
    assert_eq!(
        reference("nixbuild_builder.ssh.host_key"),
        Some((
            "nixbuild_builder".into(),
            vec!["ssh".into(), "host_key".into()]
        ))
    );
    assert_eq!(
        reference("data.nixbuild_host"),
        Some(("nixbuild_host".into(), vec![]))
    );
    assert_eq!(reference("nixbuild_builder.fleet[\"a\"].store_uri"), None);
    assert_eq!(reference("/etc/nix/nixbuild.conf"), None);
    assert_eq!(
        inline_code("a `x` b `y`\n```\n`z`\n```\n`w`"),
        ["x", "y", "w"]
    );
}

/// Every guide has tfplugindocs front matter, and every backticked
/// `nixbuild_<type>[.attribute…]` in a guide exists in the schema.
#[test]
fn guides_name_only_real_attributes() {
    let schemas = Schemas::nixbuild().unwrap();
    let dir = root().join("docs/guides");
    let mut guides: Vec<_> = std::fs::read_dir(&dir)
        .expect("docs/guides")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    guides.sort();
    assert!(!guides.is_empty(), "no guides in {}", dir.display());
    let mut wrong = Vec::new();
    let mut checked = 0;
    for guide in &guides {
        let text = std::fs::read_to_string(guide).unwrap();
        let name = guide.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            text.starts_with("---\npage_title: \"") && text.contains("\nsubcategory: \"Guides\"\n"),
            "{name}: tfplugindocs front matter (page_title, subcategory) expected"
        );
        for span in inline_code(&text) {
            if let Some((type_name, path)) = reference(&span) {
                let path: Vec<&str> = path.iter().map(String::as_str).collect();
                checked += 1;
                if !schemas.has(&type_name, &path) {
                    wrong.push(format!("{name}: `{span}`"));
                }
            }
        }
    }
    assert!(checked > 10, "only {checked} attribute references found");
    assert!(
        wrong.is_empty(),
        "guides name attributes the schema does not have:\n{}",
        wrong.join("\n")
    );
}
