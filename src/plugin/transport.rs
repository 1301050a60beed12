//! The plugin's listening socket and the connections accepted on it: a unix
//! socket in a private directory, or TCP on loopback where a unix socket
//! cannot be bound (a socket path longer than the kernel's limit), each
//! wrapped in TLS when Terraform asked for it. Connections whose TLS
//! handshake fails (no certificate, another certificate) never reach gRPC.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

/// An accepted connection, TLS or not, unix or TCP.
pub struct Connection(Box<dyn Io>);

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

impl Connected for Connection {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

pub enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

impl Listener {
    /// Accept connections for ever; each TLS handshake runs on its own task,
    /// so a client that stalls in it holds up nobody.
    pub fn incoming(
        self,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> ReceiverStream<io::Result<Connection>> {
        let (tx, rx) = mpsc::channel(16);
        let acceptor = tls.map(TlsAcceptor::from);
        tokio::spawn(async move {
            loop {
                let accepted: io::Result<Box<dyn Io>> = match &self {
                    Listener::Unix(l) => l.accept().await.map(|(s, _)| Box::new(s) as Box<dyn Io>),
                    Listener::Tcp(l) => l.accept().await.and_then(|(s, _)| {
                        // Small gRPC answers must not wait for Nagle.
                        s.set_nodelay(true)?;
                        Ok(Box::new(s) as Box<dyn Io>)
                    }),
                };
                let stream = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!("plugin socket: accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let tx = tx.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let connection = match acceptor {
                        None => Connection(stream),
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => Connection(Box::new(tls)),
                            Err(e) => {
                                tracing::warn!(
                                    "refused a plugin connection: TLS handshake failed: {e}"
                                );
                                return;
                            }
                        },
                    };
                    tracing::debug!("gRPC connection accepted");
                    let _ = tx.send(Ok(connection)).await;
                });
            }
        });
        ReceiverStream::new(rx)
    }
}
