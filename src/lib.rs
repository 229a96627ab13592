//! sagemaker-pipeline-stopper: an AWS Lambda function that stops Amazon
//! SageMaker Pipelines executions named by schedules, CloudWatch alarms and
//! HTTP requests.
//!
//! The path of an event: [`stopper_core::trigger::decode`] (which trigger, what
//! it names) → [`stopper_core::plan::plan`] (validated targets and tokens, or a
//! refusal before any call) → [`sagemaker`] (the calls) →
//! [`stopper_core::reply`] (the reply). [`handler`] strings them together; [`cli`]
//! is the same path as a command-line tool.

pub mod cli;
pub mod handler;
pub mod logging;
pub mod sagemaker;
