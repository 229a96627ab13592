//! sagemaker-pipeline-stopper: an AWS Lambda function that stops Amazon
//! SageMaker Pipelines executions named by schedules, CloudWatch alarms and
//! HTTP requests. `ARCHITECTURE.md` is the map.
//!
//! The path of an event: [`handler`] (the Lambda adapter) →
//! [`stopper_core::plan::prepare`] (decode and plan, or refuse before any
//! call) → [`engine`] (the calls, through [`sagemaker`], each answer judged
//! by [`stopper_core::decide`]) → [`stopper_core::reply::shape`] (the reply
//! for the trigger). [`cli`] is the same path as a command-line tool.

pub mod cli;
pub mod engine;
pub mod handler;
pub mod logging;
pub mod note;
pub mod notify;
pub mod sagemaker;
pub mod setup;
pub mod trust;
