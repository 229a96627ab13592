//! The reason on the execution: after a stop this event requested, one entry
//! appended to the execution's description, which SageMaker Studio shows on
//! the execution, where the ML engineer whose run stopped looks (as AWS
//! Instance Scheduler leaves its last action on the resource it acted on).
//!
//! An entry says when, why (the guard's limit and the run time; the alarm and
//! its state; the rule; the kind of request), who asked when known, the
//! Lambda request id, which finds the event's log lines, and the stop's key:
//!
//! `[sagemaker-pipeline-stopper 2026-12-05T06:00:02Z: stop requested by the
//! runtime guard: it had run 5h 12m, over its limit 4h (tag "max-runtime");
//! run by the EventBridge scheduled rule "nightly-guard"; request 0f6d…;
//! stop 3fa4c1d2e5b6]`
//!
//! The description is the user's: their text is kept as it is, entries are
//! appended after it, and only this function's own entries (the oldest first)
//! are dropped to stay within SageMaker's 3,072 characters. The stop's key is
//! a digest of its idempotency token, which every delivery of one event
//! shares: an entry whose key is already there is not written again.
//! Entries are separated by a space, never a line break: the model's pattern
//! for the description is `.*`, which SageMaker's (Java) validation does not
//! match across a line break. Text in the exact form of an entry (one the
//! user copied, say) is taken for one.

use sha2::{Digest, Sha256};

use crate::chat::{origin, runtime, shortened, LONG_NAME_CHARS, NAME_CHARS};
use crate::limit::LimitSource;
use crate::notification::{self, Context};
use crate::report::{ExecutionReport, Report};

/// `PipelineExecutionDescription`'s maximum length in the service model,
/// counted here in UTF-16 code units: never fewer than the characters,
/// however the service counts them.
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

/// One execution's entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry<'r> {
    pub arn: &'r str,
    pub text: String,
    /// How the entry ends: the stop's key, by which it is found again.
    key: String,
}

/// The entry for each execution whose stop this event requested (none for a
/// dry run, a refusal, or executions already stopping or ended). `at`: now,
/// as `2026-12-05T06:00:02Z`.
pub fn entries<'r>(report: &'r Report, context: Context<'_>, at: &str) -> Vec<Entry<'r>> {
    notification::stopped(report)
        .into_iter()
        .map(|execution| {
            let key = stop_key(&execution.token);
            Entry {
                arn: &execution.arn,
                text: format!("{}{key}", entry(execution, report, context, at)),
                key,
            }
        })
        .collect()
}

/// The entry without its key.
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
        "{MARKER}{}: {why}; request {}",
        plain(at, NAME_CHARS),
        plain(context.request_id, NAME_CHARS)
    )
}

/// How an entry ends: `; stop ` and the first 12 hex digits of the SHA-256
/// of the stop's token (the token itself may be a caller's own).
fn stop_key(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("; stop {hex}]")
}

/// `current` with the entry appended: this function's oldest entries dropped
/// while the whole would pass [`MAX_DESCRIPTION_CHARS`], the user's text
/// never; nothing when an entry of this stop is already there.
pub fn append(current: &str, entry: &Entry<'_>) -> Append {
    let ours = our_entries(current);
    if ours
        .iter()
        .any(|&(_, end)| current[..end].ends_with(&entry.key))
    {
        return Append::AlreadyNoted;
    }
    for dropped in 0..=ours.len() {
        let mut text = without(current, &ours[..dropped]);
        if !text.is_empty() && !text.ends_with(char::is_whitespace) {
            text.push(' ');
        }
        text.push_str(&entry.text);
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
    text.match_indices(MARKER)
        .filter_map(|(at, _)| {
            let rest = &text[at + MARKER.len()..];
            let close = rest.find([']', '['])?;
            (rest[close..].starts_with(']') && is_entry_time(rest))
                .then_some((at, at + MARKER.len() + close + 1))
        })
        .collect()
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

/// `text` without these entries, each with the space that separated it
/// (the one before it; at the start, the one after it), keeping the text on
/// either side apart.
fn without(text: &str, entries: &[(usize, usize)]) -> String {
    let mut kept = String::with_capacity(text.len());
    let mut from = 0;
    for &(start, end) in entries {
        let before = &text[from..start];
        kept.push_str(before.strip_suffix(' ').unwrap_or(before));
        from = end;
        let after = &text[from..];
        let apart = |c: Option<char>| c.is_none_or(char::is_whitespace);
        if kept.is_empty() && after.starts_with(' ') {
            from += 1;
        } else if !apart(kept.chars().next_back()) && !apart(after.chars().next()) {
            kept.push(' ');
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
    shortened(name, max, |c| match c {
        '"' => '\'',
        '[' => '(',
        ']' => ')',
        c => c,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guard::GuardSummary;
    use crate::report::{guarded, Outcome};
    use crate::trigger::{Cause, HttpFlavor, Trigger};

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

    fn execution(token: &str) -> ExecutionReport {
        ExecutionReport {
            token: token.into(),
            ..ExecutionReport::new(A, Outcome::StopRequested)
        }
    }

    fn entry_of(report: &Report, context: Context<'_>) -> String {
        let entries = entries(report, context, AT);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].arn, A);
        entries[0].text.clone()
    }

    fn stopped() -> Report {
        Report {
            executions: vec![execution("stopper-token-a")],
            ..Report::default()
        }
    }

    fn guard_stop(source: LimitSource) -> Report {
        let execution = ExecutionReport {
            token: "stopper-token-a".into(),
            ..guarded(A.into(), 240, source, 312)
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
    fn an_entry_says_when_why_who_which_request_and_which_stop() {
        let rule = Cause::Rule("nightly-guard".into());
        let scheduled = Context {
            cause: Some(&rule),
            ..context(Trigger::ScheduledEvent)
        };
        // The stop's key: the first 12 hex digits of sha256("stopper-token-a").
        assert_eq!(
            entry_of(&guard_stop(LimitSource::Tag), scheduled),
            "[sagemaker-pipeline-stopper 2026-12-05T06:00:02Z: stop requested by the runtime \
             guard: it had run 5h 12m, over its limit 4h (tag \"max-runtime\"); run by the \
             EventBridge scheduled rule \"nightly-guard\"; request req-1; stop 4a1de4f4faa1]"
        );
        assert!(entry_of(&guard_stop(LimitSource::Default), scheduled)
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
             \"cost-runaway\" in \"ALARM\" (on EventBridge); request req-1; stop 4a1de4f4faa1]"
        );
        let http = Context {
            caller: Some("arn:aws:iam::123456789012:user/ana@example.com"),
            ..context(Trigger::Http(HttpFlavor::FunctionUrl))
        };
        assert_eq!(
            entry_of(&stopped(), http),
            "[sagemaker-pipeline-stopper 2026-12-05T06:00:02Z: stop requested by an HTTP request \
             (function URL); asked by \"arn:aws:iam::123456789012:user/ana@example.com\"; request \
             req-1; stop 4a1de4f4faa1]"
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
        assert!(entry.starts_with(MARKER) && entry.ends_with("; request r) ; stop 4a1de4f4faa1]"));
        assert_eq!(entry.matches(['[', ']', '\n']).count(), 2, "{entry}");
        assert!(entry.contains("asked by \"x)' (yyy") && entry.contains("y…\""));
        assert!(entry.chars().count() < 500, "{}", entry.chars().count());
        assert_eq!(our_entries(&entry), [(0, entry.len())]);
    }

    /// An entry of the stop with this token.
    fn entry(token: &str) -> Entry<'static> {
        let key = stop_key(token);
        Entry {
            arn: A,
            text: format!("{MARKER}{AT}: stop requested by an SNS message; request r{key}"),
            key,
        }
    }

    fn written(current: &str, token: &str) -> String {
        match append(current, &entry(token)) {
            Append::Write(text) => text,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_entry_follows_the_users_text_and_each_stop_writes_once() {
        let (e1, e2) = (entry("t1").text, entry("t2").text);
        assert_eq!(written("", "t1"), e1);
        assert_eq!(written("Nightly run", "t1"), format!("Nightly run {e1}"));
        // The user's own line break or space is kept, and not doubled.
        assert_eq!(written("Nightly\n", "t1"), format!("Nightly\n{e1}"));
        let once = written("Nightly run", "t1");
        assert_eq!(append(&once, &entry("t1")), Append::AlreadyNoted);
        assert_eq!(written(&once, "t2"), format!("Nightly run {e1} {e2}"));
    }

    #[test]
    fn our_oldest_entries_make_room_and_the_users_text_never_does() {
        let user = format!("Run for {} ", "é".repeat(1000));
        let mut text = user.clone();
        for i in 0..40 {
            let token = format!("t{i}");
            text = written(&text, &token);
            assert!(text.encode_utf16().count() <= MAX_DESCRIPTION_CHARS);
            assert!(text.starts_with(&user) && text.ends_with(&entry(&token).text));
        }
        // Only the newest entries are left, in order, each once.
        let left: Vec<&str> = our_entries(&text)
            .iter()
            .map(|&(s, e)| &text[s..e])
            .collect();
        let newest: Vec<String> = (40 - left.len()..40)
            .map(|i| entry(&format!("t{i}")).text)
            .collect();
        assert!(left.len() > 5 && left == newest, "{left:?}");
        assert_eq!(text, format!("{user}{}", newest.join(" ")));
    }

    #[test]
    fn a_dropped_entry_takes_its_space_and_leaves_the_users_words_apart() {
        let (e1, e2) = (entry("t1").text, entry("t2").text);
        for (text, left) in [
            (format!("{e1} a {e2} b"), "a b"),
            (format!("a {e1}"), "a"),
            (format!("a\n{e1}"), "a\n"),
            // The user's own space before our entry, their word glued after it.
            (format!("a {e1}then"), "a then"),
            (format!("a{e1}then"), "a then"),
        ] {
            assert_eq!(without(&text, &our_entries(&text)), left, "{text}");
        }
    }

    #[test]
    fn no_room_beside_the_users_text_writes_nothing() {
        let e1 = entry("t1").text;
        // Counted as UTF-16: an emoji is two units.
        let full = "🛑".repeat(MAX_DESCRIPTION_CHARS / 2 - 10);
        assert_eq!(append(&full, &entry("t1")), Append::NoRoom);
        // The user's text is not ours, however much it looks like it.
        let lookalike = format!(
            "[sagemaker-pipeline-stopper soon: r0] {}",
            "x".repeat(MAX_DESCRIPTION_CHARS - e1.len() - 30)
        );
        assert!(our_entries(&lookalike).is_empty());
        assert_eq!(append(&lookalike, &entry("t1")), Append::NoRoom);
        let fits = "x".repeat(MAX_DESCRIPTION_CHARS - e1.len() - 1);
        assert_eq!(written(&fits, "t1").len(), MAX_DESCRIPTION_CHARS);
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
