//! The pure core of sagemaker-pipeline-stopper.
//!
//! Everything that decides *what* to stop lives here, as plain functions over
//! data: decoding a Lambda event into a trigger ([`trigger`]), validating and
//! planning the targets ([`plan`], [`arn`], [`config`]), deriving idempotency
//! tokens ([`token`]) and shaping replies ([`reply`]). It has no AWS SDK and no
//! I/O, so it compiles in seconds, is cheap to fuzz and is tested with the
//! sample payloads in `events/`.

pub mod allow;
pub mod arn;
pub mod chat;
pub mod config;
pub mod decide;
pub mod error;
pub mod guard;
pub mod limit;
pub mod metrics;
pub mod note;
pub mod notification;
pub mod options;
pub mod plan;
pub mod reply;
pub mod report;
pub mod request;
pub mod status;
pub mod steps;
pub mod token;
pub mod trigger;
pub mod upstream;

pub use error::{ErrorKind, StopError};
