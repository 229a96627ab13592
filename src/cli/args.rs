//! The command line: flags, `--cli-input-json` and `--event`, read into the
//! request the function would receive.

use std::ffi::OsString;

use serde_json::{json, Map, Value};
use stopper_core::request::{json_kind_of_text, StopRequest};
use stopper_core::{ErrorKind, StopError};

pub const HELP: &str = "\
sagemaker-pipeline-stopper: stop Amazon SageMaker Pipelines executions.

Run inside AWS Lambda (AWS_LAMBDA_RUNTIME_API set), this binary is the function.
Run anywhere else, it is this command, with the conventions of
`aws sagemaker stop-pipeline-execution` and the function's exact logic.

USAGE
  sagemaker-pipeline-stopper --pipeline-execution-arn ARN [options]
  sagemaker-pipeline-stopper --pipeline-name NAME [--older-than-minutes N] [options]
  sagemaker-pipeline-stopper --guard [options]     (every execution over its pipeline's limit)
  sagemaker-pipeline-stopper --cli-input-json JSON|file://PATH [options]
  sagemaker-pipeline-stopper --event FILE|-     (any trigger payload, e.g. events/alarm-sns.json)
  sagemaker-pipeline-stopper --generate-cli-skeleton [input|output]

WHAT TO STOP
  --pipeline-execution-arn ARN   an execution (repeat for several)
  --pipeline-name NAME           every running execution of a pipeline
  --guard                        every running execution longer than its pipeline's limit: the
                                 tag MAX_RUNTIME_TAG (default pipeline-stopper:max-runtime, value
                                 90, 90m, 4h, 2d or none) or DEFAULT_MAX_RUNTIME for untagged ones
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
  --no-progress                  no progress display (shown on stderr only when it is a terminal,
                                 without --debug or RUST_LOG, and not with --output json piped)
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
    /// `--no-progress`: no progress display, even on a terminal.
    pub no_progress: bool,
}

/// Parses the command line (without the program name). `read` reads a file
/// (`file://` inputs and `--event`); '-' means standard input.
pub fn parse(
    args: Vec<OsString>,
    read: impl Fn(&str) -> std::io::Result<String>,
) -> Result<Command, StopError> {
    use lexopt::Arg::{Long, Short};
    use lexopt::ValueExt as _;
    let mut parser = lexopt::Parser::from_args(args);
    let mut request = Map::new();
    let mut arns: Vec<Value> = Vec::new();
    let mut input: Option<Value> = None;
    let mut event: Option<String> = None;
    let mut run = Run::default();
    while let Some(arg) = parser.next().map_err(usage)? {
        let text = |parser: &mut lexopt::Parser| -> Result<String, StopError> {
            parser.value().map_err(usage)?.string().map_err(usage)
        };
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Long("version") => return Ok(Command::Version),
            Long("generate-cli-skeleton") => {
                let which = match parser.optional_value() {
                    Some(v) => v.string().map_err(usage)?,
                    // `--generate-cli-skeleton output`, as the AWS CLI takes it.
                    None => match parser
                        .raw_args()
                        .map_err(usage)?
                        .peek()
                        .and_then(|a| a.to_str())
                    {
                        Some(v @ ("input" | "output")) => {
                            let v = v.to_owned();
                            parser.raw_args().map_err(usage)?.next();
                            v
                        }
                        _ => "input".to_owned(),
                    },
                };
                return match which.as_str() {
                    "input" => Ok(Command::Skeleton { output: false }),
                    "output" => Ok(Command::Skeleton { output: true }),
                    other => Err(StopError::validation(format!(
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
            Long("guard") => {
                request.insert("Guard".into(), true.into());
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
                    return Err(StopError::validation(
                        "--cli-input-json is given twice: give the request once",
                    ));
                }
                let given = text(&mut parser)?;
                let from_file = given.starts_with("file://");
                let json = match given.strip_prefix("file://") {
                    Some(path) => read(path).map_err(|e| {
                        configuration(format!("cannot read --cli-input-json {path}: {e}"))
                    })?,
                    None => given,
                };
                // `--cli-input-json request.json`: a path given as JSON.
                if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&json) {
                    let hint = if from_file {
                        ""
                    } else {
                        " (to read a file, write file://PATH)"
                    };
                    return Err(StopError::validation(format!(
                        "--cli-input-json is not valid JSON: {e}{hint}"
                    )));
                }
                if !json.trim_start().starts_with('{') {
                    return Err(StopError::validation(format!(
                        "--cli-input-json must be a JSON object, not {}",
                        json_kind_of_text(&json)
                    )));
                }
                // Read as the function reads a request (a key given twice, an
                // unknown field, an empty target: refused) before the flags
                // are merged over it.
                StopRequest::from_text(&json).map_err(|e| {
                    StopError::validation(format!("--cli-input-json: {}", e.message))
                })?;
                let value: Value = serde_json::from_str(&json).map_err(|e| {
                    StopError::validation(format!("--cli-input-json is not valid JSON: {e}"))
                })?;
                input = Some(value);
            }
            Long("event") => {
                if event.is_some() {
                    return Err(StopError::validation(
                        "--event is given twice: give one event",
                    ));
                }
                let path = text(&mut parser)?;
                let json = read(&path)
                    .map_err(|e| configuration(format!("cannot read --event {path}: {e}")))?;
                // Kept as text, as the function receives it: decoding is the
                // function's, duplicate keys and all.
                serde_json::from_str::<serde::de::IgnoredAny>(&json).map_err(|e| {
                    StopError::validation(format!("--event {path} is not valid JSON: {e}"))
                })?;
                event = Some(json);
            }
            Long("output") => {
                run.output = match text(&mut parser)?.as_str() {
                    "json" => Output::Json,
                    "text" => Output::Text,
                    other => {
                        return Err(StopError::validation(format!(
                            "--output takes json or text, not {other:?}"
                        )))
                    }
                }
            }
            Long("region") => run.region = Some(text(&mut parser)?),
            Long("profile") => run.profile = Some(text(&mut parser)?),
            Long("endpoint-url") => run.endpoint_url = Some(text(&mut parser)?),
            Long("debug") => run.debug = true,
            Long("no-progress") => run.no_progress = true,
            _ => return Err(usage(arg.unexpected())),
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
            return Err(StopError::validation(
                "--event and --cli-input-json are two ways to give the request: use one",
            ))
        }
        (Some(_), None) if !request.is_empty() => {
            return Err(StopError::validation(
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
                    "Guard",
                ]
                .iter()
                .any(|f| f.eq_ignore_ascii_case(key))
            });
            if !names_target {
                return Err(StopError::validation(
                    "nothing to stop: give --pipeline-execution-arn, --pipeline-name, --guard, a --cli-input-json that \
                     names a target, or --event (--help for more)",
                ));
            }
            Value::Object(merged).to_string()
        }
    };
    Ok(Command::Run(run))
}

fn number(parser: &mut lexopt::Parser, flag: &str) -> Result<Value, StopError> {
    use lexopt::ValueExt as _;
    let text = parser.value().map_err(usage)?.string().map_err(usage)?;
    text.parse::<u64>()
        .map(Value::from)
        .map_err(|_| StopError::validation(format!("{flag} takes a whole number, not {text:?}")))
}

/// A command line lexopt cannot read.
fn usage(error: lexopt::Error) -> StopError {
    StopError::validation(error.to_string())
}

/// A file that cannot be read: the configuration's, as in the AWS CLI.
fn configuration(message: String) -> StopError {
    StopError::new(ErrorKind::Configuration, message)
}

/// The `--generate-cli-skeleton` samples. Filled in with an ARN, the input
/// skeleton is a valid request that stops that execution and changes
/// nothing else: every option in it is off. The options that take a value
/// (a token, a reason, a wait) have no neutral value, so `--help` lists them.
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
            "DryRun": false,
            "Wait": false,
            "Force": false
        })
    }
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
            payload(&["--guard", "--dry-run"]),
            json!({"Guard": true, "DryRun": true})
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
        assert_eq!(missing.kind, ErrorKind::Configuration);
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
        assert!(!run.no_progress);
        let mixed = parse(args(&["--event", "e.json", "--dry-run"]), read).unwrap_err();
        assert_eq!(mixed.kind, ErrorKind::Validation);
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
            assert_eq!(err.kind, ErrorKind::Validation, "{bad:?}");
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
        // Filled in with an ARN and nothing else, the input skeleton is a
        // request that stops that execution with every option off.
        let filled = skeleton(false).to_string().replace(
            r#""PipelineExecutionArn":"""#,
            &format!(r#""PipelineExecutionArn":"{A}""#),
        );
        let request = StopRequest::from_text(&filled).unwrap();
        assert_eq!(
            stopper_core::options::Options::from_request(&request),
            Ok(stopper_core::options::Options::default())
        );
        assert_eq!(
            payload(&["--cli-input-json", &filled]),
            json!({"PipelineExecutionArn": A, "DryRun": false, "Wait": false, "Force": false})
        );
        assert!(skeleton(false)["Force"] == false && skeleton(false)["DryRun"] == false);
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
            assert_eq!(err.kind, ErrorKind::Validation, "{bad:?}");
        }
        let read = |_: &str| Ok("{}".to_owned());
        let err = parse(args(&["--event", "a.json", "--event", "b.json"]), read).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation);
    }

    #[test]
    fn a_path_given_to_cli_input_json_is_told_to_use_file_urls() {
        let err = parse(args(&["--cli-input-json", "request.json"]), no_files).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation);
        assert!(err.message.contains("file://PATH"), "{}", err.message);
        // A file that is not JSON, or JSON that is not an object: no hint.
        for text in ["request.json", "[1]"] {
            let read = |_: &str| Ok(text.to_owned());
            let err = parse(args(&["--cli-input-json", "file://r.json"]), read).unwrap_err();
            assert!(!err.message.contains("file://PATH"), "{}", err.message);
        }
        let err = parse(args(&["--cli-input-json", "[1]"]), no_files).unwrap_err();
        assert!(
            err.message.ends_with("must be a JSON object, not an array"),
            "{}",
            err.message
        );
    }

    #[test]
    fn cli_input_json_is_read_as_the_function_reads_a_request() {
        for bad in [
            r#"{"PipelineExecutionArn": "a", "PipelineExecutionArn": "b"}"#,
            r#"{"PipelineExecutionArns": []}"#,
            r#"{"PipelineName": null}"#,
        ] {
            let err = parse(args(&["--cli-input-json", bad]), no_files).unwrap_err();
            assert_eq!(err.kind, ErrorKind::Validation, "{bad}");
        }
    }
}
