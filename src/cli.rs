//! The binary outside Lambda: a command-line tool with the conventions of
//! `aws sagemaker stop-pipeline-execution`, running the same decoding,
//! planning and SageMaker calls as the function.
//!
//! Exit codes follow the AWS CLI's: 0 success, 252 invalid command line or
//! request (nothing was called), 253 invalid configuration (no region,
//! unreadable file), 254 SageMaker answered with an error, 255 anything else.

use std::ffi::OsString;
use std::process::ExitCode;

use serde_json::{json, Map, Value};
use stopper_core::arn::Scope;
use stopper_core::config::Config;
use stopper_core::error::{escape_unsafe, is_unsafe_char};
use stopper_core::request::{json_kind_of_text, StopRequest};
use stopper_core::{ErrorKind, StopError};

use crate::handler::{shape, Invocation, Response, Stopper};
use crate::{logging, sagemaker};

pub const EXIT_OK: u8 = 0;
pub const EXIT_USAGE: u8 = 252;
pub const EXIT_CONFIG: u8 = 253;
pub const EXIT_SERVICE: u8 = 254;

pub const HELP: &str = "\
sagemaker-pipeline-stopper: stop Amazon SageMaker Pipelines executions.

Run inside AWS Lambda (AWS_LAMBDA_RUNTIME_API set), this binary is the function.
Run anywhere else, it is this command, with the conventions of
`aws sagemaker stop-pipeline-execution` and the function's exact logic.

USAGE
  sagemaker-pipeline-stopper --pipeline-execution-arn ARN [options]
  sagemaker-pipeline-stopper --pipeline-name NAME [--older-than-minutes N] [options]
  sagemaker-pipeline-stopper --cli-input-json JSON|file://PATH [options]
  sagemaker-pipeline-stopper --event FILE|-     (any trigger payload, e.g. events/alarm-sns.json)
  sagemaker-pipeline-stopper --generate-cli-skeleton [input|output]

WHAT TO STOP
  --pipeline-execution-arn ARN   an execution (repeat for several)
  --pipeline-name NAME           every running execution of a pipeline
  --client-request-token TOKEN   idempotency token, 32-128 characters (one execution only)
  --cli-input-json JSON          the request as JSON, or file://PATH; flags override its fields
  --event FILE                   process a Lambda event exactly as the function would ('-': stdin)

HOW
  --dry-run                      report what would be stopped; change nothing
  --wait                         wait until the executions have ended (at most 900 s)
  --wait-seconds N               wait at most N seconds (1-900)
  --force                        fail running Callback steps so the stop can complete
  --reason TEXT                  failure reason sent to forced Callback steps
  --older-than-minutes N         with --pipeline-name: only executions running longer than N minutes

AWS (standard configuration chain: environment, profiles, SSO, ...)
  --region REGION   --profile NAME   --endpoint-url URL (SageMaker's)
  Targets must be in the configured region's partition and region, and in the
  account of the credentials (from STS GetCallerIdentity), as the function's
  must be in its own; anything else is refused before any SageMaker call.

OUTPUT
  --output json|text             json (default): the function's reply; text: tab-separated lines
  --debug                        log to stderr (also RUST_LOG)
  --help, -h    --version

EXIT CODES
  0 success   252 invalid command line or request (nothing called)   253 configuration
  254 SageMaker error (or some targets failed)   255 other
";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Help,
    Version,
    /// Print a sample of the request (`input`) or the reply (`output`).
    Skeleton {
        output: bool,
    },
    Run(Run),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Json,
    Text,
}

/// A run: the payload to process and how to reach SageMaker.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Run {
    /// A request object, or a Lambda event (with `--event`), as JSON text.
    pub payload: String,
    pub output: Output,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub endpoint_url: Option<String>,
    pub debug: bool,
}

/// A command line that cannot run, and the exit code it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    pub code: u8,
    pub message: String,
}

impl CliError {
    fn usage(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    fn config(message: impl Into<String>) -> CliError {
        CliError {
            code: EXIT_CONFIG,
            message: message.into(),
        }
    }
}

impl From<lexopt::Error> for CliError {
    fn from(e: lexopt::Error) -> CliError {
        CliError::usage(e.to_string())
    }
}

/// Parses the command line (without the program name). `read` reads a file
/// (`file://` inputs and `--event`); '-' means standard input.
pub fn parse(
    args: Vec<OsString>,
    read: impl Fn(&str) -> std::io::Result<String>,
) -> Result<Command, CliError> {
    use lexopt::Arg::{Long, Short};
    use lexopt::ValueExt as _;
    let mut parser = lexopt::Parser::from_args(args);
    let mut request = Map::new();
    let mut arns: Vec<Value> = Vec::new();
    let mut input: Option<Value> = None;
    let mut event: Option<String> = None;
    let mut run = Run::default();
    while let Some(arg) = parser.next()? {
        let text = |parser: &mut lexopt::Parser| -> Result<String, CliError> {
            Ok(parser.value()?.string()?)
        };
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Long("version") => return Ok(Command::Version),
            Long("generate-cli-skeleton") => {
                let which = match parser.optional_value() {
                    Some(v) => v.string()?,
                    // `--generate-cli-skeleton output`, as the AWS CLI takes it.
                    None => match parser.raw_args()?.peek().and_then(|a| a.to_str()) {
                        Some(v @ ("input" | "output")) => {
                            let v = v.to_owned();
                            parser.raw_args()?.next();
                            v
                        }
                        _ => "input".to_owned(),
                    },
                };
                return match which.as_str() {
                    "input" => Ok(Command::Skeleton { output: false }),
                    "output" => Ok(Command::Skeleton { output: true }),
                    other => Err(CliError::usage(format!(
                        "--generate-cli-skeleton takes input or output, not {other:?}"
                    ))),
                };
            }
            Long("pipeline-execution-arn") => arns.push(text(&mut parser)?.into()),
            Long("pipeline-name") => {
                request.insert("PipelineName".into(), text(&mut parser)?.into());
            }
            Long("client-request-token") => {
                request.insert("ClientRequestToken".into(), text(&mut parser)?.into());
            }
            Long("reason") => {
                request.insert("Reason".into(), text(&mut parser)?.into());
            }
            Long("dry-run") => {
                request.insert("DryRun".into(), true.into());
            }
            Long("wait") => {
                request.insert("Wait".into(), true.into());
            }
            Long("force") => {
                request.insert("Force".into(), true.into());
            }
            Long("wait-seconds") => {
                request.insert("WaitSeconds".into(), number(&mut parser, "--wait-seconds")?);
            }
            Long("older-than-minutes") => {
                let n = number(&mut parser, "--older-than-minutes")?;
                request.insert("OlderThanMinutes".into(), n);
            }
            Long("cli-input-json") => {
                if input.is_some() {
                    return Err(CliError::usage(
                        "--cli-input-json is given twice: give the request once",
                    ));
                }
                let given = text(&mut parser)?;
                let json = match given.strip_prefix("file://") {
                    Some(path) => read(path).map_err(|e| {
                        CliError::config(format!("cannot read --cli-input-json {path}: {e}"))
                    })?,
                    None => given,
                };
                if !json.trim_start().starts_with('{') {
                    return Err(CliError::usage(format!(
                        "--cli-input-json must be a JSON object, not {}",
                        json_kind_of_text(&json)
                    )));
                }
                // Read as the function reads a request (a key given twice, an
                // unknown field, an empty target: refused) before the flags
                // are merged over it.
                StopRequest::from_text(&json)
                    .map_err(|e| CliError::usage(format!("--cli-input-json: {}", e.message)))?;
                let value: Value = serde_json::from_str(&json).map_err(|e| {
                    CliError::usage(format!("--cli-input-json is not valid JSON: {e}"))
                })?;
                input = Some(value);
            }
            Long("event") => {
                if event.is_some() {
                    return Err(CliError::usage("--event is given twice: give one event"));
                }
                let path = text(&mut parser)?;
                let json = read(&path)
                    .map_err(|e| CliError::config(format!("cannot read --event {path}: {e}")))?;
                // Kept as text, as the function receives it: decoding is the
                // function's, duplicate keys and all.
                serde_json::from_str::<serde::de::IgnoredAny>(&json).map_err(|e| {
                    CliError::usage(format!("--event {path} is not valid JSON: {e}"))
                })?;
                event = Some(json);
            }
            Long("output") => {
                run.output = match text(&mut parser)?.as_str() {
                    "json" => Output::Json,
                    "text" => Output::Text,
                    other => {
                        return Err(CliError::usage(format!(
                            "--output takes json or text, not {other:?}"
                        )))
                    }
                }
            }
            Long("region") => run.region = Some(text(&mut parser)?),
            Long("profile") => run.profile = Some(text(&mut parser)?),
            Long("endpoint-url") => run.endpoint_url = Some(text(&mut parser)?),
            Long("debug") => run.debug = true,
            _ => return Err(arg.unexpected().into()),
        }
    }
    match arns.len() {
        0 => {}
        1 => {
            request.insert("PipelineExecutionArn".into(), arns.remove(0));
        }
        _ => {
            request.insert("PipelineExecutionArns".into(), Value::Array(arns));
        }
    }
    run.payload = match (event, input) {
        (Some(_), Some(_)) => {
            return Err(CliError::usage(
                "--event and --cli-input-json are two ways to give the request: use one",
            ))
        }
        (Some(_), None) if !request.is_empty() => {
            return Err(CliError::usage(
                "--event processes the event as it is: request flags cannot be added to it",
            ))
        }
        (Some(event), None) => event,
        (None, input) => {
            // Flags override the JSON's fields, as in the AWS CLI, whichever
            // spelling the JSON used; the ARN flags replace both of its ARN
            // fields, so what is stopped is what the flags say.
            let mut merged = match input {
                Some(Value::Object(fields)) => fields,
                _ => Map::new(),
            };
            let arn_fields = ["PipelineExecutionArn", "PipelineExecutionArns"];
            for field in request.keys() {
                let field = field.as_str();
                let is_arn = arn_fields.contains(&field);
                merged.retain(|key, _| {
                    let same = |f: &str| f.eq_ignore_ascii_case(key);
                    !(same(field) || is_arn && arn_fields.iter().any(|f| same(f)))
                });
            }
            merged.extend(request);
            // Unlike a schedule, a command line never falls back to
            // DEFAULT_PIPELINE_NAME: `--dry-run` alone must not stop anything.
            let names_target = merged.keys().any(|key| {
                [
                    "PipelineExecutionArn",
                    "PipelineExecutionArns",
                    "PipelineName",
                ]
                .iter()
                .any(|f| f.eq_ignore_ascii_case(key))
            });
            if !names_target {
                return Err(CliError::usage(
                    "nothing to stop: give --pipeline-execution-arn, --pipeline-name, a --cli-input-json that \
                     names a target, or --event (--help for more)",
                ));
            }
            Value::Object(merged).to_string()
        }
    };
    Ok(Command::Run(run))
}

fn number(parser: &mut lexopt::Parser, flag: &str) -> Result<Value, CliError> {
    use lexopt::ValueExt as _;
    let text = parser.value()?.string()?;
    text.parse::<u64>()
        .map(Value::from)
        .map_err(|_| CliError::usage(format!("{flag} takes a whole number, not {text:?}")))
}

/// The `--generate-cli-skeleton` samples.
pub fn skeleton(output: bool) -> Value {
    if output {
        json!({
            "PipelineExecutionArn": "",
            "Outcome": "StopRequested",
            "Status": "",
            "BlockingSteps": [{"StepName": "", "StepType": "Callback", "SqsQueueUrl": "", "Force": ""}]
        })
    } else {
        json!({
            "PipelineExecutionArn": "",
            "ClientRequestToken": "",
            "PipelineName": "",
            "PipelineExecutionArns": [""],
            "DryRun": true,
            "Wait": true,
            "WaitSeconds": 0,
            "Force": true,
            "Reason": "",
            "OlderThanMinutes": 0
        })
    }
}

/// The exit code of an error class, as the AWS CLI would give it.
pub fn exit_code(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Validation | ErrorKind::MethodNotAllowed => EXIT_USAGE,
        ErrorKind::Configuration => EXIT_CONFIG,
        _ => EXIT_SERVICE,
    }
}

/// The exit code of an HTTP event's reply, from its `statusCode`.
fn http_exit_code(reply: &Value) -> u8 {
    match reply.get("statusCode").and_then(Value::as_u64) {
        None | Some(200..=206) => EXIT_OK,
        Some(400 | 405) => EXIT_USAGE,
        Some(500) => EXIT_CONFIG,
        Some(_) => EXIT_SERVICE,
    }
}

/// Caller input made safe for a terminal: every control character (C0, DEL
/// and C1: ESC sequences, BEL, CSI) and invisible formatting character
/// (bidirectional overrides, zero-width) escaped. An ARN carrying `ESC ] 0 ;`
/// must not retitle the operator's terminal, nor `ESC [ 2 J` clear it.
pub fn terminal_safe(text: &str) -> String {
    escape_unsafe(text)
}

/// JSON for a terminal: serde_json escapes C0 controls inside strings, but
/// not DEL, C1 (U+0080-U+009F, CSI among them) or the invisible formatting
/// characters. Those are escaped here as
/// `\u00XX`, which is the same JSON. Raw newlines are the pretty layout's.
pub fn json_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if is_unsafe_char(c) && c != '\n' {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Tab-separated lines, one per execution (and per blocking step), in the
/// spirit of the AWS CLI's `--output text`. Every field is terminal-safe.
pub fn text(reply: &Value) -> String {
    let mut lines = Vec::new();
    let body = match reply.get("body").and_then(Value::as_str) {
        Some(body) => serde_json::from_str(body).unwrap_or(Value::Null),
        None => reply.clone(),
    };
    let executions: Vec<&Value> = match body.get("Executions").and_then(Value::as_array) {
        Some(list) => list.iter().collect(),
        None if body.get("PipelineExecutionArn").is_some() => vec![&body],
        None => Vec::new(),
    };
    let field = |v: &Value, k: &str| terminal_safe(v.get(k).and_then(Value::as_str).unwrap_or(""));
    for e in executions {
        let mut line = vec![
            field(e, "PipelineExecutionArn"),
            field(e, "Outcome"),
            field(e, "Status"),
        ];
        if let Some(error) = e.get("Error") {
            line.push(field(error, "Code"));
        }
        lines.push(line.join("\t"));
        for step in e
            .get("BlockingSteps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let location = match field(step, "SqsQueueUrl") {
                url if !url.is_empty() => url,
                _ => field(step, "FunctionArn"),
            };
            lines.push(
                [
                    "BLOCKINGSTEP".to_owned(),
                    field(step, "StepName"),
                    field(step, "StepType"),
                    location,
                    field(step, "Force"),
                ]
                .join("\t"),
            );
        }
    }
    for key in ["Message", "Reason"] {
        if let Some(message) = body.get(key).and_then(Value::as_str) {
            lines.push(terminal_safe(message));
        }
    }
    if let Some(error) = body.get("Error") {
        lines.push(format!(
            "{}\t{}",
            field(error, "Code"),
            field(error, "Message")
        ));
    }
    lines.join("\n")
}

fn print_reply(reply: &Value, output: Output) {
    match output {
        Output::Json => println!("{}", json_safe(&pretty(reply))),
        Output::Text => println!("{}", text(reply)),
    }
}

fn print_error(error: &StopError) {
    eprintln!(
        "An error occurred ({}): {}",
        error.kind.error_type(),
        terminal_safe(&error.message)
    );
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("sagemaker-pipeline-stopper: {}", terminal_safe(message));
    ExitCode::from(code)
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
            println!("{}", pretty(&skeleton(output)));
            return ExitCode::from(EXIT_OK);
        }
        Ok(Command::Run(run)) => run,
        Err(e) => return fail(&e.message, e.code),
    };
    logging::init_cli(run.debug);
    logging::quiet_panics();
    let config = match Config::from_env(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(e) => return fail(&e.to_string(), EXIT_CONFIG),
    };
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(region) = run.region.clone() {
        loader = loader.region(aws_config::Region::new(region));
    }
    if let Some(profile) = &run.profile {
        loader = loader.profile_name(profile);
    }
    let sdk_config = loader.load().await;
    let endpoint = run.endpoint_url.as_deref();
    let scope = match sagemaker::home_scope(&sdk_config, None) {
        Ok(scope) => scope,
        Err(e) => return fail(&e.message, EXIT_CONFIG),
    };
    if let Err(e) = sagemaker::check_endpoint(&sdk_config, endpoint) {
        return fail(&e.message, EXIT_CONFIG);
    }
    // The account: the CLI stops only in the account of its credentials,
    // as the function stops only in its own. This also proves the
    // credentials work before anything is stopped.
    let account = match caller_account(&sdk_config).await {
        Ok(account) => account,
        Err(e) => return fail(&e.message, exit_code(e.kind)),
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
        sagemaker::client(&sdk_config, endpoint),
        config,
        scope.clone(),
        None,
    );
    let invocation = Invocation {
        request_id: cli_request_id(),
        scope: Some(scope),
        ..Invocation::default()
    };
    let (trigger, response) = stopper.respond(&run.payload, &invocation).await;
    if trigger.http().is_some() {
        // An HTTP event: print the response its front end would get.
        return match shape(trigger, response) {
            Ok(reply) => {
                let reply = reply.to_value();
                print_reply(&reply, run.output);
                ExitCode::from(http_exit_code(&reply))
            }
            Err(d) => {
                eprintln!(
                    "An error occurred ({}): {}",
                    d.error_type,
                    terminal_safe(&d.error_message)
                );
                ExitCode::from(EXIT_SERVICE)
            }
        };
    }
    match response {
        Response::Ignored(reason) => {
            print_reply(&stopper_core::reply::ignored_body(&reason), run.output);
            ExitCode::from(EXIT_OK)
        }
        Response::Refused(error) => {
            print_error(&error);
            ExitCode::from(exit_code(error.kind))
        }
        // Every target's result is printed, whatever the exit code: a run
        // that stopped one execution and failed on another says both.
        Response::Done(report) => {
            let failure = report.error();
            print_reply(
                &stopper_core::reply::Reply::Report(report).to_value(),
                run.output,
            );
            match failure {
                None => ExitCode::from(EXIT_OK),
                Some(error) => {
                    print_error(&error);
                    ExitCode::from(exit_code(error.kind))
                }
            }
        }
    }
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
        Err(e) => Err(sagemaker::configuration_problem(&e).unwrap_or_else(|| {
            StopError::new(
                ErrorKind::Configuration,
                format!(
                    "could not learn the credentials' account from STS GetCallerIdentity ({}): \
                     the CLI only stops executions in that account",
                    match &e {
                        aws_sdk_sts::error::SdkError::ServiceError(s) => {
                            aws_sdk_sts::error::ProvideErrorMetadata::code(s.err())
                                .unwrap_or("service error")
                                .to_owned()
                        }
                        aws_sdk_sts::error::SdkError::TimeoutError(_) => "timed out".to_owned(),
                        aws_sdk_sts::error::SdkError::DispatchFailure(_) =>
                            "unreachable".to_owned(),
                        _ => "failed".to_owned(),
                    }
                ),
            )
        })),
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
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

    const A: &str =
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/k7xvw1b9q2hj";

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn no_files(path: &str) -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            path.to_owned(),
        ))
    }

    fn payload(list: &[&str]) -> Value {
        match parse(args(list), no_files).unwrap() {
            Command::Run(run) => serde_json::from_str(&run.payload).unwrap(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn flags_become_the_request_fields_of_the_function() {
        assert_eq!(
            payload(&["--pipeline-execution-arn", A, "--client-request-token", "t"]),
            json!({"PipelineExecutionArn": A, "ClientRequestToken": "t"})
        );
        assert_eq!(
            payload(&[
                "--pipeline-name=nightly-training",
                "--older-than-minutes",
                "240",
                "--dry-run",
                "--wait-seconds",
                "60",
                "--force",
                "--reason",
                "cost",
            ]),
            json!({"PipelineName": "nightly-training", "OlderThanMinutes": 240, "DryRun": true,
                   "WaitSeconds": 60, "Force": true, "Reason": "cost"})
        );
        assert_eq!(
            payload(&[
                "--pipeline-execution-arn",
                A,
                "--pipeline-execution-arn",
                "b",
                "--wait"
            ]),
            json!({"PipelineExecutionArns": [A, "b"], "Wait": true})
        );
    }

    #[test]
    fn cli_input_json_is_overridden_by_flags_and_read_from_files() {
        assert_eq!(
            payload(&[
                "--cli-input-json",
                r#"{"PipelineExecutionArn": "x", "ClientRequestToken": "keep"}"#,
                "--pipeline-execution-arn",
                A,
            ]),
            json!({"PipelineExecutionArn": A, "ClientRequestToken": "keep"})
        );
        let read = |path: &str| {
            assert_eq!(path, "/tmp/req.json");
            Ok(format!(r#"{{"PipelineExecutionArn": "{A}"}}"#))
        };
        let Command::Run(run) =
            parse(args(&["--cli-input-json", "file:///tmp/req.json"]), read).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            serde_json::from_str::<Value>(&run.payload).unwrap(),
            json!({"PipelineExecutionArn": A})
        );
        let missing = parse(args(&["--cli-input-json", "file:///nope"]), no_files).unwrap_err();
        assert_eq!(missing.code, EXIT_CONFIG);
    }

    #[test]
    fn an_event_file_is_processed_as_it_is() {
        let read = |_: &str| Ok(r#"{"version": "0", "detail-type": "Scheduled Event"}"#.to_owned());
        let Command::Run(run) = parse(
            args(&["--event", "events/x.json", "--output", "text"]),
            read,
        )
        .unwrap() else {
            panic!()
        };
        assert!(run.payload.contains("Scheduled Event"));
        assert_eq!(run.output, Output::Text);
        let mixed = parse(args(&["--event", "e.json", "--dry-run"]), read).unwrap_err();
        assert_eq!(mixed.code, EXIT_USAGE);
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for bad in [
            &[][..],
            &["--pipeline-execution-arn"],
            &["--wait-seconds", "soon", "--pipeline-name", "p"],
            &["--output", "yaml", "--pipeline-name", "p"],
            &["--frobnicate"],
            &["stray", "--pipeline-name", "p"],
            &["--cli-input-json", "[1]"],
            &["--cli-input-json", "{"],
        ] {
            let err = parse(args(bad), no_files).unwrap_err();
            assert_eq!(err.code, EXIT_USAGE, "{bad:?}");
            assert!(!err.message.is_empty());
        }
    }

    #[test]
    fn help_version_and_skeletons() {
        assert_eq!(parse(args(&["-h"]), no_files).unwrap(), Command::Help);
        assert_eq!(
            parse(args(&["--version"]), no_files).unwrap(),
            Command::Version
        );
        for (given, output) in [
            (&["--generate-cli-skeleton"][..], false),
            (&["--generate-cli-skeleton", "input"], false),
            (&["--generate-cli-skeleton", "output"], true),
            (&["--generate-cli-skeleton=output"], true),
        ] {
            assert_eq!(
                parse(args(given), no_files).unwrap(),
                Command::Skeleton { output },
                "{given:?}"
            );
        }
        // The input skeleton names exactly the fields the function accepts
        // (its blanks filled in: a blank target is refused, as it should be).
        let filled = skeleton(false).to_string().replace(r#""""#, r#""x""#);
        let accepted = StopRequest::from_text(&filled);
        assert!(accepted.is_ok(), "{accepted:?}");
    }

    #[test]
    fn exit_codes_follow_the_aws_cli() {
        assert_eq!(exit_code(ErrorKind::Validation), EXIT_USAGE);
        assert_eq!(exit_code(ErrorKind::MethodNotAllowed), EXIT_USAGE);
        assert_eq!(exit_code(ErrorKind::Configuration), EXIT_CONFIG);
        assert_eq!(exit_code(ErrorKind::NotFound), EXIT_SERVICE);
        assert_eq!(exit_code(ErrorKind::PartialFailure), EXIT_SERVICE);
        assert_eq!(http_exit_code(&json!({"PipelineExecutionArn": A})), EXIT_OK);
        assert_eq!(http_exit_code(&json!({"statusCode": 200})), EXIT_OK);
        assert_eq!(http_exit_code(&json!({"statusCode": 207})), EXIT_SERVICE);
        assert_eq!(http_exit_code(&json!({"statusCode": 400})), EXIT_USAGE);
        assert_eq!(http_exit_code(&json!({"statusCode": 500})), EXIT_CONFIG);
        assert_eq!(http_exit_code(&json!({"statusCode": 503})), EXIT_SERVICE);
    }

    #[test]
    fn nothing_printed_can_drive_the_terminal() {
        let hostile = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/x\u{1b}]0;owned\u{7}\u{1b}[2J\u{9b}31m\u{7f}\u{202e}\u{2066}\u{200b}";
        for printed in [
            terminal_safe(hostile),
            json_safe(&pretty(
                &json!({"PipelineExecutionArn": hostile, "Outcome": "Failed"}),
            )),
            text(
                &json!({"Executions": [{"PipelineExecutionArn": hostile, "Outcome": "Failed",
                "Error": {"Code": "ValidationError"}}], "Message": hostile}),
            ),
        ] {
            assert!(
                !printed
                    .chars()
                    .any(|c| is_unsafe_char(c) && c != '\n' && c != '\t'),
                "{printed:?}"
            );
        }
        // The escaped JSON is the same JSON.
        let safe = json_safe(&pretty(&json!({"a": hostile})));
        assert_eq!(serde_json::from_str::<Value>(&safe).unwrap()["a"], hostile);
    }

    #[test]
    fn flags_replace_the_json_fields_they_name_in_either_spelling() {
        let b = A.replace("k7xvw1b9q2hj", "p3m8zq0d5c1r");
        let c = A.replace("k7xvw1b9q2hj", "zz9yy8xx7ww6");
        for (json, flags, expected) in [
            (
                format!(r#"{{"PipelineExecutionArn": "{A}"}}"#),
                vec![
                    "--pipeline-execution-arn",
                    b.as_str(),
                    "--pipeline-execution-arn",
                    c.as_str(),
                ],
                json!({"PipelineExecutionArns": [b, c]}),
            ),
            (
                format!(r#"{{"PipelineExecutionArns": ["{A}"]}}"#),
                vec!["--pipeline-execution-arn", b.as_str()],
                json!({"PipelineExecutionArn": b}),
            ),
            (
                r#"{"pipelineName": "other", "dryRun": true}"#.to_owned(),
                vec!["--pipeline-name", "nightly-training", "--dry-run"],
                json!({"PipelineName": "nightly-training", "DryRun": true}),
            ),
        ] {
            let mut list = vec!["--cli-input-json", json.as_str()];
            list.extend(flags);
            assert_eq!(payload(&list), expected, "{json}");
        }
    }

    #[test]
    fn a_command_line_must_name_its_target_and_give_each_input_once() {
        for bad in [
            &["--dry-run"][..],
            &["--wait-seconds", "1"],
            &["--force"],
            &["--cli-input-json", r#"{"DryRun": true}"#],
            &[
                "--cli-input-json",
                r#"{"PipelineName": "p", "DryRun": true}"#,
                "--cli-input-json",
                r#"{"PipelineName": "q"}"#,
            ],
        ] {
            let err = parse(args(bad), no_files).unwrap_err();
            assert_eq!(err.code, EXIT_USAGE, "{bad:?}");
        }
        let read = |_: &str| Ok("{}".to_owned());
        let err = parse(args(&["--event", "a.json", "--event", "b.json"]), read).unwrap_err();
        assert_eq!(err.code, EXIT_USAGE);
    }

    #[test]
    fn cli_input_json_is_read_as_the_function_reads_a_request() {
        for bad in [
            r#"{"PipelineExecutionArn": "a", "PipelineExecutionArn": "b"}"#,
            r#"{"PipelineExecutionArns": []}"#,
            r#"{"PipelineName": null}"#,
        ] {
            let err = parse(args(&["--cli-input-json", bad]), no_files).unwrap_err();
            assert_eq!(err.code, EXIT_USAGE, "{bad}");
        }
    }

    #[test]
    fn text_output_has_one_line_per_execution_and_blocking_step() {
        let reply = json!({"Executions": [
            {"PipelineExecutionArn": A, "Outcome": "StopRequested", "Status": "Stopping",
             "BlockingSteps": [{"StepName": "approve", "StepType": "Callback", "SqsQueueUrl": "q", "Force": "Sent"}]},
            {"PipelineExecutionArn": "b", "Outcome": "Failed", "Error": {"Code": "ResourceNotFound"}}
        ]});
        assert_eq!(
            text(&reply),
            format!(
                "{A}\tStopRequested\tStopping\nBLOCKINGSTEP\tapprove\tCallback\tq\tSent\nb\tFailed\t\tResourceNotFound"
            )
        );
        let http = json!({"statusCode": 200, "body": format!(r#"{{"PipelineExecutionArn": "{A}", "Outcome": "WouldStop"}}"#)});
        assert_eq!(text(&http), format!("{A}\tWouldStop\t"));
    }
}
