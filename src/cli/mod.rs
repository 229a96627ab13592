//! The binary outside Lambda: a command-line tool with the conventions of
//! `aws sagemaker stop-pipeline-execution`, running the same decoding,
//! planning and SageMaker calls as the function.
//!
//! Exit codes follow the AWS CLI's: 0 success, 252 invalid command line or
//! request (nothing was called), 253 invalid configuration (no region,
//! unreadable file), 254 SageMaker answered with an error, 255 anything else.
mod args;
mod output;
pub mod progress;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;

use stopper_core::arn::Scope;
use stopper_core::config::Config;
use stopper_core::{ErrorKind, StopError};

pub use args::{parse, skeleton, Command, Output, Run, HELP};
pub use output::{error_line, json_safe, terminal_safe, text};

use crate::handler::{Invocation, Stopper};
use crate::trust;
use crate::{logging, setup};

pub const EXIT_OK: u8 = 0;
pub const EXIT_USAGE: u8 = 252;
pub const EXIT_CONFIG: u8 = 253;
pub const EXIT_SERVICE: u8 = 254;

/// The exit code of an error class, as the AWS CLI would give it.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Validation | ErrorKind::MethodNotAllowed => EXIT_USAGE,
        ErrorKind::Configuration => EXIT_CONFIG,
        _ => EXIT_SERVICE,
    }
}

/// Prints the error, in the one form every error takes, and gives its exit code.
fn fail(error: &StopError) -> ExitCode {
    eprintln!("{}", error_line(error));
    ExitCode::from(exit_code(error.kind))
}

/// Runs the command line; returns the process exit code.
pub async fn main(args: Vec<OsString>) -> ExitCode {
    let read = |path: &str| {
        if path == "-" {
            std::io::read_to_string(std::io::stdin())
        } else {
            std::fs::read_to_string(path)
        }
    };
    let run = match parse(args, read) {
        Ok(Command::Help) => {
            print!("{HELP}");
            return ExitCode::from(EXIT_OK);
        }
        Ok(Command::Version) => {
            println!("sagemaker-pipeline-stopper {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::from(EXIT_OK);
        }
        Ok(Command::Skeleton { output }) => {
            println!("{}", output::pretty(&skeleton(output)));
            return ExitCode::from(EXIT_OK);
        }
        Ok(Command::Run(run)) => run,
        Err(e) => return fail(&e),
    };
    logging::init_cli(run.debug);
    logging::quiet_panics();
    let config = match Config::from_env(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => return fail(&StopError::new(ErrorKind::Configuration, e.to_string())),
    };
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = run.region.clone() {
        loader = loader.region(aws_config::Region::new(region));
    }
    if let Some(profile) = &run.profile {
        loader = loader.profile_name(profile);
    }
    let loader = match trust::configure(loader, |name| std::env::var(name).ok(), trust::read_bundle)
    {
        Ok(loader) => loader,
        Err(e) => return fail(&e),
    };
    let sdk_config = loader.load().await;
    let endpoint = run.endpoint_url.as_deref();
    let scope = match setup::home_scope(&sdk_config, None) {
        Ok(scope) => scope,
        Err(e) => return fail(&e),
    };
    if let Err(e) = setup::check_endpoint(&sdk_config, endpoint) {
        return fail(&e);
    }
    // The account: the CLI stops only in the account of its credentials,
    // as the function stops only in its own. This also proves the
    // credentials work before anything is stopped.
    let account = match caller_account(&sdk_config).await {
        Ok(account) => account,
        Err(e) => return fail(&e),
    };
    let scope = Scope {
        account: Some(account),
        ..scope
    };
    tracing::debug!(
        scope = scope.describe().as_str(),
        "targets must be in this scope"
    );
    let stopper = Stopper::new(
        setup::client(&sdk_config, endpoint),
        config,
        scope.clone(),
        None,
    );
    // Created last: nothing is drawn before the first SageMaker call, and an
    // error before it is printed as it always was.
    let bars = progress::wanted(&run, progress::Terminal::detect(logs_on(run.debug)))
        .then(|| Arc::new(progress::Bars::new()));
    let invocation = Invocation {
        request_id: cli_request_id(),
        scope: Some(scope),
        progress: bars
            .clone()
            .map(|bars| bars as Arc<dyn crate::engine::Progress>),
        ..Invocation::default()
    };
    let (trigger, answer) = stopper.respond(&run.payload, &invocation).await;
    if let Some(bars) = &bars {
        bars.clear();
    }
    let error = answer.error(trigger.http().is_some());
    match run.output {
        Output::Json => {
            if let Some(reply) = output::json(trigger, answer) {
                println!("{}", json_safe(&output::pretty(&reply)));
            }
        }
        Output::Text => {
            let lines = text(&answer);
            if !lines.is_empty() {
                println!("{lines}");
            }
        }
    }
    match error {
        None => ExitCode::from(EXIT_OK),
        Some(error) => fail(&error),
    }
}

/// Whether the CLI logs to stderr (the level `logging::init_cli` set): then
/// no progress is drawn, which would tear the log lines.
fn logs_on(debug: bool) -> bool {
    logging::cli_level(debug) != tracing::level_filters::LevelFilter::OFF
}

/// The account of the configured credentials, from STS GetCallerIdentity
/// (which needs no permission). Failing to load credentials is a
/// configuration error, as is an unreachable STS: without the account, the
/// CLI would have to stop in any account, and it does not.
async fn caller_account(sdk_config: &aws_config::SdkConfig) -> Result<String, StopError> {
    let sts = aws_sdk_sts::Client::new(sdk_config);
    match sts.get_caller_identity().send().await {
        Ok(identity) => identity
            .account
            .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| {
                StopError::new(
                    ErrorKind::Configuration,
                    "STS GetCallerIdentity gave no 12-digit account id: the CLI cannot know its account",
                )
            }),
        Err(e) => Err(setup::configuration_problem(&e).unwrap_or_else(|| {
            StopError::new(
                ErrorKind::Configuration,
                format!(
                    "could not learn the credentials' account from STS GetCallerIdentity ({}): \
                     the CLI only stops executions in that account",
                    setup::failure(&e)
                ),
            )
        })),
    }
}

/// A fresh id per run, like the token the AWS CLI generates when none is
/// given: running the command again is a new request.
fn cli_request_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("cli-{}-{nanos}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_aws_cli() {
        assert_eq!(exit_code(ErrorKind::Validation), EXIT_USAGE);
        assert_eq!(exit_code(ErrorKind::MethodNotAllowed), EXIT_USAGE);
        assert_eq!(exit_code(ErrorKind::Configuration), EXIT_CONFIG);
        for kind in [
            ErrorKind::NotFound,
            ErrorKind::Conflict,
            ErrorKind::Forbidden,
            ErrorKind::Throttled,
            ErrorKind::Upstream,
            ErrorKind::Unavailable,
            ErrorKind::PartialFailure,
        ] {
            assert_eq!(exit_code(kind), EXIT_SERVICE, "{kind:?}");
        }
    }
}
