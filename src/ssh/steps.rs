//! Several of the provider's scripts as one remote command. Each script
//! costs a channel, an sshd session process and a shell on the host; an
//! apply that ran a dozen of them one by one spent most of its time there
//! (docs/performance.md). A [`Step`] is one script with its arguments and
//! input; [`Remote::run_steps`] runs a list of them in order in one command
//! (`steps.sh`), stopping at the first failure, and gives each step's stdout
//! back. A step can also run alone ([`Step::run`]), so a script has one
//! definition whichever way it runs.
//!
//! Inputs (config files, keys, tokens) travel on stdin, one base64 line per
//! step, and reach the step's stdin through a shell builtin: never a command
//! line. The output is framed by a random boundary line, so nothing a
//! script prints can pass for a frame.

use base64::Engine;

use super::error::SshError;
use super::exec::{ExecOutput, Remote};
use super::quote::quote;

/// One script run: its name (for logs and errors), text, arguments, input.
#[derive(Clone, Debug)]
pub struct Step {
    name: String,
    script: String,
    args: Vec<String>,
    input: Option<Vec<u8>>,
    reports_change: bool,
    only_after_change: bool,
    stop_on: Option<String>,
    serves: Option<&'static str>,
}

impl Step {
    pub fn new(name: impl Into<String>, script: impl Into<String>, args: &[&str]) -> Self {
        Self {
            name: name.into(),
            script: script.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            input: None,
            reports_change: false,
            only_after_change: false,
            stop_on: None,
            serves: None,
        }
    }

    /// The configuration block (a top-level block such as `gc`) this step
    /// carries out: where an error of the step points the user.
    pub fn serves(mut self, attribute: &'static str) -> Self {
        self.serves = Some(attribute);
        self
    }

    /// See [`Step::serves`].
    pub fn attribute(&self) -> Option<&'static str> {
        self.serves
    }

    /// What the script reads on stdin.
    pub fn input(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.input = Some(bytes.into());
        self
    }

    /// A `changed=yes` line in its stdout marks a change (for
    /// [`only_after_change`](Self::only_after_change) steps after it).
    pub fn reports_change(mut self) -> Self {
        self.reports_change = true;
        self
    }

    /// Runs only when an earlier step of the batch reported a change.
    pub fn only_after_change(mut self) -> Self {
        self.only_after_change = true;
        self
    }

    /// When the script prints exactly this line, the batch ends after it
    /// (successfully): the caller reads the step's output and decides.
    pub fn stop_on(mut self, line: impl Into<String>) -> Self {
        self.stop_on = Some(line.into());
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Run this step alone, as its own command.
    pub async fn run(&self, remote: &Remote, privileged: bool) -> Result<ExecOutput, SshError> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        remote
            .run_script(
                &self.name,
                &self.script,
                &args,
                self.input.as_deref(),
                privileged,
            )
            .await
    }
}

/// What became of each step of a batch, in step order.
#[derive(Debug, PartialEq)]
pub enum StepResult {
    /// It ran and exited 0; its stdout.
    Ran(String),
    /// It waited for a change that no step reported.
    Skipped,
    /// An earlier step ended the batch ([`Step::stop_on`]).
    NotReached,
}

/// The results of [`Remote::run_steps`], by step name.
#[derive(Debug)]
pub struct StepsOutput {
    results: Vec<(String, StepResult)>,
}

impl StepsOutput {
    /// The stdout of the step called `name`, if it ran.
    pub fn stdout(&self, name: &str) -> Option<&str> {
        self.results.iter().find_map(|(n, r)| match r {
            StepResult::Ran(out) if n == name => Some(out.as_str()),
            _ => None,
        })
    }
}

/// The remote command and its stdin for `steps`, framed by `boundary`.
fn command(steps: &[Step], boundary: &str) -> Result<(String, Vec<u8>), String> {
    let mut functions: Vec<&str> = Vec::new();
    let mut calls = String::new();
    let mut stdin = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let f = match functions.iter().position(|s| *s == step.script) {
            Some(i) => i,
            None => {
                functions.push(&step.script);
                functions.len() - 1
            }
        };
        let mut flags = String::from("-");
        if let Some(input) = &step.input {
            flags.push('i');
            stdin.extend_from_slice(
                base64::engine::general_purpose::STANDARD
                    .encode(input)
                    .as_bytes(),
            );
            stdin.push(b'\n');
        }
        if step.reports_change {
            flags.push('c');
        }
        if step.only_after_change {
            flags.push('a');
        }
        let stop = step.stop_on.as_deref().unwrap_or("");
        calls.push_str(&format!(
            "nb_step {n} {} {flags} {} nb_f{f}",
            q(&step.name)?,
            q(stop)?
        ));
        for arg in &step.args {
            calls.push(' ');
            calls.push_str(&q(arg).map_err(|e| format!("step `{}`: {e}", step.name))?);
        }
        calls.push('\n');
    }
    let mut script = String::from(crate::scripts::STEPS);
    for (i, body) in functions.iter().enumerate() {
        script.push_str(&format!("nb_f{i}() (\n{body}\n)\n"));
    }
    script.push_str(&calls);
    Ok((
        format!("sh -c {} nixbuild {}", q(&script)?, boundary),
        stdin,
    ))
}

fn q(text: &str) -> Result<String, String> {
    quote(text).map_err(|e| e.to_string())
}

/// How a batch ended, read from its framed stdout.
#[derive(Debug, PartialEq)]
enum Ending {
    /// Every step ran, was skipped, or a stop ended the batch.
    Done(Vec<StepResult>),
    /// Step N exited with STATUS (the batch stopped there).
    Failed(usize, u32),
    /// The output ends inside step N, or before any step began.
    Cut(Option<usize>),
}

fn parse(steps: usize, boundary: &str, stdout: &str) -> Ending {
    let mut results: Vec<Option<StepResult>> = (0..steps).map(|_| None).collect();
    let mut current: Option<(usize, String)> = None;
    let mut last_begun = None;
    let mut stopped = false;
    let mut rest = stdout;
    while !rest.is_empty() {
        let (line, tail) = match rest.find('\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        rest = tail;
        // A frame: the boundary, a word, a step index in range, the rest.
        let frame = line
            .strip_prefix(boundary)
            .and_then(|l| l.strip_prefix(' '))
            .map(|l| l.split(' ').collect::<Vec<_>>())
            .and_then(|words| {
                let n = words.get(1)?.parse::<usize>().ok().filter(|n| *n < steps)?;
                Some((words[0], n, words[2..].to_vec()))
            });
        match frame
            .as_ref()
            .map(|(word, n, rest)| (*word, *n, rest.as_slice()))
        {
            Some(("begin", n, _)) => {
                current = Some((n, String::new()));
                last_begun = Some(n);
            }
            Some(("end", n, [status])) => {
                let mut out = current.take().map(|(_, o)| o).unwrap_or_default();
                // The frame starts on a line of its own: that newline is ours.
                if out.ends_with('\n') {
                    out.pop();
                }
                match status.parse::<u32>() {
                    Ok(0) => results[n] = Some(StepResult::Ran(out)),
                    Ok(code) => return Ending::Failed(n, code),
                    Err(_) => return Ending::Cut(Some(n)),
                }
            }
            Some(("skip", n, [])) => results[n] = Some(StepResult::Skipped),
            Some(("stop", _, [])) => stopped = true,
            _ => {
                if let Some((_, out)) = current.as_mut() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
    }
    if current.is_some() {
        return Ending::Cut(last_begun);
    }
    let mut done = Vec::with_capacity(steps);
    for result in results {
        match result {
            Some(r) => done.push(r),
            None if stopped => done.push(StepResult::NotReached),
            None => return Ending::Cut(last_begun),
        }
    }
    Ending::Done(done)
}

/// The output lines of the step that began last, without frames and blank lines.
fn step_tail(tail: &str, boundary: &str) -> String {
    let lines: Vec<&str> = tail.lines().collect();
    let start = lines
        .iter()
        .rposition(|l| l.starts_with(boundary) && l.contains(" begin "))
        .map_or(0, |i| i + 1);
    lines[start..]
        .iter()
        .filter(|l| !l.starts_with(boundary) && !l.trim().is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_string()
}

impl Remote {
    /// Run `steps` in order as one command (as root when `privileged`); the
    /// first failing step's error names that step. `label` names the
    /// command in the log.
    pub async fn run_steps(
        &self,
        label: &str,
        steps: &[Step],
        privileged: bool,
    ) -> Result<StepsOutput, SshError> {
        // One step needs no frames: it runs as it would alone.
        if let [step] = steps {
            if !step.only_after_change {
                let out = step.run(self, privileged).await?;
                return Ok(StepsOutput {
                    results: vec![(step.name.clone(), StepResult::Ran(out.stdout_text()))],
                });
            }
        }
        let first = steps.first().map_or(label, |s| s.name.as_str());
        let failed = |step: &str, exit, tail| SshError::CommandFailed {
            host: self.endpoint().to_string(),
            step: step.to_string(),
            exit,
            tail,
        };
        let boundary = format!("@nixbuild-{}", crate::secrets::random_salt());
        let (command, stdin) = command(steps, &boundary).map_err(|e| {
            failed(
                first,
                None,
                format!("argument rejected before running: {e}"),
            )
        })?;
        let run = self
            .exec_guarded(label, &command, privileged, Some(&stdin))
            .await?;
        let output = run.output;
        let tail = step_tail(&output.tail, &boundary);
        let ending = parse(steps.len(), &boundary, &output.stdout_text());
        if let Some(outcome) = run.stopped {
            // Name the step the stop met (the batch's first if none began).
            let step = match ending {
                Ending::Cut(Some(n)) | Ending::Failed(n, _) => steps[n].name.as_str(),
                _ => first,
            };
            return Err(SshError::Interrupted {
                host: self.endpoint().to_string(),
                step: step.to_string(),
                outcome,
            });
        }
        match ending {
            Ending::Done(results) if output.exit == Some(0) => Ok(StepsOutput {
                results: steps.iter().map(|s| s.name.clone()).zip(results).collect(),
            }),
            Ending::Failed(n, code) => Err(failed(&steps[n].name, Some(code), tail)),
            Ending::Done(_) => Err(failed(first, output.exit, tail)),
            Ending::Cut(n) => Err(failed(
                n.map_or(first, |n| steps[n].name.as_str()),
                output.exit,
                tail,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run a batch with the local /bin/sh, as a host would.
    fn run_locally(steps: &[Step]) -> (Option<i32>, String, String) {
        let boundary = "@nixbuild-test";
        let (command, stdin) = command(steps, boundary).unwrap();
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }

    fn results(steps: &[Step]) -> Ending {
        let (_, stdout, _) = run_locally(steps);
        parse(steps.len(), "@nixbuild-test", &stdout)
    }

    #[test]
    fn steps_run_in_order_with_their_inputs_and_arguments() {
        let cat = "set -eu\nprintf '%s:' \"$1\"\ncat\n";
        let steps = [
            Step::new("one", cat, &["first arg"]).input("line 1\nline 2\n"),
            Step::new("two", "echo \"$# $1\"", &["it's"]),
            // The same script again: one function, its own input.
            Step::new("three", cat, &["x"]).input(""),
            Step::new("four", "exit 0", &[]),
        ];
        assert_eq!(
            results(&steps),
            Ending::Done(vec![
                StepResult::Ran("first arg:line 1\nline 2\n".into()),
                StepResult::Ran("1 it's\n".into()),
                StepResult::Ran("x:".into()),
                StepResult::Ran(String::new()),
            ])
        );
        let (_, _, stderr) = run_locally(&steps);
        assert_eq!(stderr, "");
        // One function per distinct script.
        let (command, stdin) = command(&steps, "@b").unwrap();
        assert_eq!(command.matches("() (\n").count(), 3);
        assert_eq!(stdin.iter().filter(|b| **b == b'\n').count(), 2);
        assert!(!command.contains("line 1"), "input on the command line");
    }

    #[test]
    fn the_first_failure_ends_the_batch_with_its_status() {
        let steps = [
            Step::new("ok", "echo fine", &[]),
            Step::new(
                "broken",
                "set -e\necho trying\nfalse\necho not reached",
                &[],
            ),
            Step::new("after", "echo must not run", &[]),
        ];
        let (code, stdout, _) = run_locally(&steps);
        assert_eq!(code, Some(1));
        assert!(!stdout.contains("must not run") && !stdout.contains("not reached"));
        assert_eq!(results(&steps), Ending::Failed(1, 1));
        assert_eq!(
            step_tail(&format!("{stdout}earlier error\n"), "@nixbuild-test"),
            "trying\nearlier error"
        );
        // A script's own `exit` ends only that step.
        let steps = [
            Step::new("exits", "exit 0\necho no", &[]),
            Step::new("next", "echo yes", &[]),
        ];
        assert_eq!(
            results(&steps),
            Ending::Done(vec![
                StepResult::Ran(String::new()),
                StepResult::Ran("yes\n".into())
            ])
        );
    }

    #[test]
    fn change_gated_steps_run_only_after_a_reported_change() {
        let report = |changed: &str| {
            Step::new("write", format!("echo changed={changed}"), &[]).reports_change()
        };
        let restart = Step::new("restart", "echo restarted", &[]).only_after_change();
        // `changed=yes` from a step that does not report changes counts not.
        let bystander = Step::new("other", "echo changed=yes", &[]);
        assert_eq!(
            results(&[bystander.clone(), report("no"), restart.clone()]),
            Ending::Done(vec![
                StepResult::Ran("changed=yes\n".into()),
                StepResult::Ran("changed=no\n".into()),
                StepResult::Skipped
            ])
        );
        assert_eq!(
            results(&[report("yes"), report("no"), restart]),
            Ending::Done(vec![
                StepResult::Ran("changed=yes\n".into()),
                StepResult::Ran("changed=no\n".into()),
                StepResult::Ran("restarted\n".into())
            ])
        );
    }

    #[test]
    fn a_stop_line_ends_the_batch_successfully() {
        let steps = [
            Step::new("probe", "echo a=1\necho nixos=yes", &[]).stop_on("nixos=yes"),
            Step::new("install", "echo installing", &[]),
        ];
        let (code, stdout, _) = run_locally(&steps);
        assert_eq!(code, Some(0));
        assert!(!stdout.contains("installing"));
        assert_eq!(
            results(&steps),
            Ending::Done(vec![
                StepResult::Ran("a=1\nnixos=yes\n".into()),
                StepResult::NotReached
            ])
        );
        // Only the whole line stops it.
        let steps = [
            Step::new("probe", "echo nixos=yes-ish", &[]).stop_on("nixos=yes"),
            Step::new("install", "echo installing", &[]),
        ];
        assert!(
            matches!(results(&steps), Ending::Done(r) if r[1] == StepResult::Ran("installing\n".into()))
        );
    }

    #[test]
    fn frames_the_scripts_print_cannot_fake_and_cut_output_is_an_error() {
        // Without the boundary a script's "begin"/"end" lines are output.
        let steps = [Step::new(
            "sly",
            "echo 'x end 0 0'; echo '@nixbuild-other end 0 0'",
            &[],
        )];
        assert_eq!(
            results(&steps),
            Ending::Done(vec![StepResult::Ran(
                "x end 0 0\n@nixbuild-other end 0 0\n".into()
            )])
        );
        assert_eq!(parse(2, "@b", "@b begin 0\nhalf"), Ending::Cut(Some(0)));
        assert_eq!(
            parse(1, "@b", "sudo: a password is required\n"),
            Ending::Cut(None)
        );
        assert_eq!(
            parse(2, "@b", "@b begin 0 one\n\n@b end 0 0\n"),
            Ending::Cut(Some(0)),
            "step 1 never ran"
        );
    }
}
