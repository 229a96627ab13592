//! Turning what an event names into validated targets, before any call.
//! Everything refused here never reaches SageMaker.

use crate::arn::{check_execution_arn, parse_pipeline, Scope};
use crate::config::Config;
use crate::error::StopError;
use crate::guard::GuardPolicy;
use crate::options::Options;
use crate::report::Answer;
use crate::token;
use crate::trigger::{decode, Action, Cause, FrontEnd, Selection, Trigger};

/// One execution to stop, with the token its stop call carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub arn: String,
    pub token: String,
}

/// The validated plan for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub targets: Targets,
    /// The seed of derived tokens, for the executions a pipeline sweep finds.
    pub identity: String,
    /// Dry run, wait, force, age filter.
    pub options: Options,
    /// Who asked (HTTP): for the stop log lines and `Force`'s default reason.
    pub caller: Option<String>,
}

/// What a plan acts on: the targets a request names, or a guard run, which
/// finds its own; never both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    Named {
        /// Executions named explicitly, in the order named, without repeats.
        executions: Vec<Target>,
        /// Pipelines (names) whose `Executing` executions are to be listed and stopped.
        pipelines: Vec<String>,
    },
    /// A guard run: the executions over their pipeline's limit are the targets.
    Guard(Box<GuardPolicy>),
}

impl Plan {
    /// The executions named explicitly (none in a guard run).
    pub fn executions(&self) -> &[Target] {
        match &self.targets {
            Targets::Named { executions, .. } => executions,
            Targets::Guard(_) => &[],
        }
    }

    /// The pipelines to sweep (none in a guard run).
    pub fn pipelines(&self) -> &[String] {
        match &self.targets {
            Targets::Named { pipelines, .. } => pipelines,
            Targets::Guard(_) => &[],
        }
    }

    /// A guard run's policy.
    pub fn guard(&self) -> Option<&GuardPolicy> {
        match &self.targets {
            Targets::Guard(policy) => Some(policy),
            Targets::Named { .. } => None,
        }
    }

    /// The failure reason forced Callback steps get: the request's, or the
    /// default naming the caller.
    pub fn failure_reason(&self) -> std::borrow::Cow<'_, str> {
        self.options.failure_reason(self.caller.as_deref())
    }

    /// A target found by a pipeline sweep: its token derives from the same identity.
    pub fn swept_target(&self, arn: String) -> Target {
        Target {
            token: token::derive(&self.identity, &arn),
            arn,
        }
    }

    /// The request named exactly one execution: its reply takes the single form.
    pub fn is_single(&self) -> bool {
        self.executions().len() == 1 && self.pipelines().is_empty()
    }

    /// The idempotency token of `SendPipelineExecutionStepFailure` for one
    /// forced Callback step: the same event forces the same step once, and
    /// so does every guard run (overlapping runs, a redelivery, the CLI's
    /// `--guard`), as the guard's stop tokens derive from the execution alone.
    pub fn force_token(&self, execution_arn: &str, callback_token: &str) -> String {
        let identity = match self.targets {
            Targets::Guard(_) => crate::guard::GUARD_IDENTITY,
            Targets::Named { .. } => &self.identity,
        };
        token::derive(identity, &format!("{execution_arn}#force#{callback_token}"))
    }
}

/// An event, decoded and planned: all that is known before any call.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub trigger: Trigger,
    /// Who asked (HTTP), for the log lines of an event that is not acted on.
    pub caller: Option<String>,
    /// For API Gateway: when (ms since the epoch) its reply must be sent.
    pub front_end: Option<FrontEnd>,
    /// What set the event off, when it says (an alarm, a scheduled rule).
    pub cause: Option<Cause>,
    pub next: Next,
}

/// What is left to do for a prepared event.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Nothing: the event is answered already (ignored, or refused).
    Answer(Answer),
    /// Stop these targets.
    Stop(Plan),
}

/// The seed of derived tokens for an event whose trigger has no identity
/// of its own (a direct invocation): the Lambda request id, which Lambda
/// keeps across its own retries of an asynchronous invocation.
pub fn fallback_identity(request_id: &str) -> String {
    format!("lambda:{request_id}")
}

/// Decodes an event and plans its targets in `scope`. `request_id` seeds
/// the tokens when the trigger has no identity (see [`fallback_identity`]).
pub fn prepare(event: &str, config: &Config, scope: &Scope, request_id: &str) -> Prepared {
    let decoded = decode(event);
    let next = match decoded.action {
        Err(error) => Next::Answer(Answer::Refused(error)),
        Ok(Action::Ignore(reason)) => Next::Answer(Answer::Ignored(reason)),
        Ok(Action::Stop(selection)) => {
            let identity = decoded
                .identity
                .unwrap_or_else(|| fallback_identity(request_id));
            match plan(&selection, config, scope, &identity) {
                Ok(plan) => Next::Stop(Plan {
                    caller: decoded.caller.clone(),
                    ..plan
                }),
                Err(error) => Next::Answer(Answer::Refused(error)),
            }
        }
    };
    Prepared {
        trigger: decoded.trigger,
        caller: decoded.caller,
        front_end: decoded.front_end,
        cause: decoded.cause,
        next,
    }
}

/// Validates a selection against the configuration and the function's scope.
/// `identity` is the trigger's identity (or the Lambda request id).
pub fn plan(
    selection: &Selection,
    config: &Config,
    scope: &Scope,
    identity: &str,
) -> Result<Plan, StopError> {
    if selection.guard {
        return plan_guard(selection, config, scope, identity);
    }
    let mut pipelines_named = selection.pipelines.clone();
    if selection.is_empty() {
        match (&config.default_pipeline, selection.default_allowed) {
            (Some(default), true) => pipelines_named.push(default.clone()),
            (None, true) => {
                return Err(StopError::validation(
                    "the event names no target: give PipelineExecutionArn, PipelineExecutionArns or \
                     PipelineName, or set DEFAULT_PIPELINE_NAME",
                ))
            }
            (_, false) => {
                return Err(StopError::validation(
                    "the request names no target: give PipelineExecutionArn, PipelineExecutionArns or PipelineName",
                ))
            }
        }
    }

    if let Some(given) = &selection.token {
        if !token::is_valid(given) {
            return Err(StopError::validation(format!(
                "ClientRequestToken must be {} to {} characters, got {}",
                token::MIN_TOKEN_LEN,
                token::MAX_TOKEN_LEN,
                given.chars().count()
            )));
        }
        if token::is_reserved(given) {
            return Err(StopError::validation(format!(
                "ClientRequestToken may not start with {}: the function derives its own tokens there",
                token::DERIVED_PREFIX
            )));
        }
        if selection.execution_arns.len() != 1 || !pipelines_named.is_empty() {
            return Err(StopError::validation(
                "ClientRequestToken goes with exactly one PipelineExecutionArn; for several targets the \
                 function derives one token per execution",
            ));
        }
    }

    let mut executions: Vec<Target> = Vec::new();
    for arn in &selection.execution_arns {
        let parsed = check_execution_arn(arn, scope)?;
        config.allowed.check(parsed.pipeline)?;
        if executions.iter().any(|t| &t.arn == arn) {
            continue;
        }
        let token = selection
            .token
            .clone()
            .unwrap_or_else(|| token::derive(identity, arn));
        executions.push(Target {
            arn: arn.clone(),
            token,
        });
    }

    let mut pipelines: Vec<String> = Vec::new();
    for named in &pipelines_named {
        let name = parse_pipeline(named, scope)?;
        config.allowed.check(&name)?;
        if !pipelines.iter().any(|p| p.eq_ignore_ascii_case(&name)) {
            pipelines.push(name);
        }
    }

    if selection.options.older_than_minutes.is_some() && pipelines.is_empty() {
        return Err(StopError::validation(
            "OlderThanMinutes filters a pipeline sweep: give PipelineName (explicitly named executions \
             are stopped as named)",
        ));
    }

    Ok(Plan {
        targets: Targets::Named {
            executions,
            pipelines,
        },
        identity: identity.to_owned(),
        options: selection.options.clone(),
        caller: None,
    })
}

/// A guard run finds its own targets: it names none, and takes no token
/// (each execution's token derives from the execution, `guard::GUARD_IDENTITY`).
fn plan_guard(
    selection: &Selection,
    config: &Config,
    scope: &Scope,
    identity: &str,
) -> Result<Plan, StopError> {
    let named = [
        (
            !selection.execution_arns.is_empty(),
            "PipelineExecutionArn(s)",
        ),
        (!selection.pipelines.is_empty(), "PipelineName"),
        (selection.token.is_some(), "ClientRequestToken"),
        (
            selection.options.older_than_minutes.is_some(),
            "OlderThanMinutes",
        ),
    ];
    if let Some((_, field)) = named.iter().find(|(given, _)| *given) {
        return Err(StopError::validation(format!(
            "Guard finds its own targets (the executions over their pipeline's limit): it does not \
             combine with {field}"
        )));
    }
    Ok(Plan {
        targets: Targets::Guard(Box::new(GuardPolicy {
            tag_key: config.max_runtime_tag.clone(),
            default: config.default_max_runtime,
            stopping_grace: config.stopping_grace,
            allowed: config.allowed.clone(),
            scope: scope.clone(),
        })),
        identity: identity.to_owned(),
        options: selection.options.clone(),
        caller: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::allow::AllowList;
    use crate::ErrorKind;

    const A: &str =
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/aaaa";
    const B: &str =
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/bbbb";

    fn scope() -> Scope {
        Scope::from_function_arn("arn:aws:lambda:us-east-1:123456789012:function:stopper").unwrap()
    }

    fn arns(list: &[&str]) -> Selection {
        Selection {
            execution_arns: list.iter().map(|s| s.to_string()).collect(),
            default_allowed: true,
            ..Selection::default()
        }
    }

    #[test]
    fn explicit_arns_get_distinct_derived_tokens_and_repeats_collapse() {
        let p = plan(
            &arns(&[A, B, A]),
            &Config::default(),
            &scope(),
            "eventbridge:1",
        )
        .unwrap();
        assert_eq!(p.executions().len(), 2);
        assert_eq!(p.executions()[0].token, token::derive("eventbridge:1", A));
        assert_ne!(p.executions()[0].token, p.executions()[1].token);
        assert!(!p.is_single());
        assert!(plan(&arns(&[A]), &Config::default(), &scope(), "x")
            .unwrap()
            .is_single());
    }

    #[test]
    fn a_caller_token_is_used_as_given_but_only_for_one_arn() {
        let token = "c".repeat(40);
        let mut s = arns(&[A]);
        s.token = Some(token.clone());
        assert_eq!(
            plan(&s, &Config::default(), &scope(), "x")
                .unwrap()
                .executions()[0]
                .token,
            token
        );
        s.execution_arns.push(B.into());
        assert_eq!(
            plan(&s, &Config::default(), &scope(), "x")
                .unwrap_err()
                .kind,
            ErrorKind::Validation
        );
        let mut short = arns(&[A]);
        short.token = Some("too-short".into());
        assert!(plan(&short, &Config::default(), &scope(), "x")
            .unwrap_err()
            .message
            .contains("32 to 128"));
        // The derived tokens' space is the function's own.
        let mut reserved = arns(&[A]);
        reserved.token = Some(token::derive(crate::guard::GUARD_IDENTITY, B));
        let err = plan(&reserved, &Config::default(), &scope(), "x").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation);
        assert!(err.message.contains("stopper-"), "{}", err.message);
    }

    #[test]
    fn a_guard_runs_force_token_is_the_same_whatever_the_event() {
        let guard = Selection {
            guard: true,
            ..Selection::default()
        };
        let one = plan(&guard, &Config::default(), &scope(), "event-1").unwrap();
        let other = plan(&guard, &Config::default(), &scope(), "event-2").unwrap();
        assert_eq!(one.force_token(A, "cb-1"), other.force_token(A, "cb-1"));
        assert_eq!(
            one.force_token(A, "cb-1"),
            token::derive(crate::guard::GUARD_IDENTITY, &format!("{A}#force#cb-1"))
        );
        let named = plan(&arns(&[A]), &Config::default(), &scope(), "event-1").unwrap();
        assert_ne!(named.force_token(A, "cb-1"), one.force_token(A, "cb-1"));
    }

    #[test]
    fn the_default_pipeline_applies_only_where_allowed() {
        let config = Config {
            default_pipeline: Some("nightly-training".into()),
            ..Config::default()
        };
        let scheduled = Selection {
            default_allowed: true,
            ..Selection::default()
        };
        assert_eq!(
            plan(&scheduled, &config, &scope(), "x")
                .unwrap()
                .pipelines(),
            vec!["nightly-training"]
        );
        let http = Selection::default();
        assert_eq!(
            plan(&http, &config, &scope(), "x").unwrap_err().kind,
            ErrorKind::Validation
        );
        assert_eq!(
            plan(&scheduled, &Config::default(), &scope(), "x")
                .unwrap_err()
                .kind,
            ErrorKind::Validation
        );
    }

    #[test]
    fn the_allow_list_refuses_before_any_call() {
        let config = Config {
            allowed: AllowList::parse("exp-*").unwrap(),
            ..Config::default()
        };
        assert_eq!(
            plan(&arns(&[A]), &config, &scope(), "x").unwrap_err().kind,
            ErrorKind::Forbidden
        );
        let by_name = Selection {
            pipelines: vec!["nightly-training".into()],
            ..Selection::default()
        };
        assert_eq!(
            plan(&by_name, &config, &scope(), "x").unwrap_err().kind,
            ErrorKind::Forbidden
        );
        let allowed = Selection {
            pipelines: vec!["EXP-7".into()],
            ..Selection::default()
        };
        assert_eq!(
            plan(&allowed, &config, &scope(), "x").unwrap().pipelines(),
            vec!["EXP-7"]
        );
    }

    #[test]
    fn one_bad_arn_refuses_the_whole_request() {
        let err = plan(&arns(&[A, "arn:nope"]), &Config::default(), &scope(), "x").unwrap_err();
        assert_eq!(err.kind, ErrorKind::Validation);
        let other_region = A.replace("us-east-1", "eu-west-1");
        let err = plan(
            &arns(&[A, &other_region]),
            &Config::default(),
            &scope(),
            "x",
        )
        .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Forbidden);
    }

    #[test]
    fn older_than_minutes_needs_a_sweep_and_force_tokens_are_per_step() {
        let mut s = arns(&[A]);
        s.options.older_than_minutes = Some(60);
        let err = plan(&s, &Config::default(), &scope(), "x").unwrap_err();
        assert!(err.message.contains("PipelineName"), "{}", err.message);
        let sweep = Selection {
            pipelines: vec!["nightly-training".into()],
            options: s.options.clone(),
            ..Selection::default()
        };
        let p = plan(&sweep, &Config::default(), &scope(), "x").unwrap();
        assert_eq!(p.options.older_than_minutes, Some(60));
        let default = Selection {
            default_allowed: true,
            options: s.options.clone(),
            ..Selection::default()
        };
        let config = Config {
            default_pipeline: Some("nightly-training".into()),
            ..Config::default()
        };
        assert!(plan(&default, &config, &scope(), "x").is_ok());
        let t = p.force_token(A, "cb-1");
        assert!(token::is_valid(&t));
        assert_eq!(t, p.force_token(A, "cb-1"));
        assert_ne!(t, p.force_token(A, "cb-2"));
        assert_ne!(t, p.force_token(B, "cb-1"));
        assert_ne!(t, token::derive("x", A));
    }

    #[test]
    fn swept_targets_derive_from_the_same_identity() {
        let p = plan(
            &Selection {
                pipelines: vec![
                    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training".into(),
                ],
                ..Selection::default()
            },
            &Config::default(),
            &scope(),
            "sns:42",
        )
        .unwrap();
        assert_eq!(p.pipelines(), vec!["nightly-training"]);
        assert_eq!(p.swept_target(A.into()).token, token::derive("sns:42", A));
    }

    const CUSTOM: &str = include_str!("../../../events/eventbridge-custom.json");

    #[test]
    fn a_trigger_without_identity_seeds_tokens_with_the_request_id_and_one_with_it_does_not() {
        let direct = prepare(
            &format!("{{\"PipelineExecutionArn\": \"{A}\"}}"),
            &Config::default(),
            &scope(),
            "req-1",
        );
        assert_eq!(direct.trigger, Trigger::Direct);
        let Next::Stop(p) = direct.next else {
            panic!("a valid direct request is planned")
        };
        assert_eq!(p.identity, "lambda:req-1");
        assert_eq!(p.executions()[0].token, token::derive("lambda:req-1", A));

        // The same EventBridge event, delivered twice under two request ids,
        // gets the same tokens: they derive from the event's id.
        let plans: Vec<Plan> = ["req-1", "req-2"]
            .into_iter()
            .map(|request_id| {
                match prepare(CUSTOM, &Config::default(), &scope(), request_id).next {
                    Next::Stop(plan) => plan,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        assert_eq!(
            plans[0].identity,
            "eventbridge:6a7e8feb-b491-4cf7-a9f1-bf3703467718"
        );
        assert_eq!(plans[0], plans[1]);
        assert_eq!(fallback_identity("x"), "lambda:x");
    }

    #[test]
    fn an_event_is_refused_or_ignored_before_any_plan_and_the_caller_travels_with_the_plan() {
        let refused = prepare(
            "{\"PipelineName\": \"\"}",
            &Config::default(),
            &scope(),
            "r",
        );
        assert!(
            matches!(&refused.next, Next::Answer(Answer::Refused(e)) if e.kind == ErrorKind::Validation),
            "{refused:?}"
        );
        let out_of_scope = prepare(
            &format!(
                "{{\"PipelineExecutionArn\": \"{}\"}}",
                A.replace("123456789012", "210987654321")
            ),
            &Config::default(),
            &scope(),
            "r",
        );
        assert!(
            matches!(&out_of_scope.next, Next::Answer(Answer::Refused(e)) if e.kind == ErrorKind::Forbidden),
            "{out_of_scope:?}"
        );
        let alarm_ok = include_str!("../../../events/alarm-eventbridge-ok.json");
        let ignored = prepare(alarm_ok, &Config::default(), &scope(), "r");
        assert!(
            matches!(ignored.next, Next::Answer(Answer::Ignored(_))),
            "{ignored:?}"
        );

        let http = include_str!("../../../events/http-api.json");
        let prepared = prepare(http, &Config::default(), &scope(), "r");
        let Next::Stop(plan) = &prepared.next else {
            panic!("{prepared:?}")
        };
        assert!(prepared.caller.is_some());
        assert_eq!(plan.caller, prepared.caller);
        assert!(prepared.front_end.is_some());
    }
}
