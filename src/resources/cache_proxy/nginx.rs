//! The files `nixbuild_cache_proxy` puts on the host, rendered from its
//! arguments: the nginx config and the systemd unit. Deterministic, so their
//! hashes can be compared with what is found on the host.
//!
//! Two servers in one nginx: the public one caches (`proxy_cache`) and asks
//! an internal one on a Unix socket, which walks the upstreams in order
//! (`error_page` to the next on a 404 or an error). The cache therefore sees
//! one answer per path: a 404 means no upstream has it.

use super::config::Upstream;

pub const CONF_DIR: &str = "/etc/nixbuild/cache-proxy";
pub const UNIT: &str = "nixbuild-cache-proxy.service";
pub const CACHE_DIR: &str = "/var/cache/nixbuild-cache-proxy";
const RUN_DIR: &str = "/run/nixbuild-cache-proxy";

/// Everything the config depends on, already validated.
pub struct ProxyConfig {
    pub upstreams: Vec<Upstream>,
    pub listen: String,
    pub tls: bool,
    pub max_size: String,
    pub nar_ttl: u64,
    pub narinfo_ttl: u64,
    pub negative_ttl: u64,
    pub priority: i64,
}

impl ProxyConfig {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |indent: usize, text: &str| {
            out.push_str(&"  ".repeat(indent));
            out.push_str(text);
            out.push('\n');
        };
        line(
            0,
            "# Managed by terraform-provider-nixbuild (nixbuild_cache_proxy). Edits are",
        );
        line(0, "# reported as drift and overwritten on the next apply.");
        line(0, "daemon off;");
        line(0, "user www-data;");
        line(0, "worker_processes auto;");
        line(0, &format!("pid {RUN_DIR}/nginx.pid;"));
        line(0, "error_log stderr warn;");
        line(0, "events { worker_connections 1024; }");
        line(0, "http {");
        line(1, "default_type application/octet-stream;");
        line(1, "sendfile on;");
        line(1, "tcp_nopush on;");
        line(1, "server_tokens off;");
        line(1, "log_format nixbuild_cache '$remote_addr \"$request\" $status $body_bytes_sent cache=$upstream_cache_status';");
        line(1, "access_log syslog:server=unix:/dev/log,tag=nixbuild_cache_proxy,nohostname nixbuild_cache;");
        for (name, dir) in [
            ("client_body", "client"),
            ("proxy", "proxy"),
            ("fastcgi", "fastcgi"),
            ("uwsgi", "uwsgi"),
            ("scgi", "scgi"),
        ] {
            line(1, &format!("{name}_temp_path {CACHE_DIR}/tmp/{dir};"));
        }
        line(1, &format!(
            "proxy_cache_path {CACHE_DIR}/store levels=1:2 keys_zone=nixbuild_cache:32m max_size={} inactive={}s use_temp_path=off;",
            self.max_size, self.nar_ttl
        ));
        line(0, "");
        line(
            1,
            "# The upstreams, in order: a 404 or an error goes to the next one.",
        );
        line(1, "server {");
        line(2, &format!("listen unix:{RUN_DIR}/upstreams.sock;"));
        line(2, "recursive_error_pages on;");
        line(2, "proxy_intercept_errors on;");
        line(2, "proxy_connect_timeout 5s;");
        line(2, "proxy_read_timeout 60s;");
        line(2, "proxy_http_version 1.1;");
        line(2, "proxy_set_header Connection \"\";");
        line(2, "set $nix_path $uri;");
        let count = self.upstreams.len();
        for (i, up) in self.upstreams.iter().enumerate() {
            if i == 0 {
                line(2, "location / {");
            } else {
                line(2, &format!("location @upstream{i} {{"));
            }
            if i + 1 < count {
                line(
                    3,
                    &format!("error_page 404 500 502 503 504 = @upstream{};", i + 1),
                );
            }
            let host = if up.host.contains(':') {
                format!("[{}]", up.host)
            } else {
                up.host.clone()
            };
            let default_port = if up.tls { 443 } else { 80 };
            let authority = if up.port == default_port {
                host.clone()
            } else {
                format!("{host}:{}", up.port)
            };
            line(3, &format!("rewrite ^ {}$nix_path break;", up.path));
            line(3, &format!("proxy_set_header Host {authority};"));
            if up.tls {
                line(3, "proxy_ssl_server_name on;");
                line(3, &format!("proxy_ssl_name {};", up.host));
                line(3, "proxy_ssl_verify on;");
                line(3, "proxy_ssl_verify_depth 4;");
                line(
                    3,
                    "proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;",
                );
            }
            let scheme = if up.tls { "https" } else { "http" };
            line(3, &format!("proxy_pass {scheme}://{host}:{};", up.port));
            line(2, "}");
        }
        line(1, "}");
        line(0, "");
        line(1, "server {");
        let ssl = if self.tls { " ssl" } else { "" };
        line(2, &format!("listen {}{ssl};", self.listen));
        if self.tls {
            line(2, &format!("ssl_certificate {CONF_DIR}/tls.crt;"));
            line(2, &format!("ssl_certificate_key {CONF_DIR}/tls.key;"));
            line(2, "ssl_protocols TLSv1.2 TLSv1.3;");
        }
        line(
            2,
            "add_header X-Cache-Status $upstream_cache_status always;",
        );
        line(2, "proxy_cache nixbuild_cache;");
        line(2, "proxy_cache_key $uri;");
        line(2, "proxy_cache_lock on;");
        line(2, "proxy_cache_lock_timeout 10m;");
        line(2, "proxy_cache_lock_age 10m;");
        line(
            2,
            "proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;",
        );
        line(
            2,
            "proxy_ignore_headers Cache-Control Expires Set-Cookie X-Accel-Expires Vary;",
        );
        line(2, "proxy_hide_header Set-Cookie;");
        line(2, "proxy_read_timeout 10m;");
        line(2, "location = /nix-cache-info {");
        line(3, "default_type text/x-nix-cache-info;");
        line(
            3,
            &format!(
                "return 200 \"StoreDir: /nix/store\\nWantMassQuery: 1\\nPriority: {}\\n\";",
                self.priority
            ),
        );
        line(2, "}");
        for (location, ttl) in [("/nar/", self.nar_ttl), ("/", self.narinfo_ttl)] {
            line(2, &format!("location {location} {{"));
            // A level that sets proxy_cache_valid inherits none: both here.
            line(3, &format!("proxy_cache_valid 200 {ttl}s;"));
            line(3, &format!("proxy_cache_valid 404 {}s;", self.negative_ttl));
            line(3, "limit_except GET { deny all; }");
            line(
                3,
                &format!("proxy_pass http://unix:{RUN_DIR}/upstreams.sock;"),
            );
            line(2, "}");
        }
        line(1, "}");
        line(0, "}");
        out
    }
}

/// The systemd unit running nginx with the config above.
pub fn unit() -> String {
    format!(
        "# Managed by terraform-provider-nixbuild (nixbuild_cache_proxy).\n\
         [Unit]\n\
         Description=Nix binary cache proxy (nginx, managed by terraform-provider-nixbuild)\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         RuntimeDirectory=nixbuild-cache-proxy\n\
         ExecStartPre=/usr/sbin/nginx -t -q -c {CONF_DIR}/nginx.conf\n\
         ExecStart=/usr/sbin/nginx -c {CONF_DIR}/nginx.conf\n\
         ExecReload=/bin/kill -HUP $MAINPID\n\
         KillSignal=SIGQUIT\n\
         TimeoutStopSec=10\n\
         Restart=on-failure\n\
         \n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(upstreams: &[&str]) -> ProxyConfig {
        ProxyConfig {
            upstreams: upstreams
                .iter()
                .map(|u| super::super::config::check_upstream_url(u).unwrap())
                .collect(),
            listen: "127.0.0.20:9000".into(),
            tls: false,
            max_size: "1G".into(),
            nar_ttl: 86400,
            narinfo_ttl: 600,
            negative_ttl: 60,
            priority: 30,
        }
    }

    #[test]
    fn upstreams_chain_in_order() {
        let text = config(&["https://cache.nixos.org", "http://127.0.0.1:8750/sub"]).render();
        assert!(text.contains("error_page 404 500 502 503 504 = @upstream1;"));
        assert!(text.contains("location @upstream1 {"));
        assert!(!text.contains("@upstream2"));
        assert!(text.contains("proxy_pass https://cache.nixos.org:443;"));
        assert!(text.contains("proxy_ssl_name cache.nixos.org;"));
        assert!(text.contains("rewrite ^ /sub$nix_path break;"));
        assert!(text.contains("proxy_set_header Host 127.0.0.1:8750;"));
        assert!(text.contains("Priority: 30"));
        assert_eq!(
            text,
            config(&["https://cache.nixos.org", "http://127.0.0.1:8750/sub"]).render()
        );
    }

    #[test]
    fn tls_adds_certificate_lines() {
        let mut c = config(&["http://127.0.0.1:1"]);
        assert!(!c.render().contains("ssl_certificate"));
        c.tls = true;
        let text = c.render();
        assert!(text.contains("listen 127.0.0.20:9000 ssl;"));
        assert!(text.contains("ssl_certificate_key /etc/nixbuild/cache-proxy/tls.key;"));
    }
}
