//! `gen-docs`: writes the Registry docs (`docs/index.md`, `docs/resources/`,
//! `docs/data-sources/`) from the provider's schema descriptions and the
//! examples in `examples/`. With `--check`, writes nothing and exits 1 when
//! the committed docs differ, listing the files, or when a page breaks the
//! Registry's rules ([`docs::registry`]). `make docs` runs it.
//!
//! Usage: gen-docs [--check] [--root DIR]   (DIR: the repository, default `.`)

use std::path::PathBuf;
use std::process::ExitCode;

use terraform_provider_nixbuild::docs::{self, Schemas};

fn main() -> ExitCode {
    let mut check = false;
    let mut root = PathBuf::from(".");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => check = true,
            "--root" => match args.next() {
                Some(dir) => root = PathBuf::from(dir),
                None => return usage("--root needs a directory"),
            },
            "-h" | "--help" => {
                println!("usage: gen-docs [--check] [--root DIR]");
                return ExitCode::SUCCESS;
            }
            other => return usage(&format!("unknown argument `{other}`")),
        }
    }
    if !root.join("Cargo.toml").is_file() || !root.join("examples").is_dir() {
        return usage(&format!(
            "{} is not the repository root (no Cargo.toml and examples/)",
            root.display()
        ));
    }
    match run(&root, check) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gen-docs: {e}");
            ExitCode::from(2)
        }
    }
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("gen-docs: {problem}\nusage: gen-docs [--check] [--root DIR]");
    ExitCode::from(2)
}

fn run(root: &std::path::Path, check: bool) -> Result<ExitCode, String> {
    let schemas = Schemas::nixbuild()?;
    let expected = docs::generate(root, &schemas).map_err(|e| e.to_string())?;
    if check {
        let committed = docs::read_committed(root, &expected).map_err(|e| e.to_string())?;
        let drift = docs::diff(&expected, &committed);
        let resources: Vec<&str> = schemas.resources.keys().map(String::as_str).collect();
        let data_sources: Vec<&str> = schemas.data_sources.keys().map(String::as_str).collect();
        let problems = docs::registry::check(root, docs::PROVIDER_NAME, &resources, &data_sources);
        if !problems.is_empty() {
            eprintln!("docs/ breaks the Terraform Registry's rules (tfplugindocs validate):");
            for p in &problems {
                eprintln!("  {p}");
            }
            return Ok(ExitCode::FAILURE);
        }
        if drift.is_empty() {
            println!("docs are up to date ({} pages)", expected.len());
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!("The generated docs are out of date:");
        for d in &drift {
            eprintln!("  {d}");
        }
        eprintln!("Run `make docs` and commit the result.");
        return Ok(ExitCode::FAILURE);
    }
    let changed = docs::write(root, &expected).map_err(|e| e.to_string())?;
    for d in &changed {
        match d {
            docs::Drift::Differs(p) => println!("updated {}", p.display()),
            docs::Drift::Missing(p) => println!("created {}", p.display()),
            docs::Drift::Stale(p) => println!("removed {}", p.display()),
        }
    }
    println!("{} pages, {} updated", expected.len(), changed.len());
    Ok(ExitCode::SUCCESS)
}
