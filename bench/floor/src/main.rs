//! The floor bench/bench.py measures the function against: the least a Rust
//! function on `lambda_runtime` can do. It has the function's runtime flavour,
//! event type and `run`, and replies with the event it was given. It has no
//! logging set-up, configuration, AWS SDK or TLS: whatever the function's
//! init costs beyond this one's is theirs.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::value::RawValue;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Box<RawValue>>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
