//! Acceptance tests of the `nixbuild_cachix_cache` data source against the
//! Cachix API stand-in (tests/standins/cachix_api.py: the real Cachix service
//! cannot be reached here), on every Terraform version.

mod common;

use common::{hcl, provider_config, terraform_versions, world, Tf};

fn config(provider_extra: &str, body: &str) -> String {
    format!("{}\n{body}", provider_config(provider_extra))
}

fn cachix_provider(token: Option<&str>) -> String {
    let api = world().json["cachix_api"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    match token {
        Some(token) => format!(
            "cachix {{\n    api_url    = {}\n    auth_token = {}\n  }}",
            hcl(&api),
            hcl(token)
        ),
        None => format!("cachix {{\n    api_url = {}\n  }}", hcl(&api)),
    }
}

const READ_BOTH: &str = r#"
data "nixbuild_cachix_cache" "public" {
  name = "public-cache"
}

data "nixbuild_cachix_cache" "private" {
  name = "private-cache"
}

output "public" {
  value = {
    uri                 = data.nixbuild_cachix_cache.public.uri
    is_public           = data.nixbuild_cachix_cache.public.is_public
    public_signing_keys = data.nixbuild_cachix_cache.public.public_signing_keys
  }
}

output "private" {
  value = {
    uri  = data.nixbuild_cachix_cache.private.uri
    keys = data.nixbuild_cachix_cache.private.public_signing_keys
    open = data.nixbuild_cachix_cache.private.is_public
  }
}
"#;

/// Public and private caches read as the API describes them; the token for the
/// private one comes from the provider block and stays out of the state.
#[test]
fn reads_public_and_private_caches() {
    let w = world();
    let caches = &w.json["cachix_api"]["caches"];
    let token = w.json["cachix_api"]["token"].as_str().unwrap().to_string();
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&config(&cachix_provider(Some(&token)), READ_BOTH));
        tf.apply();
        tf.assert_no_changes();
        let public = tf.output("public");
        assert_eq!(public["uri"], caches["public-cache"]["uri"]);
        assert_eq!(public["is_public"], true);
        assert_eq!(
            public["public_signing_keys"],
            serde_json::json!([caches["public-cache"]["public_key"]])
        );
        let private = tf.output("private");
        assert_eq!(private["open"], false);
        assert_eq!(
            private["keys"],
            serde_json::json!([caches["private-cache"]["public_key"]])
        );
        assert!(
            !tf.state_text().contains(&token),
            "the provider-level token reached the state"
        );
        tf.destroy();
    }
}

/// Without a token the private cache is refused, with the cache named; a bad
/// name fails at plan time.
#[test]
fn refusals_and_bad_names() {
    for version in terraform_versions() {
        let tf = Tf::new(&version);
        tf.write(&config(
            &cachix_provider(None),
            "data \"nixbuild_cachix_cache\" \"p\" {\n  name = \"private-cache\"\n}\n",
        ));
        let text = tf.fails(&["plan", "-no-color"]);
        assert!(
            text.contains("Cannot look up the Cachix cache `private-cache`"),
            "{text}"
        );
        assert!(text.contains("credentials"), "{text}");

        let tf = Tf::new(&version);
        tf.write(&config(
            &cachix_provider(None),
            "data \"nixbuild_cachix_cache\" \"p\" {\n  name = \"Not A Cache\"\n}\n",
        ));
        let text = tf.fails(&["plan", "-no-color"]);
        assert!(
            text.contains("Invalid Cachix cache name") && text.contains("name = \"Not A Cache\""),
            "{text}"
        );
    }
}
