//! Init: inside Lambda, configuration, SageMaker client and runtime; anywhere
//! else, the command-line tool. Everything else is in the library, where it
//! is tested.

use std::process::ExitCode;

use aws_config::BehaviorVersion;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sagemaker_pipeline_stopper::handler::Stopper;
use sagemaker_pipeline_stopper::{cli, sagemaker};
use serde_json::Value;
use stopper_core::config::Config;

// One thread: an invocation is a handful of concurrent HTTP calls, and a
// single-threaded runtime starts faster and uses less memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    // Lambda sets AWS_LAMBDA_RUNTIME_API for the function's process.
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_none() {
        return cli::main(std::env::args_os().skip(1).collect()).await;
    }
    match function().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn function() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env(|name| std::env::var(name).ok())?;
    let sdk_config = aws_config::load_defaults(BehaviorVersion::latest()).await;
    let stopper = Stopper::new(sagemaker::client(&sdk_config), config);
    let stopper = &stopper;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        stopper.handle(event).await
    }))
    .await
}
