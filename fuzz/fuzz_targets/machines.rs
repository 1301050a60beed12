//! Machines files written by hand (`nixbuild_machines_file` imports, the
//! `builders` value of a host): any text.
//!
//! Properties: `parse` never panics; an error names a line of the text;
//! a rendered file parses and renders back to the same bytes (also through
//! the one-line `builders` value); machines without `problems()` render to
//! a file that parses to the same machines (a value the checks refuse, such
//! as a system list `,-`, may not: it renders as `-`); judging the
//! machines (`problems`, which decodes column 8 as an SSH key) and the
//! renderings for Nix (`build_machines_nix`, `nix_build_command`) never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use terraform_provider_nixbuild::nix::machines::{
    build_machines_nix, builders_line, nix_build_command, nix_conf_inline, parse, render,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let machines = match parse(text) {
        Ok(m) => m,
        Err(e) => {
            assert!(e.line >= 1 && e.line <= text.split('\n').count(), "{e}");
            return;
        }
    };
    let file = render(&machines);
    let again = parse(&file).unwrap_or_else(|e| panic!("{machines:?} renders to {file:?}: {e}"));
    assert_eq!(render(&again), file);
    assert!(file.lines().all(|l| l.split(' ').count() == 8), "{file:?}");
    let line = builders_line(&machines);
    assert_eq!(parse(&line).unwrap(), again, "{line:?}");
    let mut valid = true;
    for m in &machines {
        valid &= m.problems().is_empty();
    }
    if valid {
        assert_eq!(again, machines, "{file:?}");
        let _ = build_machines_nix(&machines);
        let _ = nix_build_command(&machines);
        let _ = nix_conf_inline(&machines);
    }
});
