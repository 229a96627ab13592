//! `STOPPER_TIMINGS=1`: where a cold start's time goes, for the benchmark's
//! breakdown (bench/bench.py, docs/performance.md). Off unless set: then
//! nothing here is built or registered, and the path is the one measured
//! without it.
//!
//! Each measure is one JSON line on stderr, `{"timings": what, ...}`, in
//! microseconds:
//! - `init`: the parts of `main`'s init, each since the one before;
//! - `credentials`: one resolution by the credentials chain;
//! - `connector`: one build of an HTTPS connector (its TLS configuration and
//!   root store), by `trust`'s HTTP client;
//! - one line per SageMaker operation (`StopPipelineExecution`, ...): its
//!   attempt's phases, from the SDK's interceptor hooks.

use std::sync::OnceLock;
use std::time::Instant;

use aws_credential_types::provider::{future, ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeDeserializationInterceptorContextRef,
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

/// Whether `STOPPER_TIMINGS=1`, read once.
pub fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("STOPPER_TIMINGS").is_ok_and(|v| v == "1"))
}

fn emit(what: &str, fields: &[(&str, u128)]) {
    let fields: String = fields
        .iter()
        .map(|(name, us)| format!(",\"{name}_us\":{us}"))
        .collect();
    eprintln!("{{\"timings\":\"{what}\"{fields}}}");
}

fn micros(from: Instant, to: Instant) -> u128 {
    to.saturating_duration_since(from).as_micros()
}

/// The parts of init, each timed from the previous mark.
pub struct InitMarks {
    last: Instant,
    parts: Vec<(&'static str, u128)>,
}

impl InitMarks {
    /// `None` unless timings are on.
    pub fn start() -> Option<Self> {
        enabled().then(|| InitMarks {
            last: Instant::now(),
            parts: Vec::new(),
        })
    }

    pub fn mark(marks: &mut Option<Self>, part: &'static str) {
        if let Some(marks) = marks {
            let now = Instant::now();
            marks.parts.push((part, micros(marks.last, now)));
            marks.last = now;
        }
    }

    pub fn emit(marks: Option<Self>) {
        if let Some(marks) = marks {
            emit("init", &marks.parts);
        }
    }
}

/// Times `f` as `what` when timings are on.
pub fn timed<T>(what: &str, f: impl FnOnce() -> T) -> T {
    if !enabled() {
        return f();
    }
    let start = Instant::now();
    let out = f();
    emit(what, &[("total", micros(start, Instant::now()))]);
    out
}

/// The credentials chain, timed at each resolution (the SDK caches what it
/// resolves, so a cold start resolves once).
#[derive(Debug)]
pub struct TimedCredentials(pub SharedCredentialsProvider);

impl ProvideCredentials for TimedCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(async move {
            let start = Instant::now();
            let credentials = self.0.provide_credentials().await;
            emit("credentials", &[("total", micros(start, Instant::now()))]);
            credentials
        })
    }
}

/// An operation's phases, from the SDK's orchestrator hooks, in order:
/// serialization; credentials and endpoint (identity resolution, then the
/// endpoint); signing; transmission (the connector on first use, connection,
/// TLS handshake, request, response head); reading and deserializing the
/// response. One attempt is reported: the last.
#[derive(Debug)]
pub struct Phases;

#[derive(Debug, Clone)]
struct Stamps {
    execution: Instant,
    attempt: Option<Instant>,
    signing: Option<Instant>,
    signed: Option<Instant>,
    transmit: Option<Instant>,
    transmitted: Option<Instant>,
    deserialized: Option<Instant>,
}

impl Storable for Stamps {
    type Storer = StoreReplace<Self>;
}

fn stamp(cfg: &mut ConfigBag, set: impl FnOnce(&mut Stamps, Instant)) {
    let now = Instant::now();
    if let Some(mut stamps) = cfg.load::<Stamps>().cloned() {
        set(&mut stamps, now);
        cfg.interceptor_state().store_put(stamps);
    }
}

impl Intercept for Phases {
    fn name(&self) -> &'static str {
        "Phases"
    }

    fn read_before_execution(
        &self,
        _: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Stamps {
            execution: Instant::now(),
            attempt: None,
            signing: None,
            signed: None,
            transmit: None,
            transmitted: None,
            deserialized: None,
        });
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        stamp(cfg, |s, now| s.attempt = Some(now));
        Ok(())
    }

    fn read_before_signing(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        stamp(cfg, |s, now| s.signing = Some(now));
        Ok(())
    }

    fn read_after_signing(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        stamp(cfg, |s, now| s.signed = Some(now));
        Ok(())
    }

    fn read_before_transmit(
        &self,
        _: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        stamp(cfg, |s, now| s.transmit = Some(now));
        Ok(())
    }

    fn read_after_transmit(
        &self,
        _: &BeforeDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        stamp(cfg, |s, now| s.transmitted = Some(now));
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        _: &AfterDeserializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        stamp(cfg, |s, now| s.deserialized = Some(now));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let end = Instant::now();
        let Some(s) = cfg.load::<Stamps>().cloned() else {
            return Ok(());
        };
        let operation = cfg
            .load::<Metadata>()
            .map_or("unknown", |m| m.name())
            .to_owned();
        let span = |from: Option<Instant>, to: Option<Instant>| match (from, to) {
            (Some(from), Some(to)) => micros(from, to),
            _ => 0,
        };
        emit(
            &operation,
            &[
                ("serialize", span(Some(s.execution), s.attempt)),
                ("credentials_endpoint", span(s.attempt, s.signing)),
                ("sign", span(s.signing, s.signed)),
                ("transmit", span(s.transmit, s.transmitted)),
                ("deserialize", span(s.transmitted, s.deserialized)),
                ("total", micros(s.execution, end)),
            ],
        );
        Ok(())
    }
}
