//! The real SDK client, built the way `main` builds it, against a loopback
//! HTTP server that checks each request byte for byte and answers as SageMaker
//! does (awsJson1_1, errors as HTTP 4xx/5xx with `__type`). No AWS is called.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::A;
use aws_config::retry::RetryConfig;
use aws_config::BehaviorVersion;
use aws_sdk_sagemaker::config::Credentials;
use lambda_runtime::{Context, LambdaEvent};
use sagemaker_pipeline_stopper::handler::Stopper;
use sagemaker_pipeline_stopper::setup;
use serde_json::value::RawValue;
use serde_json::{json, Value};
use stopper_core::config::Config;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
struct Recorded {
    method: String,
    path: String,
    headers: HashMap<String, String>,
    body: Value,
    /// The body as sent, byte for byte.
    raw: Vec<u8>,
}

/// What the fake SageMaker answers to the n-th request (from 0): status, body, delay.
type Responder = Arc<dyn Fn(&Recorded, usize) -> (u16, String, Duration) + Send + Sync>;

struct FakeSageMaker {
    endpoint: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

async fn fake_sagemaker(responder: Responder) -> FakeSageMaker {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let requests: Arc<Mutex<Vec<Recorded>>> = Arc::default();
    let log = requests.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (log, responder) = (log.clone(), responder.clone());
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut reader = BufReader::new(read);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let mut parts = line.split_whitespace();
                    let (method, path) = (
                        parts.next().unwrap_or("").to_owned(),
                        parts.next().unwrap_or("").to_owned(),
                    );
                    let mut headers = HashMap::new();
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).await.unwrap();
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        let (name, value) = header.split_once(':').unwrap();
                        headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
                    }
                    let length: usize = headers
                        .get("content-length")
                        .map_or(0, |l| l.parse().unwrap());
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.unwrap();
                    let recorded = Recorded {
                        method,
                        path,
                        headers,
                        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                        raw: body.to_vec(),
                    };
                    let n = {
                        let mut log = log.lock().unwrap();
                        log.push(recorded.clone());
                        log.len() - 1
                    };
                    let (status, body, delay) = responder(&recorded, n);
                    tokio::time::sleep(delay).await;
                    let response = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\n\
                         x-amzn-RequestId: 5e0e3c3e-0000-4000-8000-00000000000{n}\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if write.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    FakeSageMaker { endpoint, requests }
}

impl FakeSageMaker {
    /// Sends `{"PipelineExecutionArn": A}` through the handler with `budget` left before the deadline.
    async fn stop_a(&self, budget: Duration) -> Result<Value, lambda_runtime::Diagnostic> {
        self.stopper()
            .await
            .handle(event(json!({"PipelineExecutionArn": A}), budget))
            .await
            .map(|reply| reply.to_value())
    }

    fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }

    /// The client exactly as `main` builds it, pointed here, with static test
    /// credentials and a short retry backoff.
    async fn stopper(&self) -> Stopper {
        let sdk_config = aws_config::defaults(BehaviorVersion::latest())
            .region("us-east-1")
            .credentials_provider(Credentials::new(
                "AKIDEXAMPLE",
                "wJalrXUtnFEMI/K7MDENG",
                None,
                None,
                "test",
            ))
            .endpoint_url(&self.endpoint)
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(3)
                    .with_initial_backoff(Duration::from_millis(5)),
            )
            .load()
            .await;
        let home = setup::home_scope(&sdk_config, None).unwrap();
        Stopper::new(
            setup::client(&sdk_config, None),
            Config {
                max_concurrency: 4,
                ..Config::default()
            },
            home,
            None,
        )
    }
}

fn event(payload: Value, budget: Duration) -> LambdaEvent<Box<RawValue>> {
    let mut context = Context::default();
    context.request_id = "d0c5e7a1-2b3c-4d5e-8f90-a1b2c3d4e5f6".into();
    context.invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:stopper".into();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    context.deadline = (now + budget).as_millis() as u64;
    LambdaEvent::new(RawValue::from_string(payload.to_string()).unwrap(), context)
}

fn respond(
    f: impl Fn(&Recorded, usize) -> (u16, String, Duration) + Send + Sync + 'static,
) -> Responder {
    Arc::new(f)
}

#[tokio::test]
async fn the_stop_request_is_exactly_what_sagemaker_documents() {
    let server = fake_sagemaker(respond(|_, _| {
        (
            200,
            format!("{{\"PipelineExecutionArn\":\"{A}\"}}"),
            Duration::ZERO,
        )
    }))
    .await;
    let reply = server.stop_a(Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        reply,
        json!({"PipelineExecutionArn": A, "Outcome": "StopRequested"})
    );

    let requests = server.requests();
    assert_eq!(
        requests.len(),
        3,
        "a look at the execution, the stop, then the listing of the steps that hold it"
    );
    assert_eq!(
        requests[0].headers["x-amz-target"],
        "SageMaker.DescribePipelineExecution"
    );
    let steps = &requests[2];
    assert_eq!(
        steps.headers["x-amz-target"],
        "SageMaker.ListPipelineExecutionSteps"
    );
    assert_eq!(
        steps.body,
        json!({"PipelineExecutionArn": A, "MaxResults": 100})
    );
    let r = &requests[1];
    assert_eq!((r.method.as_str(), r.path.as_str()), ("POST", "/"));
    assert_eq!(r.headers["x-amz-target"], "SageMaker.StopPipelineExecution");
    assert_eq!(r.headers["content-type"], "application/x-amz-json-1.1");
    let auth = &r.headers["authorization"];
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{auth}"
    );
    assert!(auth.contains("/us-east-1/sagemaker/aws4_request"), "{auth}");
    assert!(
        auth.contains("SignedHeaders=")
            && auth.contains("x-amz-target")
            && auth.contains("Signature="),
        "{auth}"
    );
    // The body, byte for byte: the two documented fields and nothing else,
    // the token derived from the invocation's request id (a direct call
    // has no identity of its own), so that a retry sends the same one.
    let token = stopper_core::token::derive("lambda:d0c5e7a1-2b3c-4d5e-8f90-a1b2c3d4e5f6", A);
    assert!((32..=128).contains(&token.len()));
    assert_eq!(
        String::from_utf8(r.raw.clone()).unwrap(),
        format!(r#"{{"PipelineExecutionArn":"{A}","ClientRequestToken":"{token}"}}"#)
    );
}

#[tokio::test]
async fn throttling_is_retried_with_the_same_token_until_it_succeeds() {
    // The look before the stop (request 0) passes; the stop is throttled twice.
    let server = fake_sagemaker(respond(|_, n| match n {
        1 | 2 => (
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.into(),
            Duration::ZERO,
        ),
        _ => (
            200,
            format!("{{\"PipelineExecutionArn\":\"{A}\"}}"),
            Duration::ZERO,
        ),
    }))
    .await;
    let reply = server.stop_a(Duration::from_secs(30)).await.unwrap();
    assert_eq!(reply["Outcome"], "StopRequested");
    let tokens: Vec<Value> = server
        .requests()
        .iter()
        .filter(|r| r.headers["x-amz-target"] == "SageMaker.StopPipelineExecution")
        .map(|r| r.body["ClientRequestToken"].clone())
        .collect();
    assert_eq!(tokens.len(), 3);
    assert!(tokens.iter().all(|t| t == &tokens[0]), "{tokens:?}");
}

#[tokio::test]
async fn sagemaker_error_shapes_become_the_documented_errors() {
    for (status, body, error_type) in [
        (
            400,
            r#"{"__type":"ResourceNotFound","Message":"Pipeline execution does not exist"}"#,
            "ResourceNotFound",
        ),
        (
            400,
            r#"{"__type":"com.amazonaws.sagemaker#ResourceNotFound","Message":"x"}"#,
            "ResourceNotFound",
        ),
        (
            400,
            r#"{"__type":"ValidationException","Message":"1 validation error detected"}"#,
            // SageMaker's refusal, not the caller's bad input: an upstream answer.
            "UpstreamError",
        ),
        (
            500,
            r#"{"__type":"InternalFailure","Message":"java.lang.NullPointerException at ..."}"#,
            "UpstreamError",
        ),
        (503, "<html>Service Unavailable</html>", "UpstreamError"),
        (
            400,
            r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
            "ThrottlingException",
        ),
    ] {
        let server =
            fake_sagemaker(respond(move |_, _| (status, body.into(), Duration::ZERO))).await;
        let err = server.stop_a(Duration::from_secs(30)).await.unwrap_err();
        assert_eq!(err.error_type, error_type, "{status} {body}");
        assert!(
            !err.error_message.contains("java.lang"),
            "{}",
            err.error_message
        );
    }
}

/// SageMaker's refusal of a stop of an execution that is no longer
/// `Executing`, as real clients see it (a `ValidationException` told apart by
/// its message), read off the wire: the execution ended between the look
/// before the stop and the stop.
#[tokio::test]
async fn a_stop_refused_as_not_executing_is_checked_against_the_executions_status() {
    let server = fake_sagemaker(respond(|r, n| {
        let status = if n == 0 { "Executing" } else { "Failed" };
        match r.headers["x-amz-target"].as_str() {
            "SageMaker.StopPipelineExecution" => (
                400,
                r#"{"__type":"ValidationException","Message":"Only pipelines with 'Executing' status can be stopped"}"#.into(),
                Duration::ZERO,
            ),
            _ => (
                200,
                format!("{{\"PipelineExecutionArn\":\"{A}\",\"PipelineExecutionStatus\":\"{status}\"}}"),
                Duration::ZERO,
            ),
        }
    }))
    .await;
    let reply = server.stop_a(Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        reply,
        json!({"PipelineExecutionArn": A, "Outcome": "AlreadyFinished", "Status": "Failed"})
    );
    let targets: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r.headers["x-amz-target"].clone())
        .collect();
    assert_eq!(
        targets,
        [
            "SageMaker.DescribePipelineExecution",
            "SageMaker.StopPipelineExecution",
            "SageMaker.DescribePipelineExecution"
        ]
    );
}

#[tokio::test]
async fn a_sagemaker_that_hangs_past_the_deadline_gets_a_reply_before_the_deadline() {
    let server = fake_sagemaker(respond(|_, _| (200, "{}".into(), Duration::from_secs(8)))).await;
    let budget = Duration::from_millis(1500);
    let started = std::time::Instant::now();
    let err = server.stop_a(budget).await.unwrap_err();
    assert_eq!(err.error_type, "UpstreamUnavailable");
    assert!(
        started.elapsed() < budget,
        "replied after the deadline: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn sagemaker_unreachable_is_upstream_unavailable() {
    // A port that was just free: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = FakeSageMaker {
        endpoint: format!("http://127.0.0.1:{port}"),
        requests: Arc::default(),
    };
    let err = server.stop_a(Duration::from_secs(10)).await.unwrap_err();
    assert_eq!(err.error_type, "UpstreamUnavailable");
}

/// Credentials that cannot be loaded, as when none are configured anywhere.
#[derive(Debug)]
struct NoCredentials;

impl aws_credential_types::provider::ProvideCredentials for NoCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::ready(Err(
            aws_credential_types::provider::error::CredentialsError::not_loaded(
                "no providers in chain provided credentials",
            ),
        ))
    }
}

#[tokio::test]
async fn missing_credentials_are_a_configuration_error_not_an_outage() {
    let server = fake_sagemaker(Arc::new(|_, _| (200, "{}".into(), Duration::ZERO))).await;
    let sdk_config = aws_config::defaults(BehaviorVersion::latest())
        .region("us-east-1")
        .credentials_provider(NoCredentials)
        .endpoint_url(&server.endpoint)
        .load()
        .await;
    let home = setup::home_scope(&sdk_config, None).unwrap();
    let stopper = Stopper::new(
        setup::client(&sdk_config, None),
        Config::default(),
        home,
        None,
    );
    let err = tokio::time::timeout(
        Duration::from_secs(15),
        stopper.handle(event(
            json!({"PipelineExecutionArn": A}),
            Duration::from_secs(10),
        )),
    )
    .await
    .expect("a reply before the deadline")
    .unwrap_err();
    assert_eq!(
        err.error_type, "ConfigurationError",
        "{}",
        err.error_message
    );
    assert!(
        err.error_message.contains("credentials"),
        "{}",
        err.error_message
    );
    assert!(
        server.requests().is_empty(),
        "nothing reached SageMaker unsigned"
    );
}

#[tokio::test]
async fn an_endpoint_that_is_not_a_url_is_a_configuration_error() {
    for bad in ["127.0.0.1:9", "localhost", "ftp://127.0.0.1:9"] {
        let sdk_config = aws_config::defaults(BehaviorVersion::latest())
            .region("us-east-1")
            .endpoint_url(bad)
            .load()
            .await;
        let err = setup::check_endpoint(&sdk_config, None).unwrap_err();
        assert_eq!(err.kind, stopper_core::ErrorKind::Configuration, "{bad}");
        assert!(err.message.contains(bad), "{}", err.message);
        let err = setup::check_endpoint(&sdk_config, Some(bad)).unwrap_err();
        assert!(err.message.contains("--endpoint-url"), "{}", err.message);
    }
    let good = aws_config::defaults(BehaviorVersion::latest())
        .region("us-east-1")
        .endpoint_url("http://127.0.0.1:9")
        .load()
        .await;
    assert!(setup::check_endpoint(&good, None).is_ok());
}
