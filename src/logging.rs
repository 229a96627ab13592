//! Log set-up shared by the function and the command line, with one rule:
//! whatever level an operator sets (`AWS_LAMBDA_LOG_LEVEL`, `RUST_LOG`, the
//! template's `LogLevel`, `--debug`), it applies to this crate and the core
//! only. Every other target (lambda_runtime, the AWS SDK, aws-config, hyper,
//! rustls, ...) is capped at WARN: at TRACE lambda_runtime prints the raw event
//! (HTTP bodies, the caller's `authorization` and `x-amz-security-token`
//! headers) and the SDK prints responses (callback tokens included) and, at
//! DEBUG, the access key id. None of that may reach the logs.

use std::str::FromStr;

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter, Targets};
use lambda_runtime::tracing::subscriber::fmt::MakeWriter;
use lambda_runtime::tracing::subscriber::layer::SubscriberExt as _;
use lambda_runtime::tracing::subscriber::util::SubscriberInitExt as _;
use lambda_runtime::tracing::subscriber::{fmt, registry};

/// Our own targets, which log at the level the operator sets.
pub const OWN_TARGETS: [&str; 2] = ["sagemaker_pipeline_stopper", "stopper_core"];
/// The most any other target may log.
pub const THIRD_PARTY_CAP: LevelFilter = LevelFilter::WARN;

/// The level an operator asked for: a level name (`TRACE`, `debug`), or the
/// most verbose level in a `RUST_LOG` directive list; `None` for nothing usable.
pub fn requested_level(setting: &str) -> Option<LevelFilter> {
    let setting = setting.trim();
    if setting.is_empty() {
        return None;
    }
    // Lambda's log levels include FATAL, which tracing does not have.
    if setting.eq_ignore_ascii_case("fatal") {
        return Some(LevelFilter::ERROR);
    }
    if let Ok(level) = LevelFilter::from_str(setting) {
        return Some(level);
    }
    // A RUST_LOG directive list (`debug,hyper=info`): its most verbose level.
    // A lone word that is not a level would be read as a target at TRACE.
    if !setting.contains(['=', ',']) {
        return None;
    }
    EnvFilter::try_new(setting)
        .ok()
        .and_then(|f| f.max_level_hint())
}

/// The filter for a requested level: that level for our targets, at most
/// [`THIRD_PARTY_CAP`] for everything else.
pub fn filter(level: LevelFilter) -> Targets {
    let mut targets = Targets::new().with_default(level.min(THIRD_PARTY_CAP));
    for own in OWN_TARGETS {
        targets = targets.with_target(own, level);
    }
    targets
}

/// The function's logs, on Lambda's log controls: `AWS_LAMBDA_LOG_LEVEL`
/// (else `RUST_LOG`, else INFO) and `AWS_LAMBDA_LOG_FORMAT` (`JSON` or text),
/// to stdout, without timestamps (CloudWatch adds them).
pub fn init_function() {
    let setting = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_default();
    let level = requested_level(&setting).unwrap_or(LevelFilter::INFO);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    init(level, json, std::io::stdout);
}

/// The command line's logs: off unless `--debug` (DEBUG) or `RUST_LOG`, to
/// stderr so stdout stays parseable.
pub fn init_cli(debug: bool) {
    init(cli_level(debug), false, std::io::stderr);
}

/// The command line's log level: DEBUG with `--debug`, else `RUST_LOG`'s,
/// else OFF.
pub fn cli_level(debug: bool) -> LevelFilter {
    let level = if debug {
        Some(LevelFilter::DEBUG)
    } else {
        std::env::var("RUST_LOG")
            .ok()
            .and_then(|s| requested_level(&s))
    };
    level.unwrap_or(LevelFilter::OFF)
}

/// Reports a panic by its location only, never its message: a panic's
/// message can quote the input (a slice of an HTTP event, headers and all),
/// and it would reach the logs, the invocation's error and a terminal.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("sagemaker-pipeline-stopper: internal error at {at} (the message is withheld: it may quote the input)");
    }));
}

fn init<W>(level: LevelFilter, json: bool, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let layer = fmt::layer()
        .with_target(false)
        .without_time()
        .with_writer(writer);
    if json {
        let _ = registry().with(layer.json()).with(filter(level)).try_init();
    } else {
        let _ = registry().with(layer).with(filter(level)).try_init();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::tracing::Level;

    #[test]
    fn any_requested_level_reaches_our_targets_but_others_stop_at_warn() {
        for setting in [
            "TRACE",
            "trace",
            "debug,aws_smithy_runtime=trace",
            "aws_config=trace",
        ] {
            let level = requested_level(setting).unwrap();
            let f = filter(level);
            assert!(
                f.would_enable("sagemaker_pipeline_stopper::handler", &Level::TRACE)
                    == (level >= LevelFilter::TRACE),
                "{setting}"
            );
            for third_party in [
                "lambda_runtime::layers::trace",
                "lambda_runtime_api_client",
                "aws_smithy_runtime::client::orchestrator",
                "aws_sdk_sagemaker",
                "aws_config::meta::credentials",
                "aws_sigv4::http_request::sign",
                "hyper_util::client",
                "rustls::client",
            ] {
                assert!(
                    !f.would_enable(third_party, &Level::INFO),
                    "{setting}: {third_party}"
                );
                assert!(
                    !f.would_enable(third_party, &Level::DEBUG),
                    "{setting}: {third_party}"
                );
                assert!(
                    f.would_enable(third_party, &Level::WARN),
                    "{setting}: {third_party}"
                );
            }
        }
        assert_eq!(requested_level("nonsense=="), None);
        assert_eq!(requested_level("FATAL"), Some(LevelFilter::ERROR));
        assert_eq!(requested_level("verbose"), None);
        assert_eq!(
            requested_level("info,aws_config=trace"),
            Some(LevelFilter::TRACE)
        );
        assert_eq!(requested_level(""), None);
        assert!(!filter(LevelFilter::ERROR).would_enable("stopper_core", &Level::WARN));
    }
}
