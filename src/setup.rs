//! The AWS configuration, read once at start: the SageMaker client from the
//! standard configuration chain, the scope targets must be in, and the
//! problems that make the configuration unusable (no region, an endpoint
//! that is not a URL, no credentials), told as `ConfigurationError`.

use std::time::Duration;

use aws_sdk_sagemaker::error::SdkError;
use aws_sdk_sagemaker::Client;
use stopper_core::arn::Scope;
use stopper_core::{ErrorKind, StopError};

/// SDK timeouts: a connection that cannot be made in 3 s will not be made in
/// 30; an attempt that takes 10 s is retried (with the same token) rather than
/// waited on. The handler also bounds every call by the invocation's deadline.
pub fn timeout_config() -> aws_sdk_sagemaker::config::timeout::TimeoutConfig {
    aws_sdk_sagemaker::config::timeout::TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .operation_attempt_timeout(Duration::from_secs(10))
        .build()
}

/// Builds the client from the standard AWS configuration chain
/// (`AWS_REGION`, credentials, profiles, `AWS_ENDPOINT_URL_SAGEMAKER`,
/// `AWS_MAX_ATTEMPTS`, `AWS_RETRY_MODE`), with our timeouts on top.
/// `endpoint`: the CLI's `--endpoint-url`, which (as in the AWS CLI) applies
/// to SageMaker only.
pub fn client(sdk_config: &aws_config::SdkConfig, endpoint: Option<&str>) -> Client {
    let mut config =
        aws_sdk_sagemaker::config::Builder::from(sdk_config).timeout_config(timeout_config());
    if let Some(url) = endpoint {
        config = config.endpoint_url(url);
    }
    Client::from_conf(config.build())
}

/// The function's AWS configuration loader: the standard chain, except that
/// when the environment holds credentials (Lambda puts the role's there),
/// the credentials chain is not built at init. Its first link reads the
/// environment and answers whenever both keys are set, so the profile, web
/// identity, container and instance links it would build (one of them an STS
/// client) could never be asked. Measured in docs/performance.md ("Decisions").
pub fn function_loader(
    loader: aws_config::ConfigLoader,
    env: impl Fn(&str) -> Option<String>,
) -> aws_config::ConfigLoader {
    let set = |name: &str| env(name).is_some_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY") {
        loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        )
    } else {
        loader
    }
}

/// The scope of the configured region: targets must be in its partition and
/// region (and `account`, when known). No region is a configuration error.
pub fn home_scope(
    sdk_config: &aws_config::SdkConfig,
    account: Option<&str>,
) -> Result<Scope, StopError> {
    let region = sdk_config.region().map(|r| r.as_ref().to_owned());
    let region = region.filter(|r| !r.is_empty()).ok_or_else(|| {
        StopError::new(
            ErrorKind::Configuration,
            "no AWS region is configured: set AWS_REGION (or --region, or a profile's region)",
        )
    })?;
    Scope::for_region(&region, account).ok_or_else(|| {
        StopError::new(
            ErrorKind::Configuration,
            format!("the configured region {region:?} is not a region name"),
        )
    })
}

/// The endpoint override in force, if any, resolved as the SDK resolves it
/// when `client` builds SageMaker's configuration: `--endpoint-url`, else the
/// service's own setting (`AWS_ENDPOINT_URL_SAGEMAKER`, a profile's
/// `services` section), else the global one (`AWS_ENDPOINT_URL`, a profile's
/// `endpoint_url`).
fn endpoint_override(
    sdk_config: &aws_config::SdkConfig,
    explicit: Option<&str>,
) -> Option<(String, &'static str)> {
    if let Some(url) = explicit {
        return Some((url.to_owned(), "--endpoint-url"));
    }
    let global = || {
        sdk_config.endpoint_url().map(|url| {
            (
                url.to_owned(),
                "the configured endpoint (AWS_ENDPOINT_URL or a profile)",
            )
        })
    };
    // Set in code, the global endpoint wins, as in the SDK's own resolution.
    if sdk_config.get_origin("endpoint_url").is_client_config() {
        return global();
    }
    let key = aws_types::service_config::ServiceConfigKey::builder()
        .service_id("SageMaker")
        .env("AWS_ENDPOINT_URL")
        .profile("endpoint_url")
        .build()
        .ok()?;
    sdk_config
        .service_config()
        .and_then(|config| config.load_config(key))
        .map(|url| {
            (
                url,
                "the SageMaker endpoint (AWS_ENDPOINT_URL_SAGEMAKER or a profile's services section)",
            )
        })
        .or_else(global)
}

/// Refuses an endpoint override that is not an `http(s)://host` URL: the SDK
/// would fail every call with a dispatch error that reads like an outage.
pub fn check_endpoint(
    sdk_config: &aws_config::SdkConfig,
    explicit: Option<&str>,
) -> Result<(), StopError> {
    let Some((url, source)) = endpoint_override(sdk_config, explicit) else {
        return Ok(());
    };
    let usable = url
        .parse::<aws_lambda_events::http::Uri>()
        .ok()
        .is_some_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https")) && uri.authority().is_some()
        });
    if usable {
        Ok(())
    } else {
        Err(StopError::new(
            ErrorKind::Configuration,
            format!(
                "{source} {} is not a usable endpoint: give a URL such as https://api.sagemaker.us-east-1.amazonaws.com \
                 (with http:// or https://)",
                stopper_core::arn::quote(&url)
            ),
        ))
    }
}

/// A failure that is the configuration's, not SageMaker's: no credentials
/// could be loaded. Retrying will not help, and the operator must be told
/// what is missing rather than that SageMaker is unreachable.
pub fn configuration_problem<E, R>(error: &SdkError<E, R>) -> Option<StopError>
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_credential_types::provider::error::CredentialsError;
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(credentials) = e.downcast_ref::<CredentialsError>() {
            let why = match credentials {
                CredentialsError::CredentialsNotLoaded(_) => {
                    "no AWS credentials were found (environment, profile, SSO, container or instance role)"
                }
                CredentialsError::ProviderTimedOut(_) => "loading AWS credentials timed out",
                CredentialsError::InvalidConfiguration(_) => "the AWS credentials configuration is invalid",
                CredentialsError::ProviderError(_) => "the AWS credentials provider failed",
                _ => "AWS credentials could not be loaded",
            };
            return Some(StopError::new(
                ErrorKind::Configuration,
                format!(
                    "{why}: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role"
                ),
            ));
        }
        source = e.source();
    }
    None
}

/// A failed call in a few words for a log line or an error message: a
/// configuration problem, the service's error code (never its free text,
/// which is not ours to repeat), or the kind of transport failure.
pub fn failure<E, R>(error: &SdkError<E, R>) -> String
where
    E: aws_sdk_sagemaker::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    if let Some(problem) = configuration_problem(error) {
        return problem.message;
    }
    match error {
        SdkError::ServiceError(e) => e.err().code().unwrap_or("unknown error").to_owned(),
        SdkError::TimeoutError(_) => "timed out".to_owned(),
        SdkError::DispatchFailure(_) if crate::sagemaker::certificate_refused(error) => {
            "its certificate is not trusted: set AWS_CA_BUNDLE to its CA's PEM file".to_owned()
        }
        SdkError::DispatchFailure(_) => "could not connect".to_owned(),
        SdkError::ConstructionFailure(_) => "the request could not be built".to_owned(),
        _ => "no usable response".to_owned(),
    }
}
