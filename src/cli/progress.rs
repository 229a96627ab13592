//! The progress display of a run on a terminal: targets done out of those
//! found so far and, during `--wait`, the executions still stopping with the
//! blocking steps that hold each. Drawn on stderr with `indicatif`, and
//! cleared before the result is printed, so what is left on the terminal, and
//! everything written when stderr is not a terminal, is the output of a run
//! without it.
//!
//! It only displays what the engine tells it ([`Progress`]); nothing the
//! engine does depends on it.

use std::fmt;
use std::sync::OnceLock;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use stopper_core::report::ExecutionReport;
use stopper_core::status::ExecutionStatus;

use super::args::{Output, Run};
use super::output::terminal_safe;
use crate::engine::Progress;

/// How often the spinners move (and the display is redrawn) without news.
const TICK: Duration = Duration::from_millis(120);

/// The most executions listed one per line during a wait; the rest are counted.
const MAX_LINES: usize = 8;

/// Where the run's output goes, as far as the display is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    pub stdout: bool,
    pub stderr: bool,
    /// Logs go to stderr (`--debug`, `RUST_LOG`): bars would tear them.
    pub logs: bool,
    /// `TERM` is set to something other than `dumb`.
    pub capable: bool,
}

impl Terminal {
    /// This process's: stdout and stderr as they are, and `TERM`.
    pub fn detect(logs: bool) -> Terminal {
        use std::io::IsTerminal as _;
        Terminal {
            stdout: std::io::stdout().is_terminal(),
            stderr: std::io::stderr().is_terminal(),
            logs,
            capable: std::env::var_os("TERM").is_some_and(|t| !t.is_empty() && t != "dumb"),
        }
    }
}

/// Whether a run shows progress: only on a capable terminal's stderr, not
/// with `--no-progress`, not while logs go to stderr, and not when JSON is
/// piped (`--output json | jq`: a script is reading, whoever watches).
pub fn wanted(run: &Run, terminal: Terminal) -> bool {
    !run.no_progress
        && terminal.stderr
        && terminal.capable
        && !terminal.logs
        && (run.output != Output::Json || terminal.stdout)
}

/// The display: a bar of targets done out of found, and, during a wait, a
/// spinner over the executions still stopping.
pub struct Bars {
    multi: MultiProgress,
    targets: ProgressBar,
    waiting: OnceLock<ProgressBar>,
    /// Whether anything was drawn (the spinner is started on the first news).
    started: OnceLock<()>,
}

impl fmt::Debug for Bars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bars")
            .field("done", &self.targets.position())
            .field("found", &self.targets.length())
            .finish_non_exhaustive()
    }
}

impl Default for Bars {
    fn default() -> Self {
        Bars::new()
    }
}

impl Bars {
    /// Bars on stderr (indicatif hides them itself if stderr is no terminal).
    pub fn new() -> Bars {
        Bars::drawing_to(ProgressDrawTarget::stderr())
    }

    fn drawing_to(target: ProgressDrawTarget) -> Bars {
        let multi = MultiProgress::with_draw_target(target);
        let targets = multi.add(
            ProgressBar::new(0)
                .with_style(style(
                    "{spinner} {pos}/{len} targets done {bar:24.cyan/blue} {msg}",
                ))
                .with_message(FINDING),
        );
        Bars {
            multi,
            targets,
            waiting: OnceLock::new(),
            started: OnceLock::new(),
        }
    }

    /// Removes the bars from the terminal, before the result is printed.
    pub fn clear(&self) {
        self.targets.finish_and_clear();
        if let Some(waiting) = self.waiting.get() {
            waiting.finish_and_clear();
        }
        // Nothing to do about a terminal that cannot be written to.
        let _ = self.multi.clear();
    }

    fn start(&self) {
        self.started
            .get_or_init(|| self.targets.enable_steady_tick(TICK));
    }
}

/// The message while sweeps or the guard may still find targets.
const FINDING: &str = "(finding targets…)";

fn style(template: &str) -> ProgressStyle {
    // The templates are constants: a bad one is a bug caught by the tests.
    ProgressStyle::with_template(template).expect("a valid progress template")
}

impl Progress for Bars {
    fn found(&self, targets: usize) {
        self.start();
        self.targets.inc_length(targets as u64);
    }

    fn found_all(&self) {
        self.targets.set_message("");
    }

    fn done(&self, _execution: &ExecutionReport) {
        self.targets.inc(1);
    }

    fn waiting(&self, stopping: &[&ExecutionReport], left: Duration) {
        let waiting = self.waiting.get_or_init(|| {
            let bar = self
                .multi
                .add(ProgressBar::new_spinner().with_style(style("{spinner} {msg}")));
            bar.enable_steady_tick(TICK);
            bar
        });
        waiting.set_message(waiting_text(stopping, left));
    }
}

/// What a wait shows: how long it may last, then one line per execution still
/// stopping, with the blocking steps that hold it.
pub fn waiting_text(stopping: &[&ExecutionReport], left: Duration) -> String {
    if stopping.is_empty() {
        return "every execution has ended".to_owned();
    }
    let count = match stopping.len() {
        1 => "1 execution".to_owned(),
        n => format!("{n} executions"),
    };
    let mut text = format!("waiting up to {} for {count} to stop", minutes(left));
    for execution in stopping.iter().take(MAX_LINES) {
        text.push_str("\n  ");
        text.push_str(&execution_line(execution));
    }
    if stopping.len() > MAX_LINES {
        text.push_str(&format!("\n  … and {} more", stopping.len() - MAX_LINES));
    }
    text
}

/// `pipeline/id  Stopping  held by approve(Callback), score(Lambda)`.
fn execution_line(execution: &ExecutionReport) -> String {
    let status = execution
        .status
        .as_ref()
        .map_or("stop requested", ExecutionStatus::as_str);
    let mut line = format!("{}  {}", short_arn(&execution.arn), terminal_safe(status));
    if !execution.blocking_steps.is_empty() {
        let steps: Vec<String> = execution
            .blocking_steps
            .iter()
            .map(|step| terminal_safe(&step.label()))
            .collect();
        line.push_str("  held by ");
        line.push_str(&steps.join(", "));
    }
    line
}

/// `nightly-training/k7xvw1b9q2hj` for an execution ARN; anything else whole.
fn short_arn(arn: &str) -> String {
    let short = arn
        .split_once(":pipeline/")
        .and_then(|(_, rest)| rest.split_once("/execution/"))
        .map(|(pipeline, id)| format!("{pipeline}/{id}"));
    terminal_safe(short.as_deref().unwrap_or(arn))
}

/// `14m 05s`, or `42s` under a minute; rounded up, so a wait with time
/// left never shows `0s`.
fn minutes(left: Duration) -> String {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m {:02}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stopper_core::report::{Outcome, StepReport};
    use stopper_core::steps::StepKind;

    const A: &str =
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/k7xvw1b9q2hj";

    fn terminal() -> Terminal {
        Terminal {
            stdout: true,
            stderr: true,
            logs: false,
            capable: true,
        }
    }

    #[test]
    fn progress_is_shown_only_on_a_capable_terminal_and_never_into_a_pipe_of_json() {
        let json = Run::default();
        let text = Run {
            output: Output::Text,
            ..Run::default()
        };
        assert!(wanted(&json, terminal()));
        assert!(wanted(&text, terminal()));
        let off = Run {
            no_progress: true,
            ..Run::default()
        };
        assert!(!wanted(&off, terminal()));
        for changed in [
            Terminal {
                stderr: false,
                ..terminal()
            },
            Terminal {
                capable: false,
                ..terminal()
            },
            Terminal {
                logs: true,
                ..terminal()
            },
        ] {
            assert!(!wanted(&json, changed), "{changed:?}");
            assert!(!wanted(&text, changed), "{changed:?}");
        }
        let piped = Terminal {
            stdout: false,
            ..terminal()
        };
        assert!(!wanted(&json, piped), "JSON into a pipe");
        assert!(
            wanted(&text, piped),
            "text into a pipe, progress on the terminal"
        );
    }

    fn stopping(steps: Vec<StepReport>) -> ExecutionReport {
        let mut execution = ExecutionReport::new(A, Outcome::StopRequested);
        execution.status = Some(ExecutionStatus::Stopping);
        execution.blocking_steps = steps;
        execution
    }

    fn callback(name: &str) -> StepReport {
        StepReport {
            name: name.into(),
            kind: StepKind::Callback { queue_url: None },
            force: None,
        }
    }

    #[test]
    fn a_wait_names_each_execution_still_stopping_and_the_steps_that_hold_it() {
        let held = stopping(vec![
            callback("approve"),
            StepReport {
                name: "score".into(),
                kind: StepKind::Lambda { function_arn: None },
                force: None,
            },
        ]);
        let mut free = stopping(vec![]);
        free.status = None;
        assert_eq!(
            waiting_text(&[&held, &free], Duration::from_secs(14 * 60 + 5)),
            "waiting up to 14m 05s for 2 executions to stop\n  \
             nightly-training/k7xvw1b9q2hj  Stopping  held by approve(Callback), score(Lambda)\n  \
             nightly-training/k7xvw1b9q2hj  stop requested"
        );
        assert_eq!(
            waiting_text(&[&free], Duration::from_millis(42_100)),
            "waiting up to 43s for 1 execution to stop\n  nightly-training/k7xvw1b9q2hj  stop requested"
        );
        assert_eq!(
            waiting_text(&[], Duration::ZERO),
            "every execution has ended"
        );
    }

    #[test]
    fn a_long_wait_list_is_cut_and_counted() {
        let all: Vec<ExecutionReport> = (0..MAX_LINES + 3).map(|_| stopping(vec![])).collect();
        let refs: Vec<&ExecutionReport> = all.iter().collect();
        let text = waiting_text(&refs, Duration::from_secs(60));
        assert_eq!(text.lines().count(), 1 + MAX_LINES + 1, "{text}");
        assert!(text.ends_with("… and 3 more"), "{text}");
    }

    #[test]
    fn what_sagemaker_names_is_made_terminal_safe() {
        let held = stopping(vec![callback("app\u{1b}]0;pwned\u{7}rove")]);
        let text = waiting_text(&[&held], Duration::from_secs(1));
        assert!(
            !text.contains('\u{1b}') && !text.contains('\u{7}'),
            "{text:?}"
        );
        assert_eq!(
            short_arn("not-an-arn\u{1b}[2J"),
            terminal_safe("not-an-arn\u{1b}[2J")
        );
    }

    #[test]
    fn the_templates_are_valid_and_bars_count_what_they_are_told() {
        // Hidden: `cargo test` on a terminal would draw on it.
        let bars = Bars::drawing_to(ProgressDrawTarget::hidden());
        bars.found(2);
        bars.found(1);
        bars.done(&stopping(vec![]));
        bars.found_all();
        assert_eq!(
            (bars.targets.position(), bars.targets.length()),
            (1, Some(3))
        );
        bars.waiting(&[&stopping(vec![])], Duration::from_secs(3));
        bars.clear();
        assert!(bars.targets.is_finished());
    }
}
