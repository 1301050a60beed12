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

use std::collections::VecDeque;
use std::sync::Arc;

use russh::ChannelMsg;
use tokio::sync::Semaphore;

use super::connect::Connection;
use super::error::SshError;
use super::hostkey::HostKey;
use super::quote::quote;
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

    fn emit(&self, line: &[u8], tail: &mut VecDeque<String>) {
        let line = String::from_utf8_lossy(&line[..line.len().min(MAX_LINE)]);
        let line = line.trim_end_matches('\r');
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
    /// (never prompting) for other users.
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
    /// its exit status.
    pub async fn exec(
        &self,
        step: &str,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SshError> {
        let host = self.endpoint.to_string();
        let session_error = |reason: String| SshError::Session {
            host: host.clone(),
            step: step.to_string(),
            reason,
        };
        let _permit = self
            .sessions
            .acquire()
            .await
            .map_err(|_| session_error("the provider is shutting down".into()))?;
        let started = std::time::Instant::now();
        tracing::info!(host = %host, step, "start");
        tracing::debug!(host = %host, step, "run: {command}");
        let channel = self.conn.channel_open_session().await.map_err(|e| {
            session_error(if self.conn.is_closed() {
                "the connection to the host was lost".to_string()
            } else {
                format!("cannot open a channel: {e}")
            })
        })?;
        tracing::debug!(host = %host, step, channel_ms = started.elapsed().as_millis() as u64, "channel open");
        let (mut reader, writer) = channel.split();
        writer
            .exec(true, command.as_bytes().to_vec())
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
        };
        let mut err = LineSink {
            host: &host,
            step,
            stream: "stderr",
            partial: Vec::new(),
        };
        let mut stdout = Vec::new();
        let mut overflow = false;
        let mut exit = None;
        let mut eof = false;
        loop {
            let msg = if exit.is_some() {
                // Done but for output still in flight; what stays open longer
                // belongs to a background child.
                match tokio::time::timeout(DRAIN, reader.wait()).await {
                    Ok(msg) => msg,
                    Err(_) => {
                        tracing::debug!(host = %host, step, "exit status arrived; not waiting for background output");
                        break;
                    }
                }
            } else {
                reader.wait().await
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
        let tail: Vec<String> = tail.into();
        tracing::debug!(host = %host, step, exit = ?exit, elapsed_ms = started.elapsed().as_millis() as u64, "done");
        Ok(ExecOutput {
            exit,
            stdout,
            tail: tail.join("\n"),
        })
    }

    /// Like [`exec`](Self::exec), but a non-zero exit is a [`SshError::CommandFailed`].
    pub async fn run(
        &self,
        step: &str,
        command: &str,
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput, SshError> {
        let output = self.exec(step, command, stdin).await?;
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
        let command = if privileged {
            self.privileged(&command)
        } else {
            command
        };
        self.run(step, &command, stdin).await
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
