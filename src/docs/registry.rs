//! The Terraform Registry's rules for `docs/`, as `tfplugindocs validate`
//! checks them (a Go tool, not installed where the tests run; this is the
//! same set of rules, written down). What it checks, with the source it
//! follows (hashicorp/terraform-plugin-docs):
//! - which files are docs: `docs/index.md` and everything under
//!   `docs/{resources,data-sources,guides,functions}/`; any other file in
//!   `docs/` (`decisions.md`, …) is not a Registry page and is left alone
//!   (`internal/provider/validate.go`, `DocumentationGlobPattern`);
//! - no folders inside those four (`internal/check/directory.go`);
//! - the extension is `.md` (`internal/check/file_extension.go`,
//!   `ValidRegistryFileExtensions`);
//! - a page is smaller than 500 KB, and there are at most 2000
//!   (`internal/check/file.go`, `internal/check/directory.go`);
//! - YAML front matter between `---` lines; never `layout` or
//!   `sidebar_current`; no `subcategory` on the index; a guide has a
//!   `page_title` (`internal/check/frontmatter.go`, the
//!   `Registry*FrontMatterOptions` of `internal/provider/validate.go`);
//! - every page in `resources/` and `data-sources/` names a type the provider
//!   serves, and every type has its page (`internal/check/file_mismatch.go`).
//!
//! The front matter is read by a small parser of top-level `key: value`
//! lines (comments and indented continuation lines of block scalars allowed),
//! which is all these pages use.

use std::path::Path;

/// The Registry's storage limits (`RegistryMaximumSizeOfFile`,
/// `RegistryMaximumNumberOfFiles`).
pub const MAX_FILE_SIZE: u64 = 500_000;
pub const MAX_FILES: usize = 2000;

/// The folders of `docs/` whose files are Registry pages.
pub const PAGE_DIRS: [&str; 4] = ["resources", "data-sources", "guides", "functions"];

/// What kind of page a file is, which decides its front matter rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Index,
    Guide,
    /// A resource, data source or function page.
    Other,
}

/// The top-level keys of a page's YAML front matter, or why it has none
/// (or none that parses).
pub fn front_matter_keys(text: &str) -> Result<Vec<String>, String> {
    let rest = text
        .strip_prefix("---\n")
        .ok_or("no front matter (the page must start with a `---` line)")?;
    let end = rest
        .find("\n---\n")
        .or_else(|| rest.strip_suffix("\n---").map(str::len))
        .ok_or("front matter has no closing `---` line")?;
    let mut keys = Vec::new();
    for (n, line) in rest[..end].lines().enumerate() {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        if line.starts_with(' ') {
            if keys.is_empty() {
                return Err(format!(
                    "front matter line {}: indented line before any key",
                    n + 2
                ));
            }
            continue;
        }
        let key = line
            .split_once(':')
            .map(|(k, _)| k)
            .filter(|k| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            })
            .ok_or_else(|| format!("front matter line {}: not YAML `key: value`: {line}", n + 2))?;
        if keys.iter().any(|k| k == key) {
            return Err(format!("front matter: duplicate key `{key}`"));
        }
        keys.push(key.to_string());
    }
    Ok(keys)
}

/// The front matter rules of one page (`RegistryFrontMatterOptions`,
/// `RegistryIndexFrontMatterOptions`, `RegistryGuideFrontMatterOptions`).
pub fn check_front_matter(page: Page, text: &str) -> Result<(), String> {
    let keys = front_matter_keys(text)?;
    let has = |k: &str| keys.iter().any(|key| key == k);
    for banned in ["layout", "sidebar_current"] {
        if has(banned) {
            return Err(format!("YAML frontmatter should not contain {banned}"));
        }
    }
    if page == Page::Index && has("subcategory") {
        return Err("YAML frontmatter should not contain subcategory".into());
    }
    if page == Page::Guide && !has("page_title") {
        return Err("YAML frontmatter missing required page_title".into());
    }
    Ok(())
}

/// Every rule above over the `docs/` of the repository at `root`, for a
/// provider serving `resources` and `data_sources` (full type names). The
/// problems found, each naming its file; empty when the docs conform.
pub fn check(
    root: &Path,
    provider: &str,
    resources: &[&str],
    data_sources: &[&str],
) -> Vec<String> {
    let mut problems = Vec::new();
    let mut pages: Vec<(String, Page)> = vec![("docs/index.md".into(), Page::Index)];
    for dir in PAGE_DIRS {
        let rel = format!("docs/{dir}");
        let Ok(entries) = std::fs::read_dir(root.join(&rel)) else {
            continue;
        };
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.path().is_dir(),
                )
            })
            .collect();
        names.sort();
        for (name, is_dir) in names {
            let path = format!("{rel}/{name}");
            if is_dir {
                problems.push(format!(
                    "{path}: invalid Terraform Provider documentation directory"
                ));
                continue;
            }
            let page = if dir == "guides" {
                Page::Guide
            } else {
                Page::Other
            };
            pages.push((path, page));
        }
        let expected: &[&str] = match dir {
            "resources" => resources,
            "data-sources" => data_sources,
            _ => continue,
        };
        problems.extend(mismatch(root, &rel, provider, expected));
    }
    if pages.len() > MAX_FILES {
        problems.push(format!(
            "{} documentation files, more than the Registry's {MAX_FILES}",
            pages.len()
        ));
    }
    for (path, page) in pages {
        if !path.ends_with(".md") {
            problems.push(format!(
                "{path}: file does not end with a valid extension (.md)"
            ));
            continue;
        }
        let file = root.join(&path);
        match std::fs::metadata(&file) {
            Ok(meta) if meta.len() >= MAX_FILE_SIZE => problems.push(format!(
                "{path}: {} bytes, over the Registry's {MAX_FILE_SIZE}",
                meta.len()
            )),
            Ok(_) => {}
            Err(e) => {
                problems.push(format!("{path}: {e}"));
                continue;
            }
        }
        match std::fs::read_to_string(&file) {
            Ok(text) => {
                if let Err(e) = check_front_matter(page, &text) {
                    problems.push(format!("{path}: {e}"));
                }
            }
            Err(e) => problems.push(format!("{path}: {e}")),
        }
    }
    problems
}

/// Pages (files) in `dir` without their type, and types without their page
/// (`docs/resources/builder.md` is `nixbuild_builder`).
fn mismatch(root: &Path, dir: &str, provider: &str, types: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let stems: Vec<String> = std::fs::read_dir(root.join(dir))
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| !e.path().is_dir())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .map(|n| n.split('.').next().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    let type_of = |stem: &str| format!("{provider}_{stem}");
    for stem in &stems {
        if !types.iter().any(|t| *t == type_of(stem) || t == stem) {
            problems.push(format!(
                "{dir}/{stem}: no matching type for this documentation file; it is extraneous or misnamed"
            ));
        }
    }
    for t in types {
        if !stems.iter().any(|s| type_of(s) == *t || s == t) {
            problems.push(format!("{dir}: missing documentation file for {t}"));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "---\n# a comment\npage_title: \"x\"\ndescription: |-\n  Line one.\n\n  Line two.\n---\n\n# x\n";

    #[test]
    fn front_matter_keys_of_a_page() {
        assert_eq!(
            front_matter_keys(PAGE).unwrap(),
            ["page_title", "description"]
        );
        assert!(front_matter_keys("# x\n").is_err());
        assert!(front_matter_keys("---\npage_title: x\n").is_err());
        assert!(front_matter_keys("---\nnot yaml\n---\n").is_err());
        assert!(front_matter_keys("---\na: 1\na: 2\n---\n").is_err());
    }

    #[test]
    fn front_matter_rules() {
        let with = |line: &str| PAGE.replacen("page_title", &format!("{line}\npage_title"), 1);
        assert_eq!(check_front_matter(Page::Index, PAGE), Ok(()));
        assert_eq!(
            check_front_matter(Page::Index, &with("subcategory: \"\"")),
            Err("YAML frontmatter should not contain subcategory".into())
        );
        assert_eq!(
            check_front_matter(Page::Other, &with("subcategory: \"\"")),
            Ok(())
        );
        assert_eq!(
            check_front_matter(Page::Guide, &with("subcategory: \"Guides\"")),
            Ok(())
        );
        for page in [Page::Index, Page::Guide, Page::Other] {
            assert!(check_front_matter(page, &with("layout: \"x\"")).is_err());
            assert!(check_front_matter(page, &with("sidebar_current: \"x\"")).is_err());
        }
        let untitled = "---\nsubcategory: \"Guides\"\n---\n";
        assert!(check_front_matter(Page::Guide, untitled).is_err());
        assert_eq!(check_front_matter(Page::Other, untitled), Ok(()));
    }

    #[test]
    fn layout_names_and_sizes() {
        let dir = std::env::temp_dir().join(format!("registry-docs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["docs/resources/nested", "docs/data-sources", "docs/guides"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        std::fs::write(dir.join("docs/index.md"), PAGE).unwrap();
        std::fs::write(dir.join("docs/decisions.md"), "not a Registry page").unwrap();
        std::fs::write(dir.join("docs/resources/thing.md"), PAGE).unwrap();
        std::fs::write(dir.join("docs/resources/stray.markdown"), PAGE).unwrap();
        std::fs::write(dir.join("docs/guides/big.md"), PAGE.repeat(20_000)).unwrap();
        let problems = check(&dir, "toy", &["toy_thing", "toy_other"], &["toy_source"]);
        std::fs::remove_dir_all(&dir).unwrap();
        let expect = [
            "docs/resources/nested: invalid",
            "docs/resources/stray: no matching type",
            "docs/resources: missing documentation file for toy_other",
            "docs/data-sources: missing documentation file for toy_source",
            "docs/resources/stray.markdown: file does not end with a valid extension",
            "docs/guides/big.md: 1640000 bytes, over",
        ];
        for e in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(e)),
                "{e} not in {problems:#?}"
            );
        }
        assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    }
}
