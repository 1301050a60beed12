//! Acceptance tests of `nixbuild_builder`'s `push` block on every supported
//! Terraform version, on the namespace host h3 (the hook starts the worker)
//! and on the systemd host sd (the worker is a unit): a client's `nix-build
//! --builders @machines` builds on the builder through the file
//! `nixbuild_machines_file` wrote, and the builder's post-build hook gets the
//! result, signed, into the world's nginx cache; an unreachable or silent
//! store fails no build and is logged on the host; drift, removal, destroy;
//! and plan-time errors for bad input.

mod common;
use common::daemon_restart_command;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{exclusive, hcl, nix_signing_key, provider_config, terraform_versions, world, Tf};

/// The worker's log on a host without systemd.
const LOG: &str = "/var/log/nixbuild-push.log";

fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{}-{nanos}", std::process::id())
}

/// The world's second nginx cache (writable over HTTP PUT): (url, dir).
fn cache() -> (String, PathBuf) {
    let second = &world().json["cache"]["second"];
    (
        second["url"].as_str().unwrap().to_string(),
        PathBuf::from(second["dir"].as_str().unwrap()),
    )
}

fn narinfo(dir: &Path, path: &str) -> Option<String> {
    let hash = &path.trim_start_matches("/nix/store/")[..32];
    std::fs::read_to_string(dir.join(format!("{hash}.narinfo"))).ok()
}

/// A loopback port nobody listens on (bound once, then released).
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A builder host the scenario runs on: the namespace host h3 (no systemd:
/// the hook starts the worker, which logs to a file) or the systemd host sd
/// (Debian's Nix installed by the provider; the worker is a unit, its log
/// the journal).
struct Builder {
    name: &'static str,
    systemd: bool,
}

impl Builder {
    fn host(&self) -> common::Host<'static> {
        world().host(self.name)
    }

    fn nix_block(&self) -> String {
        if self.systemd {
            "nix {\n    install      = \"distro\"\n    extra_config = \"substituters =\\nexperimental-features = nix-command flakes\"\n  }".into()
        } else {
            format!(
                "nix {{\n    install                = \"none\"\n    daemon_restart_command = {}\n  }}",
                hcl(&daemon_restart_command(&self.host()))
            )
        }
    }

    /// The worker's log on the host.
    fn log(&self) -> String {
        let command = if self.systemd {
            "journalctl -u nixbuild-push.service --no-pager -o cat 2>/dev/null || true".into()
        } else {
            format!("cat {LOG} 2>/dev/null || true")
        };
        self.host().exec(&command)
    }

    /// What the `push` block put on the host that is still there.
    fn leftovers(&self) -> String {
        self.host().exec(&format!(
            "for f in /etc/nixbuild/push /var/lib/nixbuild/push {LOG} /etc/systemd/system/nixbuild-push.service /etc/systemd/system/nixbuild-push.path; do test -e $f && echo $f; done; true"
        ))
    }

    /// The builder with `push` (when given), and a machines file for it.
    fn config(
        &self,
        machines: &Path,
        client_key: &str,
        client_pub: &str,
        push: Option<&str>,
    ) -> String {
        format!(
            r#"{provider}
resource "nixbuild_builder" "b" {{
  host       = {address}
  on_destroy = "clean"
  {nix}
  build_user {{
    authorized_keys = [{client_pub}]
  }}
  {push}
}}

resource "nixbuild_machines_file" "m" {{
  path = {machines}
  machine {{
    uri             = nixbuild_builder.b.store_uri
    systems         = nixbuild_builder.b.systems
    ssh_key         = {client_key}
    public_host_key = nixbuild_builder.b.host_key_base64
  }}
}}
"#,
            provider = provider_config(""),
            address = hcl(&self.host().address()),
            nix = self.nix_block(),
            client_pub = hcl(client_pub),
            client_key = hcl(client_key),
            machines = hcl(machines.to_str().unwrap()),
            push = push.unwrap_or_default(),
        )
    }
}

fn push_block(uri: &str, secret: &str) -> String {
    format!(
        "push {{\n    store_uri  = {}\n    secret_key = {}\n    exclude    = [\"-doc$\"]\n  }}",
        hcl(uri),
        hcl(secret.trim())
    )
}

/// One derivation with two outputs, `out` and `doc` (excluded from pushes).
fn expr(nonce: &str) -> String {
    format!(
        r#"let d = derivation {{
  name = "push-hook-test";
  outputs = [ "out" "doc" ];
  system = builtins.currentSystem;
  builder = "/bin/sh";
  args = [ "-c" "echo {nonce} > $out; echo doc {nonce} > $doc" ];
}}; in [ d.out d.doc ]
"#
    )
}

/// Build `expr` on the machine running the tests with no local build slots,
/// so it must go to the builder of the machines file: (out, doc).
fn build_remotely(
    builder: &Builder,
    work: &Path,
    machines: &Path,
    nonce: &str,
) -> (String, String) {
    let file = work.join(format!("{nonce}.nix"));
    std::fs::write(&file, expr(nonce)).unwrap();
    let home = work.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new("nix-build")
        .arg(&file)
        .args(["--no-out-link", "--max-jobs", "0"])
        .args(["--builders", &format!("@{}", machines.display())])
        .args(["--option", "substituters", ""])
        .env("HOME", &home)
        .env_remove("NIX_REMOTE")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nix-build failed:\n{log}");
    let paths: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(paths.len(), 2, "{paths:?}\n{log}");
    let on_builder = builder
        .host()
        .exec(&format!("test -e {} && echo yes || echo no", paths[0]));
    assert_eq!(on_builder, "yes", "not built on {}:\n{log}", builder.name);
    (paths[0].clone(), paths[1].clone())
}

/// Wait (bounded) until `probe` returns something.
fn wait_for<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(started.elapsed() < limit, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// `nix store verify` of `path` in the cache, trusting only `public_key`.
fn verified_by(cache_url: &str, path: &str, public_key: &str) -> bool {
    Command::new("nix")
        .args(["--extra-experimental-features", "nix-command"])
        .args(["store", "verify", "--no-contents", "--store", cache_url])
        .args(["--option", "trusted-public-keys", public_key.trim()])
        .arg(path)
        .env("HOME", std::env::temp_dir())
        .output()
        .unwrap()
        .status
        .success()
}

/// The whole user session on one builder, on every Terraform version.
fn scenario(builder: &Builder) {
    let host = builder.host();
    let (cache_url, cache_dir) = cache();
    for version in terraform_versions() {
        if builder.systemd {
            host.reset();
        }
        let mut tf = Tf::new(&version);
        let log_path = tf.dir.path().join("terraform.log");
        tf.env("TF_LOG_PROVIDER", "trace")
            .env("TF_LOG_PATH", log_path.to_str().unwrap());
        let dir = tf.dir.path().to_path_buf();
        let machines = dir.join("machines");
        let (client_key, client_pub) = common::keypair(&dir, "client");
        let key_name = format!("push-hook-{}-{}", builder.name, version.replace('.', "-"));
        let (secret, public) = nix_signing_key(&dir, &key_name);
        let (other_secret, _) = nix_signing_key(&dir, "another-key");
        let secret_part = secret.trim().split_once(':').unwrap().1.to_string();
        let commands_before = host.commands_log().len();
        let config = |push: Option<&str>| builder.config(&machines, &client_key, &client_pub, push);

        tf.write(&config(Some(&push_block(&cache_url, &secret))));
        tf.apply();
        tf.assert_no_changes();
        let conf = host.exec("cat /etc/nix/nixbuild.conf");
        assert!(
            conf.lines()
                .any(|l| l == "post-build-hook = /etc/nixbuild/push/hook"),
            "{conf}"
        );
        assert_eq!(
            host.exec("stat -c '%a %U' /etc/nixbuild/push/secret-key /etc/nixbuild/push"),
            "600 root\n700 root"
        );
        if builder.systemd {
            assert_eq!(
                host.exec("systemctl is-active nixbuild-push.path"),
                "active"
            );
        }

        // A build for a remote client, through the machines file: its `out`
        // reaches the cache signed by the key; `doc` is excluded.
        let (out, doc) = build_remotely(builder, &dir, &machines, &nonce());
        let built = Instant::now();
        let info = wait_for("the narinfo in the cache", Duration::from_secs(120), || {
            narinfo(&cache_dir, &out)
        });
        let in_cache = built.elapsed();
        assert!(
            info.lines()
                .any(|l| l.starts_with(&format!("Sig: {key_name}:"))),
            "{info}"
        );
        assert!(
            verified_by(&cache_url, &out, &public),
            "signature does not verify"
        );
        assert!(
            !verified_by(
                &cache_url,
                &out,
                "another-key:Q1gHs+jk5OpN4J4EWMT2Mqy+xgvuzoz3lEdv+VO2xOM="
            ),
            "verifies with a key that did not sign it"
        );
        let log = wait_for("the worker's log line", Duration::from_secs(30), || {
            let log = builder.log();
            log.contains(&format!("pushed {out} ")).then_some(log)
        });
        assert!(
            !log.contains(&doc),
            "the excluded output was pushed:\n{log}"
        );
        assert!(narinfo(&cache_dir, &doc).is_none(), "{doc} is in the cache");
        tf.assert_no_changes();
        // What a build waits for: the hook alone, as the daemon runs it.
        let hook_ms = host.exec(
            "s=$(date +%s%N); OUT_PATHS=/nix/store/00000000000000000000000000000000-gone /etc/nixbuild/push/hook; echo $(( ($(date +%s%N) - s) / 1000000 ))",
        );
        eprintln!(
            "{} (Terraform {version}): the hook returned in {hook_ms} ms; the build was in the cache {in_cache:?} after nix-build returned (polled every 0.5 s)",
            builder.name
        );

        // Drift: another key in the key file plans an update that restores it.
        host.exec(&format!(
            "printf %s '{}' > /etc/nixbuild/push/secret-key",
            other_secret.trim()
        ));
        let (code, plan) = tf.plan_exit_code();
        assert_eq!(code, 2, "{plan}");
        assert!(
            plan.contains("/etc/nixbuild/push/secret-key was changed on the host"),
            "{plan}"
        );
        if builder.systemd {
            host.exec("systemctl stop nixbuild-push.path");
            let (code, plan) = tf.plan_exit_code();
            assert_eq!(code, 2, "{plan}");
            assert!(plan.contains("nixbuild-push.path is `inactive`"), "{plan}");
        }
        tf.apply();
        tf.assert_no_changes();

        // An unreachable store: the build succeeds, the host logs the failure.
        let dead = format!("http://127.0.0.1:{}", dead_port());
        tf.write(&config(Some(&push_block(&dead, &secret))));
        let applied = tf.apply();
        assert!(
            applied.contains("1 changed"),
            "not an in-place update:\n{applied}"
        );
        tf.assert_no_changes();
        let (out, _) = build_remotely(builder, &dir, &machines, &nonce());
        let log = wait_for("the logged failure", Duration::from_secs(60), || {
            let log = builder.log();
            log.contains(&format!("push to {dead} failed for {out}"))
                .then_some(log)
        });
        assert!(narinfo(&cache_dir, &out).is_none(), "{log}");
        tf.assert_no_changes();

        // A store that accepts connections and never answers: the build
        // returns while its push is still pending, which fails (logged) once
        // the store goes away.
        let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let slow = format!("http://{}", hanging.local_addr().unwrap());
        tf.write(&config(Some(&push_block(&slow, &secret))));
        tf.apply();
        tf.assert_no_changes();
        let (out, _) = build_remotely(builder, &dir, &machines, &nonce());
        let failed = format!("push to {slow} failed for {out}");
        assert!(
            !builder.log().contains(&failed),
            "the push ended although the store never answered"
        );
        drop(hanging);
        let log = wait_for(
            "the logged failure of the pending push",
            Duration::from_secs(120),
            || {
                let log = builder.log();
                (log.contains(&failed) && log.contains("wait for the next run")).then_some(log)
            },
        );
        // The store failed: the earlier failed build was not tried again in
        // this run, it waits, with the new one, for the next.
        assert!(log.contains("1 build(s) wait for the next run"), "{log}");
        assert_eq!(host.exec("ls /var/lib/nixbuild/push/failed | wc -l"), "2");

        // The key never travelled on a command line, never reached a log,
        // and is in the state only as the sensitive argument.
        let commands = host.commands_log()[commands_before..].to_string();
        assert!(
            !commands.contains(&secret_part),
            "the key is in a remote command"
        );
        let provider_log = std::fs::read_to_string(&log_path).unwrap();
        assert!(provider_log.len() > 1000, "no provider log was written");
        assert!(
            !provider_log.contains(&secret_part),
            "the key is in the log"
        );
        assert!(
            !builder.log().contains(&secret_part),
            "the key is in the host's log"
        );
        assert_eq!(tf.state_text().matches(&secret_part).count(), 1);

        // Removing the block removes the hook line, the files, the queue and
        // the units; builds go on.
        tf.write(&config(None));
        tf.apply();
        tf.assert_no_changes();
        assert!(
            !host
                .exec("cat /etc/nix/nixbuild.conf")
                .contains("post-build-hook"),
            "the hook line stayed"
        );
        assert_eq!(builder.leftovers(), "");
        build_remotely(builder, &dir, &machines, &nonce());

        // `on_destroy = "clean"` with the block removes it too.
        tf.write(&config(Some(&push_block(&cache_url, &secret))));
        tf.apply();
        tf.assert_no_changes();
        tf.destroy();
        assert_eq!(builder.leftovers(), "");
        assert_eq!(
            host.exec("test -e /etc/nix/nixbuild.conf && echo left || echo gone"),
            "gone"
        );
    }
}

#[test]
fn namespace_host_every_build_lands_signed_in_the_cache_and_no_store_fails_a_build() {
    let _h3 = exclusive("h3");
    scenario(&Builder {
        name: "h3",
        systemd: false,
    });
}

#[test]
fn systemd_host_every_build_lands_signed_in_the_cache_and_no_store_fails_a_build() {
    let _sd = exclusive("sd");
    scenario(&Builder {
        name: "sd",
        systemd: true,
    });
}

/// Terraform wraps diagnostics to the terminal width: compare with runs of
/// whitespace folded to one space.
fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn bad_push_input_fails_at_plan_time() {
    let _h3 = exclusive("h3");
    let host = world().host("h3");
    const KEY: &str = "k-1:Z0lKmLg3ocfwxXuDvEnbFa/gt1axJPeAjHTuEQJZHn00Lg9n+CaTYHhqKSCqQ4H7cJ/ZNVo7FC+7Z6CQmUtXTw==";
    let ok_uri = "store_uri = \"http://127.0.0.1:8753\"";
    let ok_key = format!("secret_key = {}", hcl(KEY));
    // (what, the push block's lines, the line the error points at, the reason)
    let cases: Vec<(&str, String, String, &str)> = vec![
        (
            "ftp scheme",
            format!("store_uri = \"ftp://cache.example\"\n    {ok_key}"),
            "store_uri".into(),
            "unknown store URI scheme `ftp`",
        ),
        (
            "no scheme",
            format!("store_uri = \"cache.example\"\n    {ok_key}"),
            "store_uri".into(),
            "is not a store URI",
        ),
        (
            "no host",
            format!("store_uri = \"http://\"\n    {ok_key}"),
            "store_uri".into(),
            "names no host",
        ),
        (
            "key in the uri",
            format!("store_uri = \"file:///c?secret-key=/k\"\n    {ok_key}"),
            "store_uri".into(),
            "do not put `secret-key=`",
        ),
        (
            "public key",
            format!(
                "{ok_uri}\n    secret_key = \"k-1:Q1gHs+jk5OpN4J4EWMT2Mqy+xgvuzoz3lEdv+VO2xOM=\""
            ),
            "secret_key".into(),
            "is this the public key?",
        ),
        (
            "key without name",
            format!("{ok_uri}\n    secret_key = \"Z0lKmLg3\""),
            "secret_key".into(),
            "expected `<key name>:<base64>`",
        ),
        (
            "key not base64",
            format!("{ok_uri}\n    secret_key = \"k-1:not base64!\""),
            "secret_key".into(),
            "not base64",
        ),
        (
            "bad regex",
            format!("{ok_uri}\n    {ok_key}\n    exclude = [\"(\"]"),
            "exclude".into(),
            "Invalid push exclude pattern",
        ),
        (
            "perl class",
            format!("{ok_uri}\n    {ok_key}\n    exclude = [\"-\\\\d+$\"]"),
            "exclude".into(),
            "escape classes differ",
        ),
        (
            "empty pattern",
            format!("{ok_uri}\n    {ok_key}\n    exclude = [\"\"]"),
            "exclude".into(),
            "would exclude every path",
        ),
        (
            "duplicate pattern",
            format!("{ok_uri}\n    {ok_key}\n    exclude = [\"-doc$\", \"-doc$\"]"),
            "exclude".into(),
            "is listed twice",
        ),
    ];
    assert!(cases.len() >= 5);
    let mut config = provider_config("");
    for (i, (_, lines, _, _)) in cases.iter().enumerate() {
        config.push_str(&format!(
            "\nresource \"nixbuild_builder\" \"c{i}\" {{\n  host = {}\n  push {{\n    {lines}\n  }}\n}}\n",
            hcl(&host.address())
        ));
    }
    // A hook of one's own in extra_config next to the block.
    config.push_str(&format!(
        "\nresource \"nixbuild_builder\" \"twice\" {{\n  host = {}\n  nix {{\n    extra_config = \"post-build-hook = /usr/local/bin/upload\"\n  }}\n  push {{\n    {ok_uri}\n    {ok_key}\n  }}\n}}\n",
        hcl(&host.address())
    ));
    for version in terraform_versions() {
        let connections = host.connections_logged();
        let tf = Tf::new(&version);
        tf.write(&config);
        let text = tf.fails(&["plan", "-no-color"]);
        let errors: Vec<&str> = text.split("Error: ").skip(1).collect();
        for (i, (what, _, attribute, why)) in cases.iter().enumerate() {
            let resource = format!("nixbuild_builder.c{i},");
            let found = errors.iter().any(|e| {
                e.contains(&resource)
                    && e.contains(&format!("{attribute} "))
                    && flat(e).contains(why)
            });
            assert!(
                found,
                "{what} (Terraform {version}): no error at push.{attribute} of {resource}\n{text}"
            );
        }
        assert!(
            errors.iter().any(|e| e.contains("nixbuild_builder.twice,")
                && e.contains("extra_config")
                && flat(e).contains("Nix runs one hook only")),
            "{text}"
        );
        assert_eq!(errors.len(), cases.len() + 1, "{text}");
        assert_eq!(
            host.connections_logged(),
            connections,
            "a plan with bad input connected"
        );
    }
}

/// `builder.config` with `on_destroy` and extra builder arguments changed.
fn drain_config(config: String, on_destroy: &str, extra: &str) -> String {
    config.replace(
        "on_destroy = \"clean\"",
        &format!("on_destroy = \"{on_destroy}\"\n  {extra}"),
    )
}

/// Nothing built is lost at destroy. With a `push` block, destroying the
/// builder first uploads every queued build (here the worker is held back by
/// its lock, so the build is still queued when `terraform destroy` starts),
/// with either `on_destroy`. With the store down, the destroy fails within
/// `timeouts.delete`, saying how many paths are left, and keeps the builder;
/// once the store is back, destroy uploads them. A builder that cannot be
/// reached does not block a `keep` destroy: a warning, within the read
/// policy's short connect.
#[test]
fn namespace_host_destroy_uploads_the_push_queue_first_or_fails_saying_what_is_left() {
    let _h3 = exclusive("h3");
    drain_scenario(&Builder {
        name: "h3",
        systemd: false,
    });
}

/// The same on the systemd host: the worker is the unit, which destroy starts.
#[test]
fn systemd_host_destroy_uploads_the_push_queue_first_or_fails_saying_what_is_left() {
    let _sd = exclusive("sd");
    drain_scenario(&Builder {
        name: "sd",
        systemd: true,
    });
}

fn drain_scenario(builder: &Builder) {
    let host = builder.host();
    let (cache_url, cache_dir) = cache();
    for version in terraform_versions() {
        if builder.systemd {
            host.reset();
        }
        let tf = Tf::new(&version);
        let dir = tf.dir.path().to_path_buf();
        let machines = dir.join("machines");
        let (client_key, client_pub) = common::keypair(&dir, "client");
        let key_name = format!("push-drain-{}", version.replace('.', "-"));
        let (secret, public) = nix_signing_key(&dir, &key_name);
        let config = |uri: &str| {
            builder.config(
                &machines,
                &client_key,
                &client_pub,
                Some(&push_block(uri, &secret)),
            )
        };
        let queued = || {
            host.exec(
                "find /var/lib/nixbuild/push/queue /var/lib/nixbuild/push/failed -type f | grep -c . || true",
            )
        };

        // 1. A build whose push has not happened yet, then destroy at once.
        tf.write(&config(&cache_url));
        tf.apply();
        // (What an interrupted earlier run may have left queued.)
        host.exec("rm -f /var/lib/nixbuild/push/queue/* /var/lib/nixbuild/push/failed/*");
        host.exec("setsid flock /var/lib/nixbuild/push/lock sleep 12 </dev/null >/dev/null 2>&1 &");
        let (out, _) = build_remotely(builder, &dir, &machines, &nonce());
        assert_eq!(queued(), "1", "the build is not queued: {}", builder.log());
        assert!(
            narinfo(&cache_dir, &out).is_none(),
            "pushed despite the lock"
        );
        let started = Instant::now();
        tf.destroy();
        eprintln!(
            "[timing] destroy that waited for the held push worker ({version}): {:.1}s",
            started.elapsed().as_secs_f64()
        );
        let info = narinfo(&cache_dir, &out).expect("destroy ended before the build was uploaded");
        assert!(
            info.lines()
                .any(|l| l.starts_with(&format!("Sig: {key_name}:"))),
            "{info}"
        );
        assert!(verified_by(&cache_url, &out, &public));
        assert_eq!(builder.leftovers(), "");

        // 2. The store is down: a `keep` destroy fails within
        //    timeouts.delete, naming how many paths are left.
        let dead = format!("http://127.0.0.1:{}", dead_port());
        tf.write(&drain_config(
            config(&dead),
            "keep",
            "timeouts {\n    delete = \"20s\"\n  }",
        ));
        tf.apply();
        let (out, _) = build_remotely(builder, &dir, &machines, &nonce());
        wait_for("the logged failure", Duration::from_secs(60), || {
            builder
                .log()
                .contains(&format!("push to {dead} failed for {out}"))
                .then_some(())
        });
        let started = Instant::now();
        let text = tf.fails(&["destroy", "-auto-approve", "-no-color"]);
        let took = started.elapsed();
        eprintln!(
            "[timing] destroy with the store down ({version}): {:.1}s",
            took.as_secs_f64()
        );
        assert!(took < Duration::from_secs(45), "took {took:?}:\n{text}");
        let text = flat(&text);
        assert!(
            text.contains(&format!(
                "1 built path(s) on {} were not uploaded",
                host.address()
            )),
            "{text}"
        );
        assert!(text.contains("still holds 1 build(s)"), "{text}");
        assert_eq!(queued(), "1");
        // Still in the state: back with a working store, destroy uploads it.
        tf.write(&config(&cache_url));
        tf.apply();
        tf.destroy();
        assert!(
            narinfo(&cache_dir, &out).is_some(),
            "the path left from the failed destroy was not uploaded"
        );
        assert_eq!(builder.leftovers(), "");

        // 3. A builder that cannot be reached: a `keep` destroy warns and
        //    ends.
        let proxy = common::Proxy::start(&format!("{}:22", host.address()));
        let through = format!(
            "host       = \"127.0.0.1\"\n  ssh {{\n    port = {}\n  }}",
            proxy.port
        );
        let tf = Tf::new(&version);
        tf.write(&drain_config(config(&cache_url), "keep", "").replacen(
            &format!("host       = {}", hcl(&host.address())),
            &through,
            1,
        ));
        tf.apply();
        proxy.stop();
        let started = Instant::now();
        let out = tf.ok(&["destroy", "-auto-approve", "-no-color"]);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(40), "took {took:?}:\n{out}");
        let out = flat(&out);
        assert!(out.contains("Push queue of 127.0.0.1 not checked"), "{out}");
        // Tidy the shared host: a builder there, destroyed with clean.
        let tf = Tf::new(&version);
        tf.write(&config(&cache_url));
        tf.apply();
        tf.destroy();
        assert_eq!(builder.leftovers(), "");
    }
}
