//! Binary-cache destinations (Cachix and anything `nix copy --to` writes) and
//! their HTTP presence checks.
pub mod cachix;
pub mod http;
pub mod store;
