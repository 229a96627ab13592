//! Init: inside Lambda, configuration, SageMaker client and runtime; anywhere
//! else, the command-line tool. Everything else is in the library, where it
//! is tested.

use std::panic::AssertUnwindSafe;
use std::process::ExitCode;

use futures_util::FutureExt as _;
use lambda_runtime::Diagnostic;

use aws_config::BehaviorVersion;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use sagemaker_pipeline_stopper::handler::Stopper;
use sagemaker_pipeline_stopper::notify::Notifier;
use sagemaker_pipeline_stopper::trust;
use sagemaker_pipeline_stopper::{cli, logging, setup};
use serde_json::value::RawValue;
use stopper_core::config::{Config, Operations};

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
    logging::init_function();
    logging::quiet_panics();
    let env = |name: &str| std::env::var(name).ok();
    let config = Config::from_env(env)?;
    let operations = Operations::from_env(env)?;
    let loader = trust::configure(
        aws_config::defaults(BehaviorVersion::latest()),
        env,
        trust::read_bundle,
    )?;
    let sdk_config = setup::function_loader(loader, env).load().await;
    let client = setup::client(&sdk_config, None);
    // Lambda always sets AWS_REGION; without one nothing could be called, and
    // no scope could be known: fail the init rather than serve unscoped.
    let home = setup::home_scope(&sdk_config, None)?;
    let unusable = setup::check_endpoint(&sdk_config, None).err();
    let notifier = Notifier::new(&sdk_config, &operations);
    let stopper =
        Stopper::new(client, config, home, unusable).with_operations(operations, notifier);
    let stopper = &stopper;
    // The event is taken as raw JSON text: a Value tree of it would take many
    // times its size (measured in docs/performance.md, "The largest events").
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            // A panic must not carry the event into the logs or the error:
            // the runtime would report the panic's message, which can quote
            // the event (an HTTP request's headers, cookies, body).
            AssertUnwindSafe(stopper.handle(event))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| Err(internal_error()))
        },
    ))
    .await
}

/// The reply to an event whose handling panicked; `logging::quiet_panics`
/// has logged where.
fn internal_error() -> Diagnostic {
    Diagnostic {
        error_type: "InternalError".to_owned(),
        error_message: "the function failed unexpectedly on this event; see its log for where"
            .to_owned(),
    }
}
