//! TCP_NODELAY on the gRPC connections Terraform opens to this provider.
//!
//! tf-provider binds its listener itself (`serve()`, private `Server`) and tonic
//! sets no TCP options on sockets it accepts from a listener it did not create,
//! so every small gRPC answer waited for Nagle's algorithm to meet the peer's
//! delayed ACK (~40 ms on loopback, many times per plan). An accepted socket
//! inherits TCP_NODELAY from its listening socket (Linux, and BSD-derived
//! systems such as macOS), so setting it on the listener is enough.
//!
//! The order is made certain by the handshake: Terraform connects only after
//! it has read the go-plugin line `serve()` prints on stdout. [`hold`] puts a
//! pipe in front of stdout; a thread reads that line, sets the option on the
//! listening socket found by its port, and only then forwards the line (and
//! everything after it) unchanged to the real stdout. If the socket cannot be
//! found or the option cannot be set, it logs a warning and forwards the line
//! anyway: a slower provider, never a broken handshake.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

/// Highest file descriptor searched for the listener when the process's fd
/// directory cannot be listed. The listener is among the first few opened.
const FD_SCAN_LIMIT: RawFd = 1024;

/// Redirect stdout through a pipe read by a forwarding thread (see the module
/// docs). Call before anything writes to stdout. On failure stdout is left
/// as it was and the error is returned for logging. `set_nodelay = false`
/// forwards and reports without setting the option (the benchmark's
/// "before", and the proof that the test can fail).
pub fn hold(set_nodelay: bool) -> std::io::Result<()> {
    let original = dup(libc::STDOUT_FILENO)?;
    let (read_end, write_end) = pipe()?;
    // SAFETY: both descriptors are valid and owned here; dup2 replaces fd 1.
    if unsafe { libc::dup2(write_end.as_raw_fd(), libc::STDOUT_FILENO) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    drop(write_end);
    std::thread::Builder::new()
        .name("handshake".into())
        .spawn(move || forward(File::from(read_end), File::from(original), set_nodelay))?;
    Ok(())
}

/// Forward the pipe to the real stdout, setting TCP_NODELAY on the listener
/// named by the first line before that line is passed on.
fn forward(pipe: File, mut stdout: File, set_nodelay: bool) {
    let mut reader = BufReader::new(pipe);
    let mut first = Vec::new();
    if reader.read_until(b'\n', &mut first).is_err() || first.is_empty() {
        return;
    }
    let port = listener_port(&String::from_utf8_lossy(&first));
    match port.filter(|_| set_nodelay).map(set_listener_nodelay) {
        Some(Ok(fd)) => tracing::debug!(
            fd,
            port,
            tcp_nodelay = get_nodelay(fd).unwrap_or(-1),
            "gRPC listener: TCP_NODELAY set"
        ),
        Some(Err(e)) => tracing::warn!(
            port,
            "cannot set TCP_NODELAY on the gRPC listener ({e}); Terraform's calls may wait for delayed ACKs"
        ),
        None if !set_nodelay => {
            tracing::debug!("TCP_NODELAY on the gRPC listener turned off (NIXBUILD_GRPC_NODELAY=off)")
        }
        None => tracing::warn!(
            "the plugin handshake line names no TCP address; TCP_NODELAY not set on the gRPC listener"
        ),
    }
    if stdout
        .write_all(&first)
        .and_then(|_| stdout.flush())
        .is_err()
    {
        return;
    }
    if let Some(port) = port {
        std::thread::spawn(move || log_accepted(port));
    }
    let mut buffer = [0u8; 8192];
    loop {
        match reader.read(&mut buffer) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if stdout.write_all(&buffer[..n]).is_err() {
                    return;
                }
                let _ = stdout.flush();
            }
        }
    }
}

/// The port of a go-plugin handshake line `CORE|APP|tcp|HOST:PORT|grpc|CERT`.
pub fn listener_port(line: &str) -> Option<u16> {
    let mut fields = line.trim_end().split('|');
    let (_, _, network, address) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    if network != "tcp" {
        return None;
    }
    address.rsplit_once(':')?.1.parse().ok()
}

/// Report, at debug level, TCP_NODELAY as the first accepted gRPC connection
/// has it: evidence from the provider's side that the option reached the
/// sockets Terraform talks over. Looks for a few seconds, then gives up.
fn log_accepted(port: u16) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if let Some(fd) = find_socket(port, false) {
            tracing::debug!(
                fd,
                port,
                tcp_nodelay = get_nodelay(fd).unwrap_or(-1),
                "gRPC connection accepted"
            );
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Set TCP_NODELAY on the listening socket bound to `port`; returns its fd.
fn set_listener_nodelay(port: u16) -> std::io::Result<RawFd> {
    let fd = find_socket(port, true).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no listening socket on port {port}"),
        )
    })?;
    let one: libc::c_int = 1;
    // SAFETY: fd is an open socket of this process; the option value is a c_int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

fn get_nodelay(fd: RawFd) -> Option<libc::c_int> {
    get_int_option(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY)
}

fn get_int_option(fd: RawFd, level: libc::c_int, name: libc::c_int) -> Option<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for writes of a c_int.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(value)
}

/// The TCP socket of this process whose local port is `port`: the listening
/// one, or (with `listening = false`) an accepted connection.
fn find_socket(port: u16, listening: bool) -> Option<RawFd> {
    open_fds().into_iter().find(|&fd| {
        local_port(fd) == Some(port)
            && get_int_option(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN).map(|v| v != 0)
                == Some(listening)
    })
}

/// This process's open descriptors: from the fd directory where there is
/// one (Linux `/proc/self/fd`, macOS `/dev/fd`), else every number up to a limit.
fn open_fds() -> Vec<RawFd> {
    for dir in ["/proc/self/fd", "/dev/fd"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            let fds: Vec<RawFd> = entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect();
            if !fds.is_empty() {
                return fds;
            }
        }
    }
    (0..FD_SCAN_LIMIT).collect()
}

/// The local port of an IPv4 or IPv6 socket, `None` for anything else.
fn local_port(fd: RawFd) -> Option<u16> {
    // SAFETY: sockaddr_storage is plain data; getsockname writes at most len bytes.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let rc = unsafe {
        libc::getsockname(
            fd,
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    match storage.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let addr: &libc::sockaddr_in =
                unsafe { &*(&storage as *const libc::sockaddr_storage).cast() };
            Some(u16::from_be(addr.sin_port))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let addr: &libc::sockaddr_in6 =
                unsafe { &*(&storage as *const libc::sockaddr_storage).cast() };
            Some(u16::from_be(addr.sin6_port))
        }
        _ => None,
    }
}

fn dup(fd: RawFd) -> std::io::Result<OwnedFd> {
    // SAFETY: dup returns a new descriptor that we own, or -1.
    let new = unsafe { libc::dup(fd) };
    if new < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe writes two descriptors into the array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_line_ports() {
        assert_eq!(
            listener_port("1|6|tcp|127.0.0.1:1025|grpc|MIIB\n"),
            Some(1025)
        );
        assert_eq!(listener_port("1|6|tcp|[::1]:40000|grpc|x"), Some(40000));
        assert_eq!(listener_port("1|6|unix|/tmp/plugin.sock|grpc|x"), None);
        assert_eq!(listener_port("garbage"), None);
        assert_eq!(listener_port(""), None);
    }

    #[test]
    fn listener_option_reaches_accepted_sockets() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let fd = set_listener_nodelay(port).unwrap();
        assert_eq!(fd, listener.as_raw_fd());
        assert_eq!(get_nodelay(fd), Some(1));
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert_eq!(find_socket(port, false), Some(accepted.as_raw_fd()));
        assert_eq!(get_nodelay(accepted.as_raw_fd()), Some(1));
    }
}
