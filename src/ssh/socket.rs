//! The TCP stream under an SSH connection, acknowledging at once.
//!
//! OpenSSH's server sets TCP_NODELAY only on interactive sessions, so Nagle's
//! algorithm holds a small reply back while an earlier one of its segments is
//! unacknowledged, and Linux delays that acknowledgement by up to 40 ms when
//! the client has nothing to send. Right after login sshd sends its
//! `hostkeys-00@openssh.com` notice, so the confirmation of the first channel
//! a connection opens waited those 40 ms every time (`channel_ms` = 44 in
//! bench/breakdown.sh). Linux's TCP_QUICKACK makes the next
//! acknowledgements immediate, but the kernel may leave that mode again, so
//! it is set after every read that returned data (one `setsockopt` per read).
//! Elsewhere the stream is the plain TCP stream.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A [`TcpStream`] that re-arms TCP_QUICKACK after every read (Linux).
pub struct QuickAckStream {
    inner: TcpStream,
}

impl QuickAckStream {
    pub fn new(inner: TcpStream) -> Self {
        let stream = Self { inner };
        stream.quickack();
        stream
    }

    #[cfg(target_os = "linux")]
    fn quickack(&self) {
        use std::os::fd::AsRawFd;
        let on: libc::c_int = 1;
        // SAFETY: a valid socket descriptor and a pointer to a c_int of the
        // size given; a failure only means delayed ACKs, so it is ignored.
        unsafe {
            libc::setsockopt(
                self.inner.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn quickack(&self) {}

    /// Whether quick acknowledgements are on now (Linux; tests).
    #[cfg(all(test, target_os = "linux"))]
    fn quickack_is_on(&self) -> bool {
        use std::os::fd::AsRawFd;
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: as above, with an out pointer and its length.
        let rc = unsafe {
            libc::getsockopt(
                self.inner.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_QUICKACK,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        rc == 0 && value != 0
    }
}

impl AsyncRead for QuickAckStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.quickack();
        }
        polled
    }
}

impl AsyncWrite for QuickAckStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Data passes both ways unchanged, and every read leaves quick
    /// acknowledgements on.
    #[tokio::test]
    async fn reads_rearm_quickack_and_pass_data() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut peer, _) = listener.accept().await.unwrap();
            let mut got = [0u8; 4];
            peer.read_exact(&mut got).await.unwrap();
            peer.write_all(b"pong").await.unwrap();
            got
        });
        let mut stream = QuickAckStream::new(TcpStream::connect(addr).await.unwrap());
        assert!(stream.quickack_is_on());
        stream.write_all(b"ping").await.unwrap();
        let mut answer = [0u8; 4];
        stream.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"pong");
        assert_eq!(&server.await.unwrap(), b"ping");
        assert!(stream.quickack_is_on());
    }
}
