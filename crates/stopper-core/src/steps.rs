//! The steps that hold a stop, as SageMaker lists them.

use std::fmt;

/// A running step that keeps a stopping execution from ending: the facts
/// `ListPipelineExecutionSteps` gives about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockingStep {
    pub name: String,
    pub kind: StepKind,
    /// What `Force` answers a Callback step with. Never in a reply or a log.
    pub callback_token: Option<CallbackToken>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// Waits for `SendPipelineExecutionStepSuccess/Failure` from the consumer
    /// of this queue (SageMaker has sent it a `"Status": "Stopping"` message).
    Callback { queue_url: Option<String> },
    /// Waits for this function to return (then `Stopped`) or time out (`Failed`).
    Lambda { function_arn: Option<String> },
}

impl StepKind {
    /// `Callback` or `Lambda`, as SageMaker names the step type.
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Callback { .. } => "Callback",
            StepKind::Lambda { .. } => "Lambda",
        }
    }
}

/// A step as `ListPipelineExecutionSteps` lists it: the facts from which
/// `decide::blocking_step` tells whether it blocks a stop.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListedStep {
    pub name: Option<String>,
    /// `StepStatus`, as SageMaker spells it.
    pub status: Option<String>,
    pub callback: Option<Callback>,
    pub lambda: Option<Lambda>,
}

/// A Callback step's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Callback {
    pub queue_url: Option<String>,
    pub token: Option<CallbackToken>,
}

/// A Lambda step's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lambda {
    pub function_arn: Option<String>,
}

/// A Callback step's token: a credential for the step (whoever has it can
/// succeed or fail the step), so it has no `Display` and its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct CallbackToken(String);

impl CallbackToken {
    pub fn new(token: impl Into<String>) -> CallbackToken {
        CallbackToken(token.into())
    }

    /// The token itself, for the one call that sends it back to SageMaker.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for CallbackToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CallbackToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_token_never_shows_in_debug_output() {
        let step = BlockingStep {
            name: "approve".into(),
            kind: StepKind::Callback { queue_url: None },
            callback_token: Some(CallbackToken::new("Xk3vQ9aL2m")),
        };
        let debug = format!("{step:?} {:#?}", step);
        assert!(!debug.contains("Xk3vQ9aL2m"), "{debug}");
        assert!(debug.contains("approve") && debug.contains("redacted"));
        assert_eq!(
            step.callback_token.as_ref().map(CallbackToken::expose),
            Some("Xk3vQ9aL2m")
        );
    }
}
