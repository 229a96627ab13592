//! The reason on the execution: after a stop this event requested, one entry
//! appended to the execution's description, which SageMaker Studio shows on
//! the execution, where the ML engineer whose run stopped looks (as AWS
//! Instance Scheduler leaves its last action on the resource it acted on).
//!
//! An entry says when, why (the guard's limit and the run time; the alarm and
//! its state; the rule; the kind of request), who asked when known, and the
//! Lambda request id, which finds the event's log lines:
//!
//! `[sagemaker-pipeline-stopper 2026-12-05T06:00:02Z: stop requested by the
//! runtime guard: it had run 5h 12m, over its limit 4h (tag "max-runtime");
//! run by the EventBridge scheduled rule "nightly-guard"; request 0f6d…]`
//!
//! The description is the user's: their text is kept as it is, entries are
//! appended after it, and only this function's own entries (the oldest first)
//! are dropped to stay within SageMaker's 3,072 characters. An entry whose
//! request id is already there is not written again (a retried invocation).
//! Entries are separated by a space, never a line break: the model's pattern
//! for the description is `.*`, which SageMaker's (Java) validation does not
//! match across a line break.

use crate::chat::{cut, origin, runtime, LONG_NAME_CHARS, NAME_CHARS};
use crate::limit::LimitSource;
use crate::notification::{self, Context};
use crate::report::{ExecutionReport, Report};

/// `PipelineExecutionDescription`'s maximum length in the service model,
/// counted here in UTF-16 code units (as the service's Java counts
/// characters), never fewer than the characters.
pub const MAX_DESCRIPTION_CHARS: usize = 3072;

/// How every entry starts.
const MARKER: &str = "[sagemaker-pipeline-stopper ";

/// What to do with an execution's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Append {
    /// Write this description.
    Write(String),
    /// An entry of this request is there already: write nothing.
    AlreadyNoted,
    /// The user's text leaves no room for the entry: write nothing.
    NoRoom,
}

/// The entry for each execution whose stop this event requested (none for a
/// dry run, a refusal, or executions already stopping or ended), with its
/// ARN. `at`: now, as `2026-12-05T06:00:02Z`.
pub fn entries<'r>(report: &'r Report, context: Context<'_>, at: &str) -> Vec<(&'r str, String)> {
    notification::stopped(report)
        .into_iter()
        .map(|execution| {
            (
                execution.arn.as_str(),
                entry(execution, report, context, at),
            )
        })
        .collect()
}

fn entry(execution: &ExecutionReport, report: &Report, context: Context<'_>, at: &str) -> String {
    let by = origin(context.trigger, context.cause, quoted);
    let mut why = match (&execution.guard, &report.guard) {
        (Some(run), Some(guard)) => {
            let limit = match run.limit.source {
                LimitSource::Tag => format!(
                    "its limit {} (tag {})",
                    run.limit.max_runtime,
                    quoted(&guard.tag_key, LONG_NAME_CHARS)
                ),
                LimitSource::Default => format!("the default limit {}", run.limit.max_runtime),
            };
            format!(
                "stop requested by the runtime guard: it had run {}, over {limit}; run by {by}",
                runtime(run.runtime)
            )
        }
        _ => format!("stop requested by {by}"),
    };
    if let Some(caller) = context.caller {
        why.push_str(&format!("; asked by {}", quoted(caller, LONG_NAME_CHARS)));
    }
    format!(
        "{MARKER}{}: {why}{}",
        plain(at, NAME_CHARS),
        request_key(context.request_id)
    )
}

/// How an entry ends: its request id, by which a retried invocation finds it.
fn request_key(request_id: &str) -> String {
    format!("; request {}]", plain(request_id, NAME_CHARS))
}

/// `current` with `entry` appended: this function's oldest entries dropped
/// while the whole would pass [`MAX_DESCRIPTION_CHARS`], the user's text
/// never; nothing when this request's entry is already there.
pub fn append(current: &str, entry: &str, request_id: &str) -> Append {
    let ours = our_entries(current);
    let key = request_key(request_id);
    if ours.iter().any(|&(_, end)| current[..end].ends_with(&key)) {
        return Append::AlreadyNoted;
    }
    for dropped in 0..=ours.len() {
        let mut text = without(current, &ours[..dropped]);
        if !text.is_empty() && !text.ends_with(char::is_whitespace) {
            text.push(' ');
        }
        text.push_str(entry);
        if text.encode_utf16().count() <= MAX_DESCRIPTION_CHARS {
            return Append::Write(text);
        }
    }
    Append::NoRoom
}

/// Where this function's entries are in `text` (start, end), in order: a
/// [`MARKER`], a time `YYYY-MM-DDTHH:MM:SSZ: `, and no bracket before the
/// closing one.
fn our_entries(text: &str) -> Vec<(usize, usize)> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(MARKER).map(|i| from + i) {
        let rest = &text[at + MARKER.len()..];
        let end = rest
            .find([']', '['])
            .filter(|&i| rest[i..].starts_with(']'));
        match end {
            Some(i) if is_entry_time(rest) => {
                let end = at + MARKER.len() + i + 1;
                found.push((at, end));
                from = end;
            }
            _ => from = at + MARKER.len(),
        }
    }
    found
}

/// Whether `rest` starts with `YYYY-MM-DDTHH:MM:SSZ: `.
fn is_entry_time(rest: &str) -> bool {
    let shape = b"dddd-dd-ddTdd:dd:ddZ: ";
    rest.len() >= shape.len()
        && rest.bytes().zip(shape).all(|(b, &s)| match s {
            b'd' => b.is_ascii_digit(),
            s => b == s,
        })
}

/// `text` without these entries, each with the space that separated it.
fn without(text: &str, entries: &[(usize, usize)]) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut from = 0;
    for &(start, end) in entries {
        let before = &text[from..start];
        let space_before = before.ends_with(' ') && !before.is_empty();
        kept.push_str(if space_before {
            &before[..before.len() - 1]
        } else {
            before
        });
        from = end;
        if !space_before && text[from..].starts_with(' ') {
            from += 1;
        }
    }
    kept.push_str(&text[from..]);
    kept
}

/// A name in double quotes (see [`plain`]).
fn quoted(name: &str, max: usize) -> String {
    format!("\"{}\"", plain(name, max))
}

/// A name at most `max` characters long, in plain text that ends no quote
/// and no entry (`"` becomes `'`, brackets parentheses), with nothing that
/// breaks the line or hides or reorders text.
fn plain(name: &str, max: usize) -> String {
    cut(name, max)
        .chars()
        .map(|c| match c {
            '"' => '\'',
            '[' => '(',
            ']' => ')',
            c if crate::error::is_unsafe_char(c) => ' ',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::GuardSummary;
    use crate::limit::{GuardedRun, Limit, MaxRuntime};
    use crate::report::Outcome;
    use crate::trigger::{Cause, HttpFlavor, Trigger};
    use std::time::Duration;

    const AT: &str = "2026-12-05T06:00:02Z";
    const A: &str = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly/execution/a";

    fn context(trigger: Trigger) -> Context<'static> {
        Context {
            trigger,
            cause: None,
            caller: None,
            request_id: "req-1",
            function_name: "stopper",
        }
    }

    fn entry_of(report: &Report, context: Context<'_>) -> String {
        let mut entries = entries(report, context, AT);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].0, A);
        entries.remove(0).1
    }

    fn stopped() -> Report {
        Report {
            executions: vec![ExecutionReport::new(A, Outcome::StopRequested)],
            ..Report::default()
        }
    }

    fn guarded(source: LimitSource) -> Report {
        let execution = ExecutionReport {
            guard: Some(GuardedRun {
                limit: Limit {
                    max_runtime: MaxRuntime::from_minutes(240).unwrap(),
                    source,
                },
                runtime: Duration::from_secs(312 * 60 + 59),
            }),
            ..ExecutionReport::new(A, Outcome::StopRequested)
        };
        Report {
            executions: vec![execution],
            guard: Some(Box::new(GuardSummary {
                tag_key: "max-runtime".into(),
                ..GuardSummary::default()
            })),
            ..Report::default()
        }
    }

    #[test]
    fn an_entry_says_when_why_who_and_which_request() {
        let rule = Cause::Rule("nightly-guard".into());
        let scheduled = Context {
            cause: Some(&rule),
            ..context(Trigger::ScheduledEvent)
        };
        assert_eq!(
            entry_of(&guarded(LimitSource::Tag), scheduled),
            "[sagemaker-pipeline-stopper 2026-12-05T06:00:02Z: stop requested by the runtime \
             guard: it had run 5h 12m, over its limit 4h (tag \"max-runtime\"); run by the \
             EventBridge scheduled rule \"nightly-guard\"; request req-1]"
        );
        assert!(entry_of(&guarded(LimitSource::Default), scheduled)
            .contains("it had run 5h 12m, over the default limit 4h; run by"));
        let alarm = Cause::Alarm {
            name: "cost-runaway".into(),
            state: "ALARM".into(),
        };
        let alarmed = Context {
            cause: Some(&alarm),
            ..context(Trigger::AlarmEventBridge)
        };
        assert_eq!(
            entry_of(&stopped(), alarmed),
            "[sagemaker-pipeline-stopper 2026-12-05T06:00:02Z: stop requested by CloudWatch alarm \
             \"cost-runaway\" in \"ALARM\" (on EventBridge); request req-1]"
        );
        let http = Context {
            caller: Some("arn:aws:iam::123456789012:user/ana@example.com"),
            ..context(Trigger::Http(HttpFlavor::FunctionUrl))
        };
        assert_eq!(
            entry_of(&stopped(), http),
            "[sagemaker-pipeline-stopper 2026-12-05T06:00:02Z: stop requested by an HTTP request \
             (function URL); asked by \"arn:aws:iam::123456789012:user/ana@example.com\"; request \
             req-1]"
        );
    }

    #[test]
    fn names_cannot_end_an_entry_break_its_line_or_grow_it() {
        let caller = format!("x]\"\n[{}", "y".repeat(1000));
        let context = Context {
            caller: Some(&caller),
            request_id: "r]\u{202E}",
            ..context(Trigger::Http(HttpFlavor::HttpApi))
        };
        let entry = entry_of(&stopped(), context);
        assert!(entry.starts_with(MARKER) && entry.ends_with("; request r) ]"));
        assert_eq!(entry.matches(['[', ']', '\n']).count(), 2, "{entry}");
        assert!(entry.contains("asked by \"x)' (yyy") && entry.contains("y…\""));
        assert!(entry.chars().count() < 500, "{}", entry.chars().count());
        assert_eq!(our_entries(&entry), [(0, entry.len())]);
    }

    fn entry(request: &str) -> String {
        format!("{MARKER}{AT}: stop requested by an SNS message; request {request}]")
    }

    fn written(current: &str, request: &str) -> String {
        match append(current, &entry(request), request) {
            Append::Write(text) => text,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_entry_follows_the_users_text_and_each_request_writes_once() {
        assert_eq!(written("", "r1"), entry("r1"));
        assert_eq!(
            written("Nightly run", "r1"),
            format!("Nightly run {}", entry("r1"))
        );
        // The user's own line break or space is kept, and not doubled.
        assert_eq!(
            written("Nightly\n", "r1"),
            format!("Nightly\n{}", entry("r1"))
        );
        let once = written("Nightly run", "r1");
        assert_eq!(append(&once, &entry("r1"), "r1"), Append::AlreadyNoted);
        assert_eq!(
            written(&once, "r2"),
            format!("Nightly run {} {}", entry("r1"), entry("r2"))
        );
        // A request id that only starts like this one's is another request.
        assert_eq!(
            written(&entry("r10"), "r1"),
            format!("{} {}", entry("r10"), entry("r1"))
        );
    }

    #[test]
    fn our_oldest_entries_make_room_and_the_users_text_never_does() {
        let user = format!("Run for {} ", "é".repeat(1000));
        let mut text = user.clone();
        for i in 0..40 {
            text = written(&text, &format!("r{i}"));
            assert!(text.encode_utf16().count() <= MAX_DESCRIPTION_CHARS);
            assert!(text.starts_with(&user) && text.ends_with(&entry(&format!("r{i}"))));
        }
        // Only the newest entries are left, in order, each once.
        let left: Vec<&str> = our_entries(&text)
            .iter()
            .map(|&(s, e)| &text[s..e])
            .collect();
        let newest: Vec<String> = (40 - left.len()..40)
            .map(|i| entry(&format!("r{i}")))
            .collect();
        assert!(left.len() > 5 && left == newest, "{left:?}");
        assert_eq!(text, format!("{user}{}", newest.join(" ")));
        // Our entries between the user's words: dropped with their space.
        let between = format!("{} a {} b", entry("r1"), entry("r2"));
        assert_eq!(without(&between, &our_entries(&between)), "a b");
    }

    #[test]
    fn no_room_beside_the_users_text_writes_nothing() {
        // Counted as SageMaker counts: an emoji is two UTF-16 units.
        let full = "🛑".repeat(MAX_DESCRIPTION_CHARS / 2 - 10);
        assert_eq!(append(&full, &entry("r1"), "r1"), Append::NoRoom);
        // The user's text is not ours, however much it looks like it.
        let lookalike = format!(
            "[sagemaker-pipeline-stopper soon: r0] {}",
            "x".repeat(MAX_DESCRIPTION_CHARS - entry("r1").len() - 30)
        );
        assert!(our_entries(&lookalike).is_empty());
        assert_eq!(append(&lookalike, &entry("r1"), "r1"), Append::NoRoom);
        let fits = "x".repeat(MAX_DESCRIPTION_CHARS - entry("r1").len() - 1);
        assert_eq!(written(&fits, "r1").len(), MAX_DESCRIPTION_CHARS);
    }

    #[test]
    fn nothing_is_noted_unless_this_event_requested_the_stop() {
        let mut dry = stopped();
        dry.dry_run = true;
        let stopping = Report {
            executions: vec![ExecutionReport::new(A, Outcome::AlreadyStopping)],
            ..Report::default()
        };
        for report in [dry, stopping] {
            assert!(entries(&report, context(Trigger::Direct), AT).is_empty());
        }
    }
}
