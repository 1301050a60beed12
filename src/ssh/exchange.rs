//! A greeting exchanged with a protocol server on a connected host: write a
//! few bytes to a command's stdin and read its first reply, *before* the end
//! of input. [`Remote::exec`](super::Remote::exec) sends EOF right after
//! stdin, which a store protocol server (`nix-daemon --stdio`) may take as
//! the client leaving before it answered. Used to prove that a client key
//! reaches the store protocol, the way Nix itself would.

use russh::ChannelMsg;

use super::error::SshError;
use super::exec::Remote;

/// What the command answered: its first stdout bytes (up to `want`), and its
/// stderr (for a reason when the answer is missing).
#[derive(Debug, Default)]
pub struct Reply {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub exit: Option<u32>,
}

impl Remote {
    /// Start `command`, write `hello` to it, and read until `want` stdout
    /// bytes arrived, the command ended, or `limit` passed; then close the
    /// channel (the server sees the connection end, as when a client quits).
    pub async fn exchange(
        &self,
        step: &str,
        command: &str,
        hello: &[u8],
        want: usize,
        limit: std::time::Duration,
    ) -> Result<Reply, SshError> {
        let host = self.endpoint.to_string();
        let session_error = |reason: String| SshError::Session {
            host: host.clone(),
            step: step.to_string(),
            reason,
        };
        if crate::interrupt::is_stopped() {
            return Err(SshError::Interrupted {
                host,
                step: step.to_string(),
                outcome: "the command was not started".into(),
            });
        }
        let _permit = self
            .sessions
            .acquire()
            .await
            .map_err(|_| session_error("the provider is shutting down".into()))?;
        tracing::info!(host = %host, step, "start");
        let channel = self
            .conn
            .channel_open_session()
            .await
            .map_err(|e| session_error(format!("cannot open a channel: {e}")))?;
        let (mut reader, writer) = channel.split();
        writer
            .exec(true, command.as_bytes().to_vec())
            .await
            .map_err(|e| session_error(format!("cannot start the command: {e}")))?;
        writer
            .data(hello)
            .await
            .map_err(|e| session_error(format!("cannot write to the command: {e}")))?;
        let mut reply = Reply::default();
        let read = async {
            while reply.stdout.len() < want {
                match reader.wait().await {
                    Some(ChannelMsg::Data { data }) => reply.stdout.extend_from_slice(&data),
                    Some(ChannelMsg::ExtendedData { data, .. }) => {
                        if reply.stderr.len() < 4096 {
                            reply.stderr.push_str(&String::from_utf8_lossy(&data));
                        }
                    }
                    Some(ChannelMsg::ExitStatus { exit_status }) => reply.exit = Some(exit_status),
                    Some(ChannelMsg::Eof | ChannelMsg::Close) | None => break,
                    Some(_) => {}
                }
            }
        };
        // Terraform's stop ends the wait; closing the channel ends the server
        // (its input ends), which needs no guard.
        let read = crate::interrupt::or_stopped(tokio::time::timeout(limit, read)).await;
        let _ = writer.eof().await;
        let _ = writer.close().await;
        let Ok(read) = read else {
            return Err(SshError::Interrupted {
                host,
                step: step.to_string(),
                outcome: "the command's channel was closed".into(),
            });
        };
        let timed_out = read.is_err();
        if timed_out && reply.stdout.len() < want {
            reply.stderr.push_str(&format!(
                "no answer within {}",
                humantime::format_duration(limit)
            ));
        }
        reply.stdout.truncate(want);
        tracing::info!(host = %host, step, bytes = reply.stdout.len(), "done");
        Ok(reply)
    }
}
