//! Running commands on a connected host: one SSH channel per command, stdin fed
//! concurrently, stdout and stderr streamed line by line to the log (with host
//! and step), and the last lines kept for error messages. Stdin is never logged:
//! it is how secrets travel.
//!
//! A command is done once its exit status has arrived and its output has
//! drained: a child it left in the background (`daemon_restart_command =
//! "… &"`) may keep the channel open for hours, and is not waited for. What is
//! kept in memory is capped: stdout at [`MAX_STDOUT`] (more is an error), each
//! tail line at [`MAX_LINE`].
//!
//! Every command runs under `guard.sh`, which reports its pid on stderr (a
//! line marked by a random token, kept out of the log and the tail). When
//! Terraform stops the provider ([`crate::interrupt`]), the provider sends
//! that guard SIGUSR1 over a new channel of the same connection (as root
//! through `sudo -n` for a privileged command); the guard sends SIGTERM to the
//! command's process group, and SIGKILL to what is left [`STOP_GRACE`] later.
//! The command's own traps run; Nix ends its builds. sshd's `signal` channel
//! request is not used: OpenSSH delivers it only as the login user and never
//! for forced commands (docs/decisions.md). The step then fails with
//! [`SshError::Interrupted`] within [`STOP_WAIT`].

use std::collections::VecDeque;
use std::sync::Arc;

use russh::ChannelMsg;
use tokio::sync::Semaphore;

use super::connect::Connection;
use super::error::SshError;
use super::hostkey::HostKey;
use super::quote::{quote, UnquotableError};
use super::settings::Endpoint;

/// How many output lines an error message carries.
pub const TAIL_LINES: usize = 25;

/// The most stdout one command may print (the provider parses it).
pub const MAX_STDOUT: usize = 64 << 20;

/// Longer lines are cut, in the log and in the tail.
pub const MAX_LINE: usize = 4096;

/// After the exit status, how long to wait for more output before treating
/// what is left open as a background child's.
pub const DRAIN: std::time::Duration = std::time::Duration::from_secs(2);

/// When Terraform stops the provider: seconds between the SIGTERM a running
/// command's process group gets and the SIGKILL for what is left of it.
pub const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// When Terraform stops the provider: how long a running command gets to
/// report its end (after SIGTERM, or SIGKILL at [`STOP_GRACE`]) before the
/// step returns without it. Within Terraform's budget: one Ctrl-C should end
/// an apply in seconds, and CI kills a cancelled job ~10 s after its signal.
pub const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Result of one remote command.
#[derive(Debug)]
pub struct ExecOutput {
    pub exit: Option<u32>,
    pub stdout: Vec<u8>,
    /// The last [`TAIL_LINES`] lines of stdout and stderr, interleaved as received.
    pub tail: String,
}

impl ExecOutput {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// A connected host: a pooled connection plus this host's channel limit.
#[derive(Clone)]
pub struct Remote {
    pub(super) endpoint: Endpoint,
    pub(super) conn: Arc<Connection>,
    pub(super) host_key: HostKey,
    /// The key the jump host presented, when the route has one.
    pub(super) bastion_host_key: Option<HostKey>,
    pub(super) sessions: Arc<Semaphore>,
}

/// Splits a byte stream into lines for the log and the tail.
struct LineSink<'a> {
    host: &'a str,
    step: &'a str,
    stream: &'static str,
    partial: Vec<u8>,
    /// On stderr: the guard's token, and the pid its line reported.
    guard: Option<(&'a str, Option<u32>)>,
}

impl LineSink<'_> {
    fn push(&mut self, data: &[u8], tail: &mut VecDeque<String>) {
        self.partial.extend_from_slice(data);
        while let Some(pos) = self.partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=pos).collect();
            self.emit(&line[..line.len() - 1], tail);
        }
        // A line without end (progress bars, binary output) is cut, not hoarded.
        if self.partial.len() > MAX_LINE {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line, tail);
        }
    }

    fn finish(&mut self, tail: &mut VecDeque<String>) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.emit(&line, tail);
        }
    }

    fn emit(&mut self, line: &[u8], tail: &mut VecDeque<String>) {
        let line = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE)]);
        let line = line.trim_end_matches('\r');
        if let Some((token, pid @ None)) = &mut self.guard {
            if let Some(reported) = guard_pid(token, line) {
                *pid = Some(reported);
                return;
            }
        }
        tracing::debug!(
            host = self.host,
            step = self.step,
            stream = self.stream,
            "{line}"
        );
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line.to_string());
    }
}

/// The pid in the guard's line `TOKEN pid PID`, if `line` is that line.
fn guard_pid(token: &str, line: &str) -> Option<u32> {
    line.strip_prefix(token)?
        .strip_prefix(" pid ")?
        .parse()
        .ok()
        .filter(|pid| *pid > 1)
}

/// `command` under `guard.sh` with `token` (through `sudo -n` when
/// `privileged` and not root).
fn guarded(command: &str, token: &str, sudo: bool) -> Result<String, UnquotableError> {
    let guard = format!(
        "sh -c {} nixbuild {} {} {}",
        quote(crate::scripts::GUARD)?,
        quote(token)?,
        STOP_GRACE.as_secs(),
        quote(command)?
    );
    Ok(if sudo {
        format!("sudo -n -- {guard}")
    } else {
        guard
    })
}

/// A command's output, and what became of it if Terraform's stop ended it.
pub(super) struct Guarded {
    pub output: ExecOutput,
    pub stopped: Option<String>,
}

impl Remote {
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The host key this connection verified.
    pub fn host_key(&self) -> &HostKey {
        &self.host_key
    }

    /// The host key of the bastion this connection went through, if any.
    pub fn bastion_host_key(&self) -> Option<&HostKey> {
        self.bastion_host_key.as_ref()
    }

    pub fn is_root(&self) -> bool {
        self.endpoint.user == "root"
    }

    /// Wrap a command so it runs as root: unchanged for root, through `sudo -n`
    /// (never prompting) for other users. (Commands run through
    /// [`exec_as`](Self::exec_as) say `privileged` instead: the guard must
    /// run as root too.)
    pub fn privileged(&self, command: &str) -> String {
        if self.is_root() {
            command.to_string()
        } else {
            format!(
                "sudo -n -- sh -c {}",
                quote(command).expect("commands never hold NUL")
            )
        }
    }

    /// Run `command` (already quoted shell text) and return its output, whatever
    /// its exit status. Terraform's stop ends it with [`SshError::Interrupted`].
    pub async fn exec(
        &self,
        step: &str,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SshError> {
        self.exec_as(step, command, false, stdin).await
    }

    /// [`exec`](Self::exec), as root when `privileged` (through `sudo -n`,
    /// never prompting, for other users).
    pub async fn exec_as(
        &self,
        step: &str,
        command: &str,
        privileged: bool,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SshError> {
        let run = self.exec_guarded(step, command, privileged, stdin).await?;
        match run.stopped {
            Some(outcome) => Err(SshError::Interrupted {
                host: self.endpoint.to_string(),
                step: step.to_string(),
                outcome,
            }),
            None => Ok(run.output),
        }
    }

    /// Run `command` under the guard; a stop is reported in the result, with
    /// the output so far (a batch of steps reads which step it reached).
    pub(super) async fn exec_guarded(
        &self,
        step: &str,
        command: &str,
        privileged: bool,
        stdin: Option<&[u8]>,
    ) -> Result<Guarded, SshError> {
        let host = self.endpoint.to_string();
        let session_error = |reason: String| SshError::Session {
            host: host.clone(),
            step: step.to_string(),
            reason,
        };
        let not_started = || SshError::Interrupted {
            host: host.clone(),
            step: step.to_string(),
            outcome: "the command was not started".into(),
        };
        let _permit = match crate::interrupt::or_stopped(self.sessions.acquire()).await {
            Err(_) => return Err(not_started()),
            Ok(permit) => {
                permit.map_err(|_| session_error("the provider is shutting down".into()))?
            }
        };
        let started = std::time::Instant::now();
        tracing::info!(host = %host, step, "start");
        tracing::debug!(host = %host, step, privileged, "run: {command}");
        let channel = match crate::interrupt::or_stopped(self.conn.channel_open_session()).await {
            Err(_) => return Err(not_started()),
            Ok(channel) => channel.map_err(|e| {
                session_error(if self.conn.is_closed() {
                    "the connection to the host was lost".to_string()
                } else {
                    format!("cannot open a channel: {e}")
                })
            })?,
        };
        tracing::debug!(host = %host, step, channel_ms = started.elapsed().as_millis() as u64, "channel open");
        let token = format!("@nixbuild-guard-{}", crate::secrets::random_salt());
        let sudo = privileged && !self.is_root();
        let wrapped = guarded(command, &token, sudo)
            .map_err(|_| session_error("the command holds a NUL byte".into()))?;
        let (mut reader, writer) = channel.split();
        writer
            .exec(true, wrapped.into_bytes())
            .await
            .map_err(|e| session_error(format!("cannot start the command: {e}")))?;
        let input = stdin.map(<[u8]>::to_vec);
        // Feed stdin while output is read, so a large input and a chatty command
        // cannot block each other.
        let feeder = tokio::spawn(async move {
            if let Some(data) = input {
                writer.data(&data[..]).await?;
            }
            writer.eof().await?;
            Ok::<_, russh::Error>(writer)
        });

        let mut tail = VecDeque::with_capacity(TAIL_LINES);
        let mut out = LineSink {
            host: &host,
            step,
            stream: "stdout",
            partial: Vec::new(),
            guard: None,
        };
        let mut err = LineSink {
            host: &host,
            step,
            stream: "stderr",
            partial: Vec::new(),
            guard: Some((&token, None)),
        };
        let mut stdout = Vec::new();
        let mut overflow = false;
        let mut exit = None;
        let mut eof = false;
        // Once Terraform's stop is seen: when, and whether the guard was signalled.
        let mut stop: Option<(tokio::time::Instant, bool)> = None;
        let mut gave_up = false;
        loop {
            if let Some((_, signalled @ false)) = &mut stop {
                if let Some((_, Some(pid))) = err.guard {
                    *signalled = true;
                    self.stop_guard(step, pid, sudo);
                }
            }
            let stop_deadline = stop.map(|(since, _)| since + STOP_WAIT);
            let next = async {
                if exit.is_some() {
                    // Done but for output still in flight; what stays open longer
                    // belongs to a background child.
                    tokio::time::timeout(DRAIN, reader.wait()).await.ok()
                } else {
                    Some(reader.wait().await)
                }
            };
            let msg = tokio::select! {
                biased;
                _ = crate::interrupt::stopped(), if stop.is_none() && exit.is_none() => {
                    tracing::info!(host = %host, step, "stopping the remote command");
                    stop = Some((tokio::time::Instant::now(), false));
                    continue;
                }
                _ = tokio::time::sleep_until(stop_deadline.unwrap_or_else(tokio::time::Instant::now)), if stop_deadline.is_some() => {
                    gave_up = true;
                    break;
                }
                msg = next => msg,
            };
            let Some(msg) = msg else {
                tracing::debug!(host = %host, step, "exit status arrived; not waiting for background output");
                break;
            };
            let Some(msg) = msg else { break };
            match msg {
                ChannelMsg::Data { data } => {
                    if stdout.len() + data.len() > MAX_STDOUT {
                        overflow = true;
                    } else {
                        stdout.extend_from_slice(&data);
                    }
                    out.push(&data, &mut tail);
                }
                ChannelMsg::ExtendedData { data, .. } => err.push(&data, &mut tail),
                ChannelMsg::ExitStatus { exit_status } => {
                    exit = Some(exit_status);
                    if eof {
                        break;
                    }
                }
                ChannelMsg::Eof => {
                    eof = true;
                    if exit.is_some() {
                        break;
                    }
                }
                ChannelMsg::Close => break,
                _ => {}
            }
        }
        out.finish(&mut tail);
        err.finish(&mut tail);
        let tail: Vec<String> = tail.into();
        let stopped = stop.map(|(since, signalled)| {
            let waited = since.elapsed().as_millis() as u64;
            tracing::info!(host = %host, step, exit = ?exit, waited_ms = waited, "remote command stopped");
            match (signalled, exit, gave_up) {
                (false, _, _) => "the command had not reported its process yet; its channel was closed".to_string(),
                (true, _, true) => format!(
                    "the command's process group got SIGTERM (SIGKILL after {}), but its end was not confirmed within {}",
                    humantime::format_duration(STOP_GRACE),
                    humantime::format_duration(STOP_WAIT)
                ),
                (true, Some(code), false) => format!("the command's process group got SIGTERM and ended (exit status {code})"),
                (true, None, false) => "the command's process group got SIGTERM and ended".to_string(),
            }
        });
        if stop.is_some() {
            // The channel is closed with the reader; stdin may still be in flight.
            feeder.abort();
            return Ok(Guarded {
                output: ExecOutput {
                    exit,
                    stdout,
                    tail: tail.join("\n"),
                },
                stopped,
            });
        }
        // Surface a failed stdin transfer (only if the command itself did not
        // fail first). A command that exited without reading all its input
        // leaves the feeder blocked: it is not waited for.
        let fed = if exit.is_some() {
            tokio::time::timeout(DRAIN, feeder).await.ok()
        } else {
            Some(feeder.await)
        };
        match fed {
            Some(Ok(Ok(writer))) => {
                // Close our side; the channel is dropped with it.
                let _ = writer.close().await;
            }
            Some(Ok(Err(e))) if exit == Some(0) => {
                return Err(session_error(format!("sending stdin failed: {e}")))
            }
            _ => {}
        }
        if overflow {
            return Err(SshError::Unexpected {
                host: host.clone(),
                step: step.to_string(),
                reason: format!("the command printed more than {} MiB", MAX_STDOUT >> 20),
            });
        }
        tracing::debug!(host = %host, step, exit = ?exit, elapsed_ms = started.elapsed().as_millis() as u64, "done");
        Ok(Guarded {
            output: ExecOutput {
                exit,
                stdout,
                tail: tail.join("\n"),
            },
            stopped: None,
        })
    }

    /// Send the guard `pid` SIGUSR1 over a new channel (not counted against
    /// the channel limit: the stopped commands hold it), as root when the
    /// command runs through sudo. In the background: the command's end is
    /// what the caller waits for.
    fn stop_guard(&self, step: &str, pid: u32, sudo: bool) {
        let conn = self.conn.clone();
        let host = self.endpoint.to_string();
        let step = step.to_string();
        // A number needs no quoting.
        let kill = format!("kill -USR1 {pid}");
        let command = if sudo { self.privileged(&kill) } else { kill };
        tokio::spawn(async move {
            let sent = async {
                let mut channel = conn.channel_open_session().await?;
                channel.exec(true, command.into_bytes()).await?;
                let mut status = None;
                while let Some(msg) = channel.wait().await {
                    if let ChannelMsg::ExitStatus { exit_status } = msg {
                        status = Some(exit_status);
                    }
                }
                Ok::<_, russh::Error>(status)
            };
            match tokio::time::timeout(STOP_WAIT, sent).await {
                Ok(Ok(Some(0))) => {
                    tracing::debug!(host = %host, step, pid, "signalled the remote command's guard")
                }
                Ok(Ok(status)) => {
                    tracing::warn!(host = %host, step, pid, ?status, "cannot signal the remote command's guard (it may have ended already)")
                }
                Ok(Err(e)) => {
                    tracing::warn!(host = %host, step, pid, "cannot signal the remote command's guard: {e}")
                }
                Err(_) => {
                    tracing::warn!(host = %host, step, pid, "no answer from the host while signalling the remote command's guard")
                }
            }
        });
    }

    /// Like [`exec`](Self::exec), but a non-zero exit is a [`SshError::CommandFailed`].
    pub async fn run(
        &self,
        step: &str,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SshError> {
        self.run_as(step, command, false, stdin).await
    }

    /// [`run`](Self::run), as root when `privileged`.
    pub async fn run_as(
        &self,
        step: &str,
        command: &str,
        privileged: bool,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SshError> {
        let output = self.exec_as(step, command, privileged, stdin).await?;
        if output.exit == Some(0) {
            Ok(output)
        } else {
            Err(SshError::CommandFailed {
                host: self.endpoint.to_string(),
                step: step.to_string(),
                exit: output.exit,
                tail: output.tail,
            })
        }
    }

    /// Run one of the provider's `.sh` scripts with quoted positional arguments.
    pub async fn run_script(
        &self,
        step: &str,
        script: &str,
        args: &[&str],
        stdin: Option<&[u8]>,
        privileged: bool,
    ) -> Result<ExecOutput, SshError> {
        let mut command = format!(
            "sh -c {} nixbuild",
            quote(script).expect("scripts hold no NUL")
        );
        for arg in args {
            let quoted = quote(arg).map_err(|e| SshError::CommandFailed {
                host: self.endpoint.to_string(),
                step: step.to_string(),
                exit: None,
                tail: format!("argument rejected before running: {e}"),
            })?;
            command.push(' ');
            command.push_str(&quoted);
        }
        self.run_as(step, &command, privileged, stdin).await
    }

    /// Write `content` to `path` on the host with `mode` (octal string such as
    /// `"0600"`). The content travels over the channel's stdin into a file that
    /// is created 0600 and renamed into place, so a secret is never on a command
    /// line and never briefly world-readable.
    pub async fn upload(
        &self,
        step: &str,
        path: &str,
        mode: &str,
        content: &[u8],
        privileged: bool,
    ) -> Result<(), SshError> {
        self.run_script(
            step,
            crate::scripts::UPLOAD,
            &[path, mode],
            Some(content),
            privileged,
        )
        .await
        .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, Read, Write};
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    const TOKEN: &str = "@nixbuild-guard-test";

    #[test]
    fn only_the_tokens_line_reports_a_pid() {
        assert_eq!(guard_pid(TOKEN, &format!("{TOKEN} pid 4242")), Some(4242));
        for line in [
            "@nixbuild-guard-other pid 4242",
            &format!("x{TOKEN} pid 4242"),
            &format!("{TOKEN} pid 1"),
            &format!("{TOKEN} pid 0"),
            &format!("{TOKEN} pid -5"),
            &format!("{TOKEN} pid 42 43"),
            &format!("{TOKEN} pid"),
        ] {
            assert_eq!(guard_pid(TOKEN, line), None, "{line}");
        }
        // The guard runs as root when the command does.
        let command = guarded("echo hi", TOKEN, true).unwrap();
        assert!(command.starts_with("sudo -n -- sh -c "), "{command}");
        assert!(guarded("echo hi", TOKEN, false)
            .unwrap()
            .starts_with("sh -c "));
    }

    /// `guard.sh` under the local /bin/sh, in a process group of its own
    /// (as sshd's session is), with `grace` seconds before SIGKILL; returns
    /// the child and the guard's pid from its first stderr line.
    fn start_guard(command: &str, grace: u64) -> (Child, u32, impl Read) {
        let mut child = Command::new("/bin/sh")
            .args([
                "-c",
                crate::scripts::GUARD,
                "nixbuild",
                TOKEN,
                &grace.to_string(),
                command,
            ])
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let pid = guard_pid(TOKEN, line.trim_end()).unwrap_or_else(|| panic!("{line:?}"));
        assert_eq!(pid, child.id(), "the guard reports its own pid");
        (child, pid, stderr)
    }

    fn wait_at_most(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(started.elapsed() < limit, "still running after {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A process that exists and is not a zombie.
    fn running(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.rsplit(')').next().unwrap_or("").starts_with(" Z"))
    }

    fn wait_for_file(path: &std::path::Path) -> String {
        let started = Instant::now();
        loop {
            if let Ok(text) = std::fs::read_to_string(path) {
                if text.ends_with('\n') {
                    return text.trim().to_string();
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{path:?} not written"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn the_guard_passes_stdin_output_and_exit_status_through() {
        let (mut child, _, mut stderr) = start_guard("cat; echo done >&2; exit 7", 3);
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"line 1\nline 2\n")
            .unwrap();
        let status = wait_at_most(&mut child, Duration::from_secs(10));
        assert_eq!(status.code(), Some(7));
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "line 1\nline 2\n");
        let mut err = String::new();
        stderr.read_to_string(&mut err).unwrap();
        assert_eq!(err, "done\n", "only the pid line is the guard's");
    }

    #[test]
    fn a_stopped_guard_terminates_the_group_and_the_traps_run() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let cleaned = dir.path().join("cleaned");
        // A script with a cleanup trap, running a long child of its own.
        let script = format!(
            "trap 'echo cleaned >{cleaned}; exit 143' TERM\nsleep 300 &\necho $! >{pids}\nwait",
            cleaned = quote(cleaned.to_str().unwrap()).unwrap(),
            pids = quote(pids.to_str().unwrap()).unwrap(),
        );
        let command = format!("sh -c {} nixbuild", quote(&script).unwrap());
        let (mut child, pid, _stderr) = start_guard(&command, 3);
        let sleeper = wait_for_file(&pids);
        assert!(running(&sleeper));
        let started = Instant::now();
        assert!(Command::new("kill")
            .args(["-USR1", &pid.to_string()])
            .status()
            .unwrap()
            .success());
        let status = wait_at_most(&mut child, Duration::from_secs(2));
        assert_eq!(status.code(), Some(143), "the command's status");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(wait_for_file(&cleaned), "cleaned");
        let started = Instant::now();
        while running(&sleeper) {
            assert!(started.elapsed() < Duration::from_secs(2), "sleep survived");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn what_ignores_sigterm_gets_sigkill_after_the_grace_period() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "trap '' TERM\nsleep 300 &\necho $! >{pids}\nwait",
            pids = quote(pids.to_str().unwrap()).unwrap(),
        );
        let command = format!("sh -c {} nixbuild", quote(&script).unwrap());
        let (mut child, pid, _stderr) = start_guard(&command, 1);
        let sleeper = wait_for_file(&pids);
        let started = Instant::now();
        // SIGTERM (as sshd's killpg would send) stops it like SIGUSR1.
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        wait_at_most(&mut child, Duration::from_secs(4));
        std::thread::sleep(Duration::from_millis(500));
        assert!(running(&sleeper), "sleep ignores SIGTERM");
        while running(&sleeper) {
            assert!(started.elapsed() < Duration::from_secs(3), "sleep survived");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(started.elapsed() >= Duration::from_millis(900));
    }
}
