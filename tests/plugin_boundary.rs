//! The plugin boundary (issue 25), against the real provider process started as
//! Terraform starts it (magic cookie, `PLUGIN_PROTOCOL_VERSIONS=6`, a
//! `PLUGIN_CLIENT_CERT` made like go-plugin's AutoMTLS one: ECDSA P-521,
//! self-signed, a CA). Clients are `curl` (HTTP/2 over TLS over the unix
//! socket, gRPC framing by hand) and `openssl s_client`, never the provider's
//! own code: only the process Terraform started it from can call it.
//!
//! The messages are defined here again from the published protocol (module
//! [`wire`]), not taken from the provider's generated types: a wrong field
//! number there is caught here too.
//!
//! The binary started by hand (no cookie) is tested in tests/process.rs
//! (`refuses_to_run_outside_terraform`).

mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use prost::Message;

const COOKIE: (&str, &str) = (
    "TF_PLUGIN_MAGIC_COOKIE",
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
);

/// uid and gid of `nobody`: another user of the machine.
const NOBODY: u32 = 65534;

/// The protocol's messages these tests send and read (tfplugin6, go-plugin's
/// controller, the gRPC health service), from the published definitions.
mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Empty {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct DynamicValue {
        #[prost(bytes = "vec", tag = "1")]
        pub msgpack: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub json: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Diagnostic {
        /// 1 = ERROR, 2 = WARNING
        #[prost(int32, tag = "1")]
        pub severity: i32,
        #[prost(string, tag = "2")]
        pub summary: String,
        #[prost(string, tag = "3")]
        pub detail: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ServerCapabilities {
        #[prost(bool, tag = "1")]
        pub plan_destroy: bool,
        #[prost(bool, tag = "2")]
        pub get_provider_schema_optional: bool,
        #[prost(bool, tag = "3")]
        pub move_resource_state: bool,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Attribute {
        #[prost(string, tag = "1")]
        pub name: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NestedBlock {
        #[prost(string, tag = "1")]
        pub type_name: String,
        #[prost(message, optional, tag = "2")]
        pub block: Option<Block>,
        /// 1 SINGLE, 2 LIST, 3 SET, 4 MAP, 5 GROUP
        #[prost(int32, tag = "3")]
        pub nesting: i32,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Block {
        #[prost(int64, tag = "1")]
        pub version: i64,
        #[prost(message, repeated, tag = "2")]
        pub attributes: Vec<Attribute>,
        #[prost(message, repeated, tag = "3")]
        pub block_types: Vec<NestedBlock>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Schema {
        #[prost(int64, tag = "1")]
        pub version: i64,
        #[prost(message, optional, tag = "2")]
        pub block: Option<Block>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetProviderSchemaResponse {
        #[prost(message, optional, tag = "1")]
        pub provider: Option<Schema>,
        #[prost(map = "string, message", tag = "2")]
        pub resource_schemas: std::collections::HashMap<String, Schema>,
        #[prost(map = "string, message", tag = "3")]
        pub data_source_schemas: std::collections::HashMap<String, Schema>,
        #[prost(message, repeated, tag = "4")]
        pub diagnostics: Vec<Diagnostic>,
        #[prost(message, optional, tag = "6")]
        pub server_capabilities: Option<ServerCapabilities>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TypeName {
        #[prost(string, tag = "1")]
        pub type_name: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct GetMetadataResponse {
        #[prost(message, optional, tag = "1")]
        pub server_capabilities: Option<ServerCapabilities>,
        #[prost(message, repeated, tag = "2")]
        pub diagnostics: Vec<Diagnostic>,
        #[prost(message, repeated, tag = "3")]
        pub data_sources: Vec<TypeName>,
        #[prost(message, repeated, tag = "4")]
        pub resources: Vec<TypeName>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ConfigureProviderRequest {
        #[prost(string, tag = "1")]
        pub terraform_version: String,
        #[prost(message, optional, tag = "2")]
        pub config: Option<DynamicValue>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ConfigureProviderResponse {
        #[prost(message, repeated, tag = "1")]
        pub diagnostics: Vec<Diagnostic>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HealthCheckRequest {
        #[prost(string, tag = "1")]
        pub service: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HealthCheckResponse {
        /// 1 = SERVING
        #[prost(int32, tag = "1")]
        pub status: i32,
    }

    /// A GetProviderSchema request carrying one unknown field of `size`
    /// bytes (number 15): a receiver skips it, so only the message size
    /// limit decides whether the call is served.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PaddedRequest {
        #[prost(bytes = "vec", tag = "15")]
        pub padding: Vec<u8>,
    }
}

/// A certificate and key made like go-plugin's AutoMTLS client certificate:
/// ECDSA P-521 (`openssl ecparam -name secp521r1`), self-signed with
/// ECDSA-SHA512, CN and SAN `localhost`, O HashiCorp, a CA, client and server
/// auth.
struct Cert {
    crt: PathBuf,
    key: PathBuf,
}

impl Cert {
    fn go_plugin_like(dir: &Path, name: &str) -> Self {
        let crt = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .output()
                .expect("run openssl");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&[
            "ecparam",
            "-name",
            "secp521r1",
            "-genkey",
            "-noout",
            "-out",
            key.to_str().unwrap(),
        ]);
        run(&[
            "req",
            "-new",
            "-x509",
            "-sha512",
            "-days",
            "1",
            "-key",
            key.to_str().unwrap(),
            "-subj",
            "/O=HashiCorp/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=digitalSignature,keyEncipherment,keyAgreement,keyCertSign",
            "-addext",
            "extendedKeyUsage=clientAuth,serverAuth",
            "-out",
            crt.to_str().unwrap(),
        ]);
        Cert { crt, key }
    }

    fn pem(&self) -> String {
        std::fs::read_to_string(&self.crt).unwrap()
    }
}

/// The provider process, started as Terraform starts it; killed on drop.
struct Plugin {
    child: Child,
    /// Everything of this test: certificates, the socket parent directory
    /// (`PLUGIN_UNIX_SOCKET_DIR`, mode 0755 so that only the provider's own
    /// directory stands in another user's way), the provider's stderr.
    dir: tempfile::TempDir,
    line: String,
    socket: PathBuf,
    /// The server certificate of the handshake line, as PEM (curl's --cacert).
    server_pem: PathBuf,
    terraform: Cert,
}

impl Plugin {
    fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("nixbuild-boundary-")
            .tempdir()
            .unwrap();
        let sockets = dir.path().join("sockets");
        std::fs::create_dir(&sockets).unwrap();
        for d in [dir.path(), &sockets] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let terraform = Cert::go_plugin_like(dir.path(), "terraform");
        let stderr = std::fs::File::create(dir.path().join("provider.stderr")).unwrap();
        let mut child = Command::new(common::provider_binary())
            .env(COOKIE.0, COOKIE.1)
            .env("PLUGIN_PROTOCOL_VERSIONS", "6")
            .env("PLUGIN_CLIENT_CERT", terraform.pem())
            .env("PLUGIN_UNIX_SOCKET_DIR", &sockets)
            .env("TF_LOG_PROVIDER", "debug")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the provider");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut plugin = Plugin {
            child,
            line: String::new(),
            socket: PathBuf::new(),
            server_pem: dir.path().join("server.pem"),
            terraform,
            dir,
        };
        plugin.line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no handshake line in 30 s\n{}", plugin.stderr()));
        let fields: Vec<&str> = plugin.line.trim_end().split('|').collect();
        assert_eq!(fields.len(), 6, "handshake: {:?}", plugin.line);
        plugin.socket = PathBuf::from(fields[3]);
        let der = base64_decode(fields[5]);
        std::fs::write(&plugin.server_pem, pem("CERTIFICATE", &der)).unwrap();
        plugin
    }

    fn fields(&self) -> Vec<&str> {
        self.line.trim_end().split('|').collect()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("provider.stderr")).unwrap_or_default()
    }

    /// Wait (up to 10 s) until the provider has logged `count` refused TLS
    /// handshakes (a refusal reaches curl as the server's alert, or as a
    /// broken pipe when curl was already writing: the log tells for sure).
    fn assert_refusals_logged(&self, count: usize, reason: &str) {
        let started = Instant::now();
        loop {
            let log = self.stderr();
            let refused = log
                .lines()
                .filter(|l| l.contains("refused a plugin connection") && l.contains(reason))
                .count();
            if refused >= count {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{refused} of {count} refused TLS handshakes ({reason:?}) logged:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A file of the test directory.
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Where clients reach it.
    fn endpoint(&self) -> Endpoint {
        Endpoint {
            socket: self.socket.clone(),
            server_pem: self.server_pem.clone(),
            scratch: self.dir.path().to_path_buf(),
        }
    }

    /// One gRPC call with curl, presenting `cert` (or none).
    fn call(&self, method: &str, body: &[u8], cert: Option<&Cert>, tls: Tls) -> Call {
        self.endpoint().call(method, body, cert, tls, None)
    }

    /// The provider's schema, from a call with Terraform's certificate.
    fn schema(&self) -> wire::GetProviderSchemaResponse {
        let call = self.call(
            "tfplugin6.Provider/GetProviderSchema",
            &[],
            Some(&self.terraform),
            Tls::Any,
        );
        call.assert_ok();
        wire::GetProviderSchemaResponse::decode(call.message()).expect("decode the schema")
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A socket and the server certificate to expect there.
struct Endpoint {
    socket: PathBuf,
    server_pem: PathBuf,
    /// Where curl's request and answer files go.
    scratch: PathBuf,
}

impl Endpoint {
    /// One gRPC call with curl, presenting `cert` (or none), as user `uid`
    /// (default: this one).
    fn call(
        &self,
        method: &str,
        body: &[u8],
        cert: Option<&Cert>,
        tls: Tls,
        uid: Option<u32>,
    ) -> Call {
        let id = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let request = self.scratch.join(format!("request-{id}"));
        let headers = self.scratch.join(format!("headers-{id}"));
        let response = self.scratch.join(format!("response-{id}"));
        std::fs::write(&request, grpc_frame(body)).unwrap();
        // Files the other user's curl can read and write (curl 7.88 crashes
        // when it cannot create its -D file).
        for f in [&request, &headers, &response] {
            if !f.exists() {
                std::fs::write(f, b"").unwrap();
            }
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        let mut cmd = match uid {
            Some(uid) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={uid}"))
                    .arg("--clear-groups")
                    .arg("curl");
                c
            }
            None => Command::new("curl"),
        };
        cmd.args(["-sS", "-v", "--http2", "--max-time", "20"])
            .arg("--unix-socket")
            .arg(&self.socket)
            .arg("--cacert")
            .arg(&self.server_pem);
        if let Some(cert) = cert {
            cmd.arg("--cert").arg(&cert.crt).arg("--key").arg(&cert.key);
        }
        match tls {
            Tls::Any => {}
            Tls::V12 => {
                cmd.args(["--tlsv1.2", "--tls-max", "1.2"]);
            }
            Tls::V13 => {
                cmd.args(["--tlsv1.3"]);
            }
        }
        cmd.args([
            "-H",
            "content-type: application/grpc",
            "-H",
            "te: trailers",
            "-H",
            "expect:",
        ])
        .arg("--data-binary")
        .arg(format!("@{}", request.display()))
        .arg("-D")
        .arg(&headers)
        .arg("-o")
        .arg(&response)
        .args(["-w", "%{http_code} %{http_version}"])
        .arg(format!("https://localhost/{method}"));
        let out = cmd.output().expect("run curl");
        let headers_text = std::fs::read_to_string(&headers).unwrap_or_default();
        let body = std::fs::read(&response).unwrap_or_default();
        for f in [request, headers, response] {
            let _ = std::fs::remove_file(f);
        }
        Call {
            out,
            headers: headers_text,
            body,
        }
    }
}

static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[derive(Clone, Copy, Debug)]
enum Tls {
    Any,
    V12,
    V13,
}

struct Call {
    out: Output,
    headers: String,
    body: Vec<u8>,
}

impl Call {
    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    /// curl's `%{http_code} %{http_version}`.
    fn written(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).to_string()
    }
    fn describe(&self) -> String {
        format!(
            "curl exit {:?}, wrote {:?}\n--- headers and trailers\n{}\n--- curl -v\n{}",
            self.code(),
            self.written(),
            self.headers,
            String::from_utf8_lossy(&self.out.stderr)
        )
    }
    /// A served call: HTTP/2 200 and `grpc-status: 0`.
    fn assert_ok(&self) {
        assert_eq!(self.code(), Some(0), "{}", self.describe());
        assert_eq!(self.written(), "200 2", "{}", self.describe());
        assert!(
            self.headers
                .lines()
                .any(|l| l.trim().eq_ignore_ascii_case("grpc-status: 0")),
            "no grpc-status 0: {}",
            self.describe()
        );
    }
    /// Refused before any HTTP exchange: curl fails and no HTTP status came.
    fn assert_refused(&self, what: &str) {
        assert_ne!(
            self.code(),
            Some(0),
            "{what} was served: {}",
            self.describe()
        );
        assert!(
            self.written().starts_with("000"),
            "{what} got an HTTP answer: {}",
            self.describe()
        );
        assert!(
            self.body.is_empty(),
            "{what} got a body: {}",
            self.describe()
        );
    }
    /// The one message of a unary answer (gRPC's 5-byte frame removed).
    fn message(&self) -> &[u8] {
        assert!(self.body.len() >= 5, "no gRPC frame: {}", self.describe());
        assert_eq!(self.body[0], 0, "compressed frame");
        let len = u32::from_be_bytes(self.body[1..5].try_into().unwrap()) as usize;
        assert_eq!(self.body.len(), 5 + len, "one frame expected");
        &self.body[5..]
    }
}

fn grpc_frame(message: &[u8]) -> Vec<u8> {
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    framed
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text)
        .unwrap_or_else(|e| panic!("the certificate is not base64 without padding ({e}): {text}"))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn openssl_text(pem_file: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(pem_file)
        .output()
        .expect("run openssl x509");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The provider configuration Terraform sends for an empty provider block:
/// every attribute null, every list or set of blocks empty (MessagePack).
fn empty_provider_config(schema: &wire::GetProviderSchemaResponse) -> Vec<u8> {
    let block = schema
        .provider
        .as_ref()
        .and_then(|s| s.block.as_ref())
        .expect("the provider has a schema");
    let mut object = serde_json::Map::new();
    for a in &block.attributes {
        object.insert(a.name.clone(), serde_json::Value::Null);
    }
    for b in &block.block_types {
        let empty = match b.nesting {
            2 | 3 => serde_json::Value::Array(vec![]),
            4 => serde_json::Value::Object(Default::default()),
            _ => serde_json::Value::Null,
        };
        object.insert(b.type_name.clone(), empty);
    }
    rmp_serde::to_vec(&serde_json::Value::Object(object)).unwrap()
}

fn errors(diagnostics: &[wire::Diagnostic]) -> Vec<&wire::Diagnostic> {
    diagnostics.iter().filter(|d| d.severity == 1).collect()
}

/// go-plugin's handshake line for a unix socket: `1|6|unix|PATH|grpc|CERT`,
/// the socket alone in a fresh directory of mode 0700 owned by the
/// provider's user, under `PLUGIN_UNIX_SOCKET_DIR`; CERT is the DER server
/// certificate in standard base64 without padding, self-signed for
/// `localhost`.
#[test]
fn handshake_names_a_socket_in_a_private_directory() {
    let plugin = Plugin::start();
    let fields = plugin.fields();
    assert_eq!(
        &fields[..3],
        ["1", "6", "unix"],
        "handshake: {:?}",
        plugin.line
    );
    assert_eq!(fields[4], "grpc");
    assert!(
        !fields[5].ends_with('='),
        "padded base64: {:?}",
        plugin.line
    );

    let socket = &plugin.socket;
    assert!(socket.is_absolute(), "not an absolute path: {socket:?}");
    let meta = std::fs::symlink_metadata(socket).expect("the socket exists");
    assert!(
        std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()),
        "{socket:?} is not a socket"
    );
    let private = socket.parent().unwrap();
    let sockets = plugin.path("sockets");
    assert_eq!(
        private.parent(),
        Some(sockets.as_path()),
        "the socket's directory is not a fresh one under PLUGIN_UNIX_SOCKET_DIR"
    );
    let dir_meta = std::fs::metadata(private).unwrap();
    assert_eq!(
        dir_meta.permissions().mode() & 0o7777,
        0o700,
        "{private:?} is not private"
    );
    assert_eq!(
        dir_meta.uid(),
        plugin_uid(&plugin),
        "{private:?} is not the provider's"
    );

    let text = openssl_text(&plugin.server_pem);
    assert!(text.contains("DNS:localhost"), "not for localhost:\n{text}");
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(str::to_string))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
    };
    assert_eq!(field("Issuer:"), field("Subject:"), "not self-signed");
}

fn plugin_uid(plugin: &Plugin) -> u32 {
    std::fs::metadata(format!("/proc/{}", plugin.child.id()))
        .unwrap()
        .uid()
}

/// Terraform's own client certificate (P-521, made like go-plugin's) is
/// served, over TLS 1.3 and 1.2 with ALPN h2: GetProviderSchema with the
/// whole schema and `get_provider_schema_optional`, GetMetadata likewise,
/// the health service's "plugin" SERVING.
#[test]
fn terraforms_p521_certificate_is_served() {
    let plugin = Plugin::start();
    for tls in [Tls::V13, Tls::V12] {
        let call = plugin.call(
            "tfplugin6.Provider/GetProviderSchema",
            &[],
            Some(&plugin.terraform),
            tls,
        );
        call.assert_ok();
        let stderr = String::from_utf8_lossy(&call.out.stderr);
        assert!(
            stderr.contains("ALPN: server accepted h2")
                || stderr.contains("ALPN, server accepted to use h2"),
            "{tls:?}: no h2 by ALPN\n{}",
            call.describe()
        );
        let expect = match tls {
            Tls::V12 => "TLSv1.2",
            _ => "TLSv1.3",
        };
        assert!(
            stderr.contains(&format!("SSL connection using {expect}")),
            "{tls:?}: not {expect}\n{}",
            call.describe()
        );
        let message = call.message();
        assert!(
            message.len() > 10_000,
            "a schema of {} bytes: {}",
            message.len(),
            call.describe()
        );
        let schema = wire::GetProviderSchemaResponse::decode(message).unwrap();
        assert!(
            errors(&schema.diagnostics).is_empty(),
            "{:?}",
            schema.diagnostics
        );
        for resource in [
            "nixbuild_builder",
            "nixbuild_machines_file",
            "nixbuild_cache_push",
        ] {
            assert!(
                schema.resource_schemas.contains_key(resource),
                "{resource} missing from {:?}",
                schema.resource_schemas.keys()
            );
        }
        assert!(schema.provider.is_some());
        assert_eq!(
            schema
                .server_capabilities
                .map(|c| c.get_provider_schema_optional),
            Some(true),
            "GetProviderSchemaOptional"
        );
    }

    let call = plugin.call(
        "tfplugin6.Provider/GetMetadata",
        &[],
        Some(&plugin.terraform),
        Tls::Any,
    );
    call.assert_ok();
    let metadata = wire::GetMetadataResponse::decode(call.message()).unwrap();
    assert_eq!(
        metadata
            .server_capabilities
            .map(|c| c.get_provider_schema_optional),
        Some(true),
        "GetMetadata's GetProviderSchemaOptional"
    );
    assert!(
        metadata
            .resources
            .iter()
            .any(|r| r.type_name == "nixbuild_builder"),
        "{:?}",
        metadata.resources
    );

    let request = wire::HealthCheckRequest {
        service: "plugin".into(),
    };
    let call = plugin.call(
        "grpc.health.v1.Health/Check",
        &request.encode_to_vec(),
        Some(&plugin.terraform),
        Tls::Any,
    );
    call.assert_ok();
    assert_eq!(
        wire::HealthCheckResponse::decode(call.message())
            .unwrap()
            .status,
        1,
        "health of \"plugin\" is not SERVING"
    );
}

/// A TLS client without a certificate is refused in the TLS handshake, over
/// TLS 1.3 and 1.2 alike: no HTTP answer at all. (tf-provider's server served
/// it the whole schema.)
#[test]
fn a_client_without_a_certificate_is_refused() {
    let plugin = Plugin::start();
    for tls in [Tls::V13, Tls::V12] {
        plugin
            .call("tfplugin6.Provider/GetProviderSchema", &[], None, tls)
            .assert_refused(&format!("a client without a certificate ({tls:?})"));
    }
    plugin.assert_refusals_logged(2, "TLS handshake failed");
    // The provider still serves Terraform afterwards.
    plugin.schema();
}

/// A client with another certificate, made exactly like Terraform's (P-521,
/// self-signed, same names), is refused: the certificate is pinned, not
/// merely well-formed.
#[test]
fn a_client_with_another_certificate_is_refused() {
    let plugin = Plugin::start();
    let other = Cert::go_plugin_like(plugin.dir.path(), "other");
    for tls in [Tls::V13, Tls::V12] {
        plugin
            .call(
                "tfplugin6.Provider/GetProviderSchema",
                &[],
                Some(&other),
                tls,
            )
            .assert_refused(&format!("another P-521 certificate ({tls:?})"));
    }
    plugin.assert_refusals_logged(2, "TLS handshake failed");
    plugin.assert_refusals_logged(2, "not the one Terraform gave");
    plugin.schema();
}

/// Terraform's certificate is no password: presented with another P-521 key
/// (a CertificateVerify the certificate's key did not sign), it is refused,
/// while the same client with the certificate's own key is served. The server
/// checks the P-521 signature, not only the certificate's bytes. (curl and
/// openssl refuse to pair a certificate with another key; this client is
/// rustls, with a server verifier that pins the handshake's certificate.)
#[test]
fn terraforms_certificate_without_its_key_is_refused() {
    let plugin = Plugin::start();
    let other = Cert::go_plugin_like(plugin.dir.path(), "other");
    let own = forged::handshake(&plugin, &plugin.terraform.key);
    assert!(own.is_ok(), "Terraform's certificate and key: {own:?}");
    let forged = forged::handshake(&plugin, &other.key);
    let error = forged.expect_err("Terraform's certificate with another key was served");
    assert!(
        error.contains("AlertReceived"),
        "not refused by the server: {error}\n{}",
        plugin.stderr()
    );
    plugin.schema();
}

/// A TLS client of its own for [`terraforms_certificate_without_its_key_is_refused`].
mod forged {
    use std::io::{Read, Write};
    use std::path::Path;
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
    use rustls::sign::CertifiedKey;
    use rustls::{DigitallySignedStruct, SignatureScheme};

    /// Trusts exactly the certificate of the handshake line.
    #[derive(Debug)]
    struct Pinned {
        der: CertificateDer<'static>,
        provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for Pinned {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            if end_entity.as_ref() == self.der.as_ref() {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General(
                    "not the handshake's certificate".into(),
                ))
            }
        }
        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }
        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.provider.signature_verification_algorithms,
            )
        }
        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.provider
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    /// Always Terraform's certificate, signed for with whatever key it holds.
    #[derive(Debug)]
    struct Presents(Arc<CertifiedKey>);

    impl rustls::client::ResolvesClientCert for Presents {
        fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }
        fn has_certs(&self) -> bool {
            true
        }
    }

    /// A TLS 1.3 handshake presenting Terraform's certificate with `key`, then
    /// HTTP/2's client preface and the server's first frame: Ok, or the error.
    pub fn handshake(plugin: &super::Plugin, key: &Path) -> Result<(), String> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let certificate = CertificateDer::from_pem_file(&plugin.terraform.crt).unwrap();
        let key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::from_pem_file(key).unwrap())
            .unwrap();
        let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned {
                der: CertificateDer::from_pem_file(&plugin.server_pem).unwrap(),
                provider,
            }))
            .with_client_cert_resolver(Arc::new(Presents(Arc::new(CertifiedKey::new(
                vec![certificate],
                key,
            )))));
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connection = rustls::ClientConnection::new(
            Arc::new(config),
            ServerName::try_from("localhost").unwrap(),
        )
        .unwrap();
        let socket = std::os::unix::net::UnixStream::connect(&plugin.socket).unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut tls = rustls::StreamOwned::new(connection, socket);
        // A refusal can break the pipe before the write is done: the
        // server's alert is still there to read.
        let written =
            tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00");
        let mut frame = [0u8; 9];
        if let Err(e) = written.and_then(|()| tls.read_exact(&mut frame)) {
            // What the server sent before it closed: its alert, if any.
            while let Ok(n) = tls.conn.read_tls(&mut tls.sock) {
                if let Err(alert) = tls.conn.process_new_packets() {
                    return Err(format!("{alert:?}"));
                }
                if n == 0 {
                    break;
                }
            }
            return Err(format!("{e:?}"));
        }
        // The server's SETTINGS frame.
        if frame[3] != 4 {
            return Err(format!("not an HTTP/2 SETTINGS frame: {frame:?}"));
        }
        Ok(())
    }
}

/// A process of another user cannot even connect to the socket: the
/// provider's directory (0700) stops it, even with the socket file itself
/// opened to everyone and Terraform's certificate and key in hand. A socket
/// the test opens in the same parent directory is reachable by that user,
/// so the refusal is the provider's doing, not the test's.
#[test]
fn another_user_cannot_reach_the_socket() {
    let plugin = Plugin::start();
    // Everything the other user's curl reads is readable to it.
    let stolen = Cert {
        crt: plugin.path("stolen.crt"),
        key: plugin.path("stolen.key"),
    };
    std::fs::copy(&plugin.terraform.crt, &stolen.crt).unwrap();
    std::fs::copy(&plugin.terraform.key, &stolen.key).unwrap();
    for f in [&stolen.crt, &stolen.key, &plugin.server_pem] {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }

    // Control: a socket of the test's, open to everyone, in the same parent.
    let control_path = plugin.path("sockets/control.sock");
    let control = std::os::unix::net::UnixListener::bind(&control_path).unwrap();
    std::fs::set_permissions(&control_path, std::fs::Permissions::from_mode(0o777)).unwrap();
    control.set_nonblocking(true).unwrap();
    let accepted = std::thread::spawn(move || {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            match control.accept() {
                Ok((stream, _)) => {
                    drop(stream);
                    return true;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        false
    });
    let call = Endpoint {
        socket: control_path,
        ..plugin.endpoint()
    }
    .call(
        "tfplugin6.Provider/GetProviderSchema",
        &[],
        Some(&stolen),
        Tls::Any,
        Some(NOBODY),
    );
    assert!(
        accepted.join().unwrap(),
        "the control socket was not reached by uid {NOBODY}: the test cannot tell anything\n{}",
        call.describe()
    );

    // The provider's socket, itself opened to everyone.
    std::fs::set_permissions(&plugin.socket, std::fs::Permissions::from_mode(0o777)).unwrap();
    let call = plugin.endpoint().call(
        "tfplugin6.Provider/GetProviderSchema",
        &[],
        Some(&stolen),
        Tls::Any,
        Some(NOBODY),
    );
    call.assert_refused("another user");
    assert_eq!(
        call.code(),
        Some(7),
        "not a failed connect: {}",
        call.describe()
    );
    assert!(
        String::from_utf8_lossy(&call.out.stderr).contains("Permission denied"),
        "not refused by permissions: {}",
        call.describe()
    );
    plugin.schema();
}

/// One ConfigureProvider per process: the first (what Terraform sends for an
/// empty provider block) succeeds, a second one is an error diagnostic, and
/// the provider keeps serving.
#[test]
fn a_second_configure_provider_is_an_error() {
    let plugin = Plugin::start();
    let schema = plugin.schema();
    let request = wire::ConfigureProviderRequest {
        terraform_version: "1.15.5".into(),
        config: Some(wire::DynamicValue {
            msgpack: empty_provider_config(&schema),
            json: vec![],
        }),
    }
    .encode_to_vec();
    let configure = || {
        let call = plugin.call(
            "tfplugin6.Provider/ConfigureProvider",
            &request,
            Some(&plugin.terraform),
            Tls::Any,
        );
        call.assert_ok();
        wire::ConfigureProviderResponse::decode(call.message())
            .unwrap()
            .diagnostics
    };
    let first = configure();
    assert!(
        errors(&first).is_empty(),
        "the first ConfigureProvider failed: {first:?}\n{}",
        plugin.stderr()
    );
    let second = configure();
    let refused = errors(&second);
    assert_eq!(refused.len(), 1, "second ConfigureProvider: {second:?}");
    assert!(
        refused[0].summary.contains("already configured"),
        "{:?}",
        refused[0]
    );
    plugin.schema();
}

/// Messages above tf-provider's 4 MiB limit are accepted (Terraform allows
/// 256 MiB): a 5 MiB request is served.
#[test]
fn messages_above_four_mib_are_served() {
    let plugin = Plugin::start();
    let request = wire::PaddedRequest {
        padding: vec![b'x'; 5 << 20],
    };
    plugin
        .call(
            "tfplugin6.Provider/GetProviderSchema",
            &request.encode_to_vec(),
            Some(&plugin.terraform),
            Tls::Any,
        )
        .assert_ok();
}

/// go-plugin's GRPCController.Shutdown (Terraform's last call to a plugin)
/// is answered and ends the process, which removes its socket directory.
///
/// Not asserted: the answer's `grpc-status` trailer. The provider answers
/// HTTP 200 and ends the stream without a body or trailers (the server shuts
/// down while answering); go-plugin ignores Shutdown's result, so Terraform
/// does not notice.
#[test]
fn controller_shutdown_ends_the_process() {
    let mut plugin = Plugin::start();
    let private = plugin.socket.parent().unwrap().to_path_buf();
    let call = plugin.call(
        "plugin.GRPCController/Shutdown",
        &wire::Empty {}.encode_to_vec(),
        Some(&plugin.terraform),
        Tls::Any,
    );
    assert_eq!(call.code(), Some(0), "{}", call.describe());
    assert_eq!(call.written(), "200 2", "{}", call.describe());
    let started = Instant::now();
    loop {
        if let Some(status) = plugin.child.try_wait().unwrap() {
            assert!(
                status.success(),
                "exit after Shutdown: {status}\n{}",
                plugin.stderr()
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running 10 s after Shutdown\n{}",
            plugin.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!private.exists(), "{private:?} is left behind");
}
