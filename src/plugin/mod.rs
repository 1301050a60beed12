//! Terraform's plugin protocol 6, served by the project itself: go-plugin's
//! handshake ([`handshake`]), a private unix socket with Terraform's client
//! certificate required ([`transport`], [`tls`]), the gRPC services Terraform
//! calls ([`service`], plus go-plugin's controller, stdio and broker and the
//! health service here), and the dispatch to the resources, which implement
//! tf-provider's traits ([`registry`]).
//!
//! Not here: what any resource does. This layer knows schemas, values and
//! diagnostics, never hosts.

pub mod handshake;
pub mod registry;
pub mod schema;
pub mod service;
pub mod tls;
pub mod transport;
pub mod upgrade;
pub mod values;

/// The protocol's generated types and services (from src/plugin/proto/).
pub mod proto {
    pub mod tfplugin6 {
        tonic::include_proto!("tfplugin6");
    }
    pub mod go_plugin {
        tonic::include_proto!("plugin");
    }
    pub mod health {
        tonic::include_proto!("grpc.health.v1");
    }
}

use std::pin::Pin;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

use crate::provider::NixbuildProvider;
use proto::go_plugin as gp;
use proto::health as hp;

/// Terraform's gRPC messages may reach 256 MiB (its own client limit).
pub const MESSAGE_LIMIT: usize = 256 << 20;

/// Serve `provider` to the Terraform process that started this one, until it
/// asks the plugin to shut down or closes the process.
pub async fn serve(name: &str, provider: NixbuildProvider) -> anyhow::Result<()> {
    handshake::negotiate(std::env::var("PLUGIN_PROTOCOL_VERSIONS").ok().as_deref())?;
    let tls = match std::env::var("PLUGIN_CLIENT_CERT") {
        Ok(pem) if !pem.trim().is_empty() => Some(tls::PluginTls::new(&pem)?),
        _ => {
            tracing::warn!("PLUGIN_CLIENT_CERT is not set: serving without TLS, on a socket only this user can reach");
            None
        }
    };

    let mut registry = registry::Registry::new(name);
    provider.catalog(&mut registry);
    let provider_service = service::ProviderService::new(provider, registry);

    let socket_dir = handshake::SocketDir::create()?;
    let (listener, network, address) = match tokio::net::UnixListener::bind(&socket_dir.socket) {
        Ok(l) => (
            transport::Listener::Unix(l),
            "unix",
            socket_dir.socket.display().to_string(),
        ),
        Err(e) => {
            // E.g. a socket path over the kernel's 108-byte limit.
            tracing::warn!("cannot listen on a unix socket ({e}); using TCP on loopback");
            let l = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .context("cannot listen on loopback")?;
            let address = l.local_addr()?.to_string();
            (transport::Listener::Tcp(l), "tcp", address)
        }
    };
    let incoming = listener.incoming(tls.as_ref().map(|t| t.config.clone()));

    let shutdown = CancellationToken::new();
    let streams = Streams::default();
    let controller = Controller {
        shutdown: shutdown.clone(),
        streams: streams.clone(),
    };
    use proto::tfplugin6::provider_server::ProviderServer;
    let server = tonic::transport::Server::builder()
        .add_service(
            ProviderServer::new(provider_service)
                .max_decoding_message_size(MESSAGE_LIMIT)
                .max_encoding_message_size(MESSAGE_LIMIT),
        )
        .add_service(gp::grpc_controller_server::GrpcControllerServer::new(
            controller,
        ))
        .add_service(gp::grpc_stdio_server::GrpcStdioServer::new(streams.clone()))
        .add_service(gp::grpc_broker_server::GrpcBrokerServer::new(
            streams.clone(),
        ))
        .add_service(hp::health_server::HealthServer::new(Health))
        .serve_with_incoming_shutdown(incoming, shutdown.clone().cancelled_owned());

    handshake::announce(&handshake::line(
        network,
        &address,
        tls.as_ref().map(|t| t.certificate.as_slice()),
    ))?;
    tracing::debug!(network, address, "serving the plugin protocol");
    server.await.context("the gRPC server failed")?;
    drop(socket_dir);
    Ok(())
}

/// The streams go-plugin keeps open (stdio, broker): they end at shutdown,
/// so the server can stop gracefully.
#[derive(Clone, Default)]
struct Streams {
    stdio: Kept<gp::StdioData>,
    broker: Kept<gp::ConnInfo>,
}

/// The sending ends of open streams; dropping them ends the streams.
type Kept<T> = Arc<Mutex<Vec<mpsc::Sender<Result<T, Status>>>>>;

impl Streams {
    fn end(&self) {
        self.stdio.lock().map(|mut s| s.clear()).ok();
        self.broker.lock().map(|mut s| s.clear()).ok();
    }
}

type Stream<T> = Pin<Box<dyn tokio_stream::Stream<Item = Result<T, Status>> + Send>>;

fn open_stream<T: Send + 'static>(keep: &Mutex<Vec<mpsc::Sender<Result<T, Status>>>>) -> Stream<T> {
    let (tx, rx) = mpsc::channel(1);
    if let Ok(mut kept) = keep.lock() {
        kept.push(tx);
    }
    Box::pin(ReceiverStream::new(rx))
}

#[tonic::async_trait]
impl gp::grpc_stdio_server::GrpcStdio for Streams {
    type StreamStdioStream = Stream<gp::StdioData>;
    async fn stream_stdio(
        &self,
        _: Request<gp::Empty>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(open_stream(&self.stdio)))
    }
}

#[tonic::async_trait]
impl gp::grpc_broker_server::GrpcBroker for Streams {
    type StartStreamStream = Stream<gp::ConnInfo>;
    async fn start_stream(
        &self,
        _: Request<Streaming<gp::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        Ok(Response::new(open_stream(&self.broker)))
    }
}

struct Controller {
    shutdown: CancellationToken,
    streams: Streams,
}

#[tonic::async_trait]
impl gp::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _: Request<gp::Empty>) -> Result<Response<gp::Empty>, Status> {
        tracing::debug!("Terraform is done with the provider");
        self.streams.end();
        // Stop after this answer has left: a graceful stop begun inside the
        // call cuts its reply short.
        let shutdown = self.shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            shutdown.cancel();
        });
        Ok(Response::new(gp::Empty {}))
    }
}

struct Health;

#[tonic::async_trait]
impl hp::health_server::Health for Health {
    async fn check(
        &self,
        _: Request<hp::HealthCheckRequest>,
    ) -> Result<Response<hp::HealthCheckResponse>, Status> {
        Ok(Response::new(hp::HealthCheckResponse {
            status: hp::health_check_response::ServingStatus::Serving as i32,
        }))
    }
}
