//! The Registry docs (`docs/index.md`, `docs/resources/*.md`,
//! `docs/data-sources/*.md`), rendered from the schema descriptions in the
//! tfplugindocs layout, with the examples of `examples/` embedded.
//!
//! Rendering and comparison are pure functions over [`Schemas`] and example
//! texts; the `gen-docs` binary does the file IO (write, or `--check` for
//! drift). Hand-written pages (`docs/guides/`, `docs/decisions.md`) are not
//! this module's business: it neither writes nor removes them. [`registry`]
//! checks every page against the Registry's rules.

pub mod registry;

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use tf_provider::schema::{
    Attribute, AttributeConstraint, AttributeType, Block, NestedBlock, Schema,
};
use tf_provider::{Diagnostics, Provider};

use crate::tfschema::nested_inner;

/// The provider's type name prefix, as `main.rs` serves it.
pub const PROVIDER_NAME: &str = "nixbuild";

/// Folders whose `*.md` files are all generated: a file there that the
/// generator does not produce is stale.
pub const GENERATED_DIRS: [&str; 2] = ["docs/resources", "docs/data-sources"];

/// The generated page of the provider itself.
pub const INDEX: &str = "docs/index.md";

/// Every schema the provider serves, keyed by full type name
/// (`nixbuild_builder`), sorted.
#[derive(Clone, Debug)]
pub struct Schemas {
    pub provider: Schema,
    pub resources: BTreeMap<String, Schema>,
    pub data_sources: BTreeMap<String, Schema>,
}

fn diags_text(diags: &Diagnostics) -> String {
    diags
        .errors
        .iter()
        .map(|d| format!("{}: {}", d.summary, d.detail))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Schemas {
    /// Build the schemas in-process, as Terraform would get them.
    pub fn collect<P: Provider>(name: &str, provider: &P) -> Result<Self, String> {
        let mut diags = Diagnostics::default();
        let fail = |what: &str, diags: &Diagnostics| {
            format!("cannot get the {what} schema: {}", diags_text(diags))
        };
        let schema = provider
            .schema(&mut diags)
            .ok_or_else(|| fail("provider", &diags))?;
        let mut resources = BTreeMap::new();
        for (key, resource) in provider
            .get_resources(&mut diags)
            .ok_or_else(|| fail("resource", &diags))?
        {
            let s = resource
                .schema(&mut diags)
                .ok_or_else(|| fail(&key, &diags))?;
            resources.insert(format!("{name}_{key}"), s);
        }
        let mut data_sources = BTreeMap::new();
        for (key, source) in provider
            .get_data_sources(&mut diags)
            .ok_or_else(|| fail("data source", &diags))?
        {
            let s = source
                .schema(&mut diags)
                .ok_or_else(|| fail(&key, &diags))?;
            data_sources.insert(format!("{name}_{key}"), s);
        }
        if !diags.errors.is_empty() {
            return Err(diags_text(&diags));
        }
        Ok(Self {
            provider: schema,
            resources,
            data_sources,
        })
    }

    /// The schemas of `nixbuild` itself.
    pub fn nixbuild() -> Result<Self, String> {
        Self::collect(PROVIDER_NAME, &crate::provider::NixbuildProvider::new())
    }

    /// Whether `type_name` (resource or data source) has the attribute or
    /// block at the dotted `path` (`ssh.host_key`); an empty path asks
    /// whether the type exists.
    pub fn has(&self, type_name: &str, path: &[&str]) -> bool {
        let Some(schema) = self
            .resources
            .get(type_name)
            .or_else(|| self.data_sources.get(type_name))
        else {
            return false;
        };
        let mut block = &schema.block;
        for (i, segment) in path.iter().enumerate() {
            if let Some(nested) = block.blocks.get(*segment) {
                block = nested_inner(nested);
            } else {
                return i + 1 == path.len() && block.attributes.contains_key(*segment);
            }
        }
        true
    }
}

/// Example files under `examples/`, keyed by their path relative to it
/// (`resources/nixbuild_builder/resource.tf`). Missing ones are simply absent.
pub type Examples = BTreeMap<String, String>;

/// The example paths the docs of `schemas` can embed.
pub fn example_paths(schemas: &Schemas) -> Vec<String> {
    let mut paths = vec!["provider/provider.tf".to_string()];
    for name in schemas.resources.keys() {
        paths.push(format!("resources/{name}/resource.tf"));
        paths.push(format!("resources/{name}/import.sh"));
    }
    for name in schemas.data_sources.keys() {
        paths.push(format!("data-sources/{name}/data-source.tf"));
    }
    paths
}

/// Read the examples that exist under `<root>/examples`.
pub fn load_examples(root: &Path, schemas: &Schemas) -> std::io::Result<Examples> {
    let mut examples = Examples::new();
    for rel in example_paths(schemas) {
        match std::fs::read_to_string(root.join("examples").join(&rel)) {
            Ok(text) => {
                examples.insert(rel, without_lint_directives(&text));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(examples)
}

/// Drop a leading shebang or `# shellcheck …` directive line: they are there
/// for the linters, not for readers of the docs.
fn without_lint_directives(text: &str) -> String {
    let mut lines = text.lines().peekable();
    while lines
        .peek()
        .is_some_and(|l| l.starts_with("#!") || l.starts_with("# shellcheck "))
    {
        lines.next();
    }
    let mut out: String = lines.collect::<Vec<_>>().join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Every generated page, keyed by its path relative to the repository root.
pub fn render_all(
    provider: &str,
    schemas: &Schemas,
    examples: &Examples,
) -> BTreeMap<PathBuf, String> {
    let mut pages = BTreeMap::new();
    pages.insert(
        PathBuf::from(INDEX),
        render_provider(
            provider,
            &schemas.provider,
            examples.get("provider/provider.tf").map(String::as_str),
        ),
    );
    for (name, schema) in &schemas.resources {
        let page = render_type(
            provider,
            Kind::Resource,
            name,
            schema,
            examples
                .get(&format!("resources/{name}/resource.tf"))
                .map(String::as_str),
            examples
                .get(&format!("resources/{name}/import.sh"))
                .map(String::as_str),
        );
        pages.insert(page_path(provider, Kind::Resource, name), page);
    }
    for (name, schema) in &schemas.data_sources {
        let page = render_type(
            provider,
            Kind::DataSource,
            name,
            schema,
            examples
                .get(&format!("data-sources/{name}/data-source.tf"))
                .map(String::as_str),
            None,
        );
        pages.insert(page_path(provider, Kind::DataSource, name), page);
    }
    pages
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Resource,
    DataSource,
}

impl Kind {
    fn title(self) -> &'static str {
        match self {
            Kind::Resource => "Resource",
            Kind::DataSource => "Data Source",
        }
    }
    fn dir(self) -> &'static str {
        match self {
            Kind::Resource => "docs/resources",
            Kind::DataSource => "docs/data-sources",
        }
    }
}

/// `docs/resources/builder.md` for `nixbuild_builder`, as the Registry expects.
pub fn page_path(provider: &str, kind: Kind, name: &str) -> PathBuf {
    let short = name
        .strip_prefix(provider)
        .and_then(|n| n.strip_prefix('_'))
        .unwrap_or(name);
    Path::new(kind.dir()).join(format!("{short}.md"))
}

const GENERATED_NOTE: &str =
    "# generated by `make docs` (src/bin/gen-docs.rs) from the schema descriptions and examples/; do not edit";

/// `subcategory` is for resource and data source pages only: the Registry
/// (and `tfplugindocs validate`) rejects it on the index.
fn front_matter(out: &mut String, title: &str, subcategory: Option<&str>, description: &str) {
    let _ = writeln!(out, "---");
    let _ = writeln!(out, "{GENERATED_NOTE}");
    let _ = writeln!(out, "page_title: \"{title}\"");
    if let Some(subcategory) = subcategory {
        let _ = writeln!(out, "subcategory: \"{subcategory}\"");
    }
    let _ = writeln!(out, "description: |-");
    for line in description.trim().lines() {
        if line.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "  {line}");
        }
    }
    let _ = writeln!(out, "---");
    out.push('\n');
}

fn code(out: &mut String, lang: &str, text: &str) {
    let _ = writeln!(out, "```{lang}");
    let _ = writeln!(out, "{}", text.trim_end());
    let _ = writeln!(out, "```");
}

/// `docs/index.md`: description, example, argument reference.
pub fn render_provider(provider: &str, schema: &Schema, example: Option<&str>) -> String {
    let mut out = String::new();
    let description = schema.block.description.content.trim();
    front_matter(&mut out, &format!("{provider} Provider"), None, description);
    let _ = writeln!(out, "# {provider} Provider\n");
    if !description.is_empty() {
        let _ = writeln!(out, "{description}\n");
    }
    if let Some(example) = example {
        let _ = writeln!(out, "## Example Usage\n");
        code(&mut out, "terraform", example);
        out.push('\n');
    }
    render_schema(&mut out, &schema.block);
    finish(out)
}

/// A resource or data source page.
pub fn render_type(
    provider: &str,
    kind: Kind,
    name: &str,
    schema: &Schema,
    example: Option<&str>,
    import: Option<&str>,
) -> String {
    let mut out = String::new();
    let description = schema.block.description.content.trim();
    front_matter(
        &mut out,
        &format!("{name} {} - {provider}", kind.title()),
        Some(""),
        description,
    );
    let _ = writeln!(out, "# {name} ({})\n", kind.title());
    if !description.is_empty() {
        let _ = writeln!(out, "{description}\n");
    }
    if let Some(example) = example {
        let _ = writeln!(out, "## Example Usage\n");
        code(&mut out, "terraform", example);
        out.push('\n');
    }
    render_schema(&mut out, &schema.block);
    if let Some(import) = import {
        let _ = writeln!(out, "## Import\n");
        let _ = writeln!(out, "Import is supported using the following syntax:\n");
        code(&mut out, "shell", import);
        out.push('\n');
    }
    finish(out)
}

/// One trailing newline, no trailing spaces: what editors and `git diff` like.
fn finish(out: String) -> String {
    let mut text: String = out
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n");
    while text.ends_with('\n') {
        text.pop();
    }
    text.push('\n');
    text
}

/// `String`, `List of String`, … as tfplugindocs names them.
pub fn type_name(t: &AttributeType) -> String {
    match t {
        AttributeType::String => "String".into(),
        AttributeType::Number => "Number".into(),
        AttributeType::Bool => "Boolean".into(),
        AttributeType::List(t) => format!("List of {}", type_name(t)),
        AttributeType::Set(t) => format!("Set of {}", type_name(t)),
        AttributeType::Map(t) => format!("Map of {}", type_name(t)),
        AttributeType::Object(_) => "Object".into(),
        AttributeType::Tuple(_) => "Tuple".into(),
        AttributeType::AttributeSingle(_) => "Attributes".into(),
        AttributeType::AttributeList(_) => "Attributes List".into(),
        AttributeType::AttributeSet(_) => "Attributes Set".into(),
        AttributeType::AttributeMap(_) => "Attributes Map".into(),
        AttributeType::Any => "Dynamic".into(),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Required,
    Optional,
    ReadOnly,
}

impl Group {
    fn title(self) -> &'static str {
        match self {
            Group::Required => "Required",
            Group::Optional => "Optional",
            Group::ReadOnly => "Read-Only",
        }
    }
}

fn attribute_group(attr: &Attribute) -> Group {
    match attr.constraint {
        AttributeConstraint::Required => Group::Required,
        AttributeConstraint::Optional | AttributeConstraint::OptionalComputed => Group::Optional,
        AttributeConstraint::Computed => Group::ReadOnly,
    }
}

fn block_kind(nested: &NestedBlock) -> (Group, &'static str) {
    match nested {
        NestedBlock::Single(_) => (Group::Required, "Block"),
        NestedBlock::List(_) => (Group::Optional, "Block List"),
        NestedBlock::Set(_) => (Group::Optional, "Block Set"),
        NestedBlock::Map(_) => (Group::Optional, "Block Map"),
        NestedBlock::Group(_) => (Group::Optional, "Block"),
        NestedBlock::Optional(_) => (Group::Optional, "Block List, Max: 1"),
    }
}

fn anchor(path: &[String]) -> String {
    format!("nestedblock--{}", path.join("--"))
}

/// The entries of one block, grouped and sorted by name; nested blocks to
/// describe later are pushed onto `queue` with their path.
fn block_entries<'a>(
    block: &'a Block,
    path: &[String],
    queue: &mut VecDeque<(Vec<String>, &'a Block)>,
) -> BTreeMap<Group, Vec<String>> {
    let mut entries: BTreeMap<Group, BTreeMap<&str, String>> = BTreeMap::new();
    for (name, attr) in &block.attributes {
        let mut flags = vec![type_name(&attr.attr_type)];
        if attr.sensitive {
            flags.push("Sensitive".into());
        }
        // The plugin layer makes every `<name>_wo` write-only.
        if name.ends_with(crate::write_only::SUFFIX) {
            flags.push("Write-only".into());
        }
        if attr.deprecated {
            flags.push("Deprecated".into());
        }
        let line = format!(
            "- `{name}` ({}) {}",
            flags.join(", "),
            attr.description.content.trim()
        );
        entries
            .entry(attribute_group(attr))
            .or_default()
            .insert(name, line);
    }
    let mut nested_names: Vec<&String> = block.blocks.keys().collect();
    nested_names.sort();
    for name in nested_names {
        let nested = &block.blocks[name];
        let inner = nested_inner(nested);
        let (group, kind) = block_kind(nested);
        let mut child = path.to_vec();
        child.push(name.clone());
        let mut flags = kind.to_string();
        if inner.deprecated {
            flags.push_str(", Deprecated");
        }
        let line = format!(
            "- `{name}` ({flags}) {} (see [below for nested schema](#{}))",
            inner.description.content.trim(),
            anchor(&child)
        );
        entries.entry(group).or_default().insert(name, line);
        queue.push_back((child, inner));
    }
    entries
        .into_iter()
        .map(|(g, lines)| (g, lines.into_values().collect()))
        .collect()
}

/// `## Schema`: the top-level groups, then one section per nested block
/// (breadth first, sorted), each with an anchor the lists link to.
fn render_schema(out: &mut String, block: &Block) {
    let _ = writeln!(out, "<!-- schema generated by gen-docs -->");
    let _ = writeln!(out, "## Schema\n");
    let mut queue = VecDeque::new();
    for (group, lines) in block_entries(block, &[], &mut queue) {
        let _ = writeln!(out, "### {}\n", group.title());
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
    }
    while let Some((path, inner)) = queue.pop_front() {
        let _ = writeln!(out, "<a id=\"{}\"></a>", anchor(&path));
        let _ = writeln!(out, "### Nested Schema for `{}`\n", path.join("."));
        for (group, lines) in block_entries(inner, &path, &mut queue) {
            let _ = writeln!(out, "{}:\n", group.title());
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
            out.push('\n');
        }
    }
}

/// How a committed page differs from what the generator produces.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Drift {
    /// The file exists with other content.
    Differs(PathBuf),
    /// The file should exist and does not.
    Missing(PathBuf),
    /// A file in a generated folder that the generator does not produce.
    Stale(PathBuf),
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Drift::Differs(p) => write!(f, "{}: differs from what gen-docs renders", p.display()),
            Drift::Missing(p) => write!(f, "{}: missing", p.display()),
            Drift::Stale(p) => write!(f, "{}: should not exist", p.display()),
        }
    }
}

/// Compare the expected pages with what is on disk (`actual`: every
/// generated page that exists, plus every `*.md` in [`GENERATED_DIRS`]).
pub fn diff(
    expected: &BTreeMap<PathBuf, String>,
    actual: &BTreeMap<PathBuf, String>,
) -> Vec<Drift> {
    let mut drift = Vec::new();
    for (path, text) in expected {
        match actual.get(path) {
            None => drift.push(Drift::Missing(path.clone())),
            Some(found) if found != text => drift.push(Drift::Differs(path.clone())),
            Some(_) => {}
        }
    }
    for path in actual.keys() {
        if !expected.contains_key(path) {
            drift.push(Drift::Stale(path.clone()));
        }
    }
    drift.sort();
    drift
}

/// The committed generated pages under `root`, keyed like [`render_all`]'s.
pub fn read_committed(
    root: &Path,
    expected: &BTreeMap<PathBuf, String>,
) -> std::io::Result<BTreeMap<PathBuf, String>> {
    let mut paths: Vec<PathBuf> = expected.keys().cloned().collect();
    for dir in GENERATED_DIRS {
        let entries = match std::fs::read_dir(root.join(dir)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry?.file_name();
            if Path::new(&name).extension().is_some_and(|e| e == "md") {
                paths.push(Path::new(dir).join(name));
            }
        }
    }
    let mut actual = BTreeMap::new();
    for path in paths {
        match std::fs::read_to_string(root.join(&path)) {
            Ok(text) => {
                actual.insert(path, text);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(actual)
}

/// Render the docs of `schemas` for the tree at `root`.
pub fn generate(root: &Path, schemas: &Schemas) -> std::io::Result<BTreeMap<PathBuf, String>> {
    let examples = load_examples(root, schemas)?;
    Ok(render_all(PROVIDER_NAME, schemas, &examples))
}

/// Bring the committed docs in line: write what differs or is missing,
/// remove stale pages. Returns what changed.
pub fn write(root: &Path, expected: &BTreeMap<PathBuf, String>) -> std::io::Result<Vec<Drift>> {
    let drift = diff(expected, &read_committed(root, expected)?);
    for d in &drift {
        match d {
            Drift::Differs(path) | Drift::Missing(path) => {
                let full = root.join(path);
                if let Some(parent) = full.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(full, &expected[path])?;
            }
            Drift::Stale(path) => std::fs::remove_file(root.join(path))?,
        }
    }
    Ok(drift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::builders::{block, computed, optional_string, required_string, sensitive};

    fn toy() -> Schemas {
        let ssh = block(
            "How to reach the host.",
            vec![
                ("user", optional_string("Login user.")),
                ("password", sensitive(optional_string("Secret."))),
                (
                    "password_wo",
                    sensitive(optional_string("Secret, write-only.")),
                ),
            ],
            vec![],
        );
        let thing = Schema {
            version: 1,
            block: block(
                "A thing.",
                vec![
                    ("host", required_string("Host name.")),
                    ("id", computed(AttributeType::String, "Identifier.")),
                    (
                        "paths",
                        computed(
                            AttributeType::List(Box::new(AttributeType::String)),
                            "Out paths.",
                        ),
                    ),
                ],
                vec![("ssh", NestedBlock::Optional(ssh))],
            ),
        };
        Schemas {
            provider: Schema {
                version: 1,
                block: block("The toy provider.", vec![], vec![]),
            },
            resources: BTreeMap::from([("toy_thing".to_string(), thing.clone())]),
            data_sources: BTreeMap::from([("toy_thing".to_string(), thing)]),
        }
    }

    #[test]
    fn renders_a_tfplugindocs_page() {
        let s = toy();
        let page = render_type(
            "toy",
            Kind::Resource,
            "toy_thing",
            &s.resources["toy_thing"],
            Some("resource \"toy_thing\" \"x\" {}\n\n"),
            Some("terraform import toy_thing.x root@h:22"),
        );
        let expected = r#"---
# generated by `make docs` (src/bin/gen-docs.rs) from the schema descriptions and examples/; do not edit
page_title: "toy_thing Resource - toy"
subcategory: ""
description: |-
  A thing.
---

# toy_thing (Resource)

A thing.

## Example Usage

```terraform
resource "toy_thing" "x" {}
```

<!-- schema generated by gen-docs -->
## Schema

### Required

- `host` (String) Host name.

### Optional

- `ssh` (Block List, Max: 1) How to reach the host. (see [below for nested schema](#nestedblock--ssh))

### Read-Only

- `id` (String) Identifier.
- `paths` (List of String) Out paths.

<a id="nestedblock--ssh"></a>
### Nested Schema for `ssh`

Optional:

- `password` (String, Sensitive) Secret.
- `password_wo` (String, Sensitive, Write-only) Secret, write-only.
- `user` (String) Login user.

## Import

Import is supported using the following syntax:

```shell
terraform import toy_thing.x root@h:22
```
"#;
        assert_eq!(page, expected);
    }

    #[test]
    fn sections_for_absent_examples_are_omitted() {
        let s = toy();
        let pages = render_all("toy", &s, &Examples::new());
        let index = &pages[Path::new("docs/index.md")];
        assert!(index.contains("# toy Provider\n\nThe toy provider.\n"));
        assert!(!index.contains("## Example Usage"));
        let resource = &pages[Path::new("docs/resources/thing.md")];
        assert!(!resource.contains("## Example Usage"));
        assert!(!resource.contains("## Import"));
        let data = &pages[Path::new("docs/data-sources/thing.md")];
        assert!(data.contains("# toy_thing (Data Source)"));
        assert!(data.contains("page_title: \"toy_thing Data Source - toy\""));
    }

    #[test]
    fn nested_blocks_get_nested_anchors() {
        let inner = block("Inner.", vec![("x", optional_string("X."))], vec![]);
        let outer = block("Outer.", vec![], vec![("inner", NestedBlock::List(inner))]);
        let root = block("Root.", vec![], vec![("outer", NestedBlock::Single(outer))]);
        let mut out = String::new();
        render_schema(&mut out, &root);
        assert!(out.contains("### Required\n\n- `outer` (Block) Outer. (see [below for nested schema](#nestedblock--outer))"));
        assert!(out.contains(
            "<a id=\"nestedblock--outer--inner\"></a>\n### Nested Schema for `outer.inner`"
        ));
        assert!(
            out.find("Schema for `outer`").unwrap() < out.find("Schema for `outer.inner`").unwrap()
        );
    }

    /// The drift check notices a schema description that changed after the
    /// docs were generated, and names the page.
    #[test]
    fn check_detects_a_changed_description() {
        let s = toy();
        let committed = render_all("toy", &s, &Examples::new());
        assert_eq!(
            diff(&render_all("toy", &s, &Examples::new()), &committed),
            vec![]
        );

        let mut changed = s.clone();
        let thing = changed.resources.get_mut("toy_thing").unwrap();
        thing
            .block
            .attributes
            .get_mut("host")
            .unwrap()
            .description
            .content = "Host name or IP address.".into();
        let expected = render_all("toy", &changed, &Examples::new());
        assert_eq!(
            diff(&expected, &committed),
            vec![Drift::Differs(PathBuf::from("docs/resources/thing.md"))]
        );
    }

    #[test]
    fn check_reports_missing_and_stale_files_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let s = toy();
        let expected = render_all("toy", &s, &Examples::new());
        assert_eq!(write(dir.path(), &expected).unwrap().len(), 3);
        assert_eq!(
            diff(&expected, &read_committed(dir.path(), &expected).unwrap()),
            vec![]
        );

        std::fs::write(dir.path().join("docs/resources/gone.md"), "old").unwrap();
        std::fs::remove_file(dir.path().join("docs/data-sources/thing.md")).unwrap();
        std::fs::create_dir_all(dir.path().join("docs/guides")).unwrap();
        std::fs::write(dir.path().join("docs/guides/hand.md"), "mine").unwrap();
        std::fs::write(dir.path().join("docs/resources/notes.txt"), "not md").unwrap();
        let drift = diff(&expected, &read_committed(dir.path(), &expected).unwrap());
        assert_eq!(
            drift,
            vec![
                Drift::Missing(PathBuf::from("docs/data-sources/thing.md")),
                Drift::Stale(PathBuf::from("docs/resources/gone.md")),
            ]
        );
        write(dir.path(), &expected).unwrap();
        assert!(!dir.path().join("docs/resources/gone.md").exists());
        assert!(dir.path().join("docs/guides/hand.md").exists());
        assert_eq!(
            diff(&expected, &read_committed(dir.path(), &expected).unwrap()),
            vec![]
        );
    }

    #[test]
    fn examples_are_embedded_when_present() {
        let dir = tempfile::tempdir().unwrap();
        let s = toy();
        let ex = dir.path().join("examples/resources/toy_thing");
        std::fs::create_dir_all(&ex).unwrap();
        std::fs::write(ex.join("resource.tf"), "resource \"toy_thing\" \"a\" {}\n").unwrap();
        let examples = load_examples(dir.path(), &s).unwrap();
        assert_eq!(
            examples.keys().collect::<Vec<_>>(),
            ["resources/toy_thing/resource.tf"]
        );
        let pages = render_all("toy", &s, &examples);
        assert!(pages[Path::new("docs/resources/thing.md")]
            .contains("## Example Usage\n\n```terraform\nresource \"toy_thing\" \"a\" {}\n```\n"));
    }

    #[test]
    fn nixbuild_schemas_are_complete_and_described() {
        let s = Schemas::nixbuild().unwrap();
        assert!(s.resources.contains_key("nixbuild_builder"));
        assert!(s.data_sources.contains_key("nixbuild_host"));
        assert!(s.has("nixbuild_builder", &["ssh", "host_key"]));
        assert!(s.has("nixbuild_builder", &["store_uri"]));
        assert!(!s.has("nixbuild_builder", &["store_uri", "x"]));
        assert!(!s.has("nixbuild_builder", &["nope"]));
        assert!(!s.has("nixbuild_nope", &[]));

        fn check(path: &str, block: &Block, missing: &mut Vec<String>) {
            if block.description.content.trim().is_empty() {
                missing.push(path.to_string());
            }
            for (name, attr) in &block.attributes {
                if attr.description.content.trim().is_empty() {
                    missing.push(format!("{path}.{name}"));
                }
            }
            for (name, nested) in &block.blocks {
                check(&format!("{path}.{name}"), nested_inner(nested), missing);
            }
        }
        let mut missing = vec![];
        check("provider", &s.provider.block, &mut missing);
        for (name, schema) in s.resources.iter().chain(&s.data_sources) {
            check(name, &schema.block, &mut missing);
        }
        assert!(missing.is_empty(), "without a description: {missing:?}");
    }

    /// Every resource's, data source's and the provider's Rust type is its
    /// Terraform schema: the schema's values decode into the type and come
    /// back unchanged, with no field the schema lacks (see
    /// `tfschema::definition_differences`).
    #[test]
    fn every_rust_type_is_its_schema() {
        use crate::tfschema::definition_differences as differences;
        let s = Schemas::nixbuild().unwrap();
        let mut found: Vec<String> = Vec::new();
        let mut walk = |name: &str, differences: Vec<String>| {
            found.extend(differences.into_iter().map(|d| format!("{name}: {d}")));
        };
        walk(
            "provider",
            // The provider's ssh block has no host_key (see provider_schema).
            differences::<crate::provider::ProviderConfig>(&s.provider, &["ssh[].host_key"]),
        );
        let resources = &s.resources;
        walk(
            "nixbuild_builder",
            differences::<crate::resources::builder::config::BuilderState>(
                &resources["nixbuild_builder"],
                &[],
            ),
        );
        walk(
            "nixbuild_cache_push",
            differences::<crate::resources::cache_push::CachePushState>(
                &resources["nixbuild_cache_push"],
                &[],
            ),
        );
        walk(
            "nixbuild_machines_file",
            differences::<crate::resources::machines_file::MachinesFileState>(
                &resources["nixbuild_machines_file"],
                &[],
            ),
        );
        walk(
            "nixbuild_cache_proxy",
            differences::<crate::resources::cache_proxy::config::CacheProxyState>(
                &resources["nixbuild_cache_proxy"],
                &[],
            ),
        );
        let sources = &s.data_sources;
        walk(
            "nixbuild_host",
            differences::<crate::resources::host::HostState>(&sources["nixbuild_host"], &[]),
        );
        walk(
            "nixbuild_cachix_cache",
            differences::<crate::resources::cachix_cache::CachixCacheState>(
                &sources["nixbuild_cachix_cache"],
                &[],
            ),
        );
        walk(
            "nixbuild_builder_status",
            differences::<crate::resources::builder::status::BuilderStatusState>(
                &sources["nixbuild_builder_status"],
                &[],
            ),
        );
        walk(
            "nixbuild_flake_outputs",
            differences::<crate::resources::flake_outputs::FlakeOutputsState>(
                &sources["nixbuild_flake_outputs"],
                &[],
            ),
        );
        assert_eq!(
            resources.len() + sources.len(),
            8,
            "a new resource or data source: add its type to this test"
        );
        assert!(found.is_empty(), "{found:#?}");
    }
}
