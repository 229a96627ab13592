//! The Rust tests of the function's shell, in one test binary: each test
//! binary links the AWS SDK, which takes longer than compiling the tests.
//! `handler`: the handler against a mocked SDK (aws-smithy-mocks); `wire`:
//! against a fake SageMaker over HTTP (retries, timeouts, error shapes);
//! `progress`: what the engine tells the CLI's progress display.

mod handler;
mod progress;
mod wire;
