//! The Rust tests of the function's shell, in one test binary: each test
//! binary links the AWS SDK, which takes longer than compiling the tests.
//! `handler`: the handler against a mocked SDK (aws-smithy-mocks); `wire`:
//! against a fake SageMaker over HTTP (retries, timeouts, error shapes);
//! `progress`: what the engine tells the CLI's progress display.

mod handler;
mod progress;
mod wire;

use aws_sdk_sagemaker::operation::describe_pipeline_execution::DescribePipelineExecutionOutput;
use aws_sdk_sagemaker::types::{PipelineExecutionStatus, PipelineExecutionSummary};
use aws_sdk_sagemaker::Client;
use aws_smithy_mocks::{mock, Rule};

const A: &str =
    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/k7xvw1b9q2hj";
const B: &str =
    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/p3m8zq0d5c1r";

/// `DescribePipelineExecution` answers `status`.
fn describe(status: PipelineExecutionStatus) -> Rule {
    mock!(Client::describe_pipeline_execution).then_output(move || {
        DescribePipelineExecutionOutput::builder()
            .pipeline_execution_status(status.clone())
            .build()
    })
}

/// One execution as `ListPipelineExecutions` lists it.
fn summary(arn: &str, status: PipelineExecutionStatus) -> PipelineExecutionSummary {
    PipelineExecutionSummary::builder()
        .pipeline_execution_arn(arn)
        .pipeline_execution_status(status)
        .build()
}
