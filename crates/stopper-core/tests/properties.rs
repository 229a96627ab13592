//! Property tests: ARN validation is exactly SageMaker's documented pattern and
//! length (plus the structure the allow-list needs), derived tokens always fit
//! SageMaker's bounds and never collide, and only a transition into ALARM acts.

use std::path::PathBuf;

use proptest::prelude::*;
use regex::Regex;
use serde_json::Value;
use stopper_core::arn::parse_execution_arn;
use stopper_core::token;
use stopper_core::trigger::{decode, Action};

/// The documented constraint on `PipelineExecutionArn`.
const DOCUMENTED: &str =
    r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline\/.*\/execution\/.*$";

fn documented() -> Regex {
    Regex::new(DOCUMENTED).unwrap()
}

/// A pipeline name as SageMaker allows it: `[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}`.
fn pipeline_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9]([a-zA-Z0-9-]{0,254}[a-zA-Z0-9])?"
}

/// SageMaker's documented maximum length of an execution ARN, written here
/// rather than read from the code under test (`arn::MAX_ARN_LEN`).
const DOCUMENTED_MAX_LEN: usize = 2048;

/// A well-formed execution ARN and the parts it was built from: what the
/// parser must return is known from the parts, not from the parser.
#[derive(Debug, Clone)]
struct WellFormed {
    partition: String,
    region: String,
    account: String,
    pipeline: String,
    execution_id: String,
}

impl WellFormed {
    fn arn(&self) -> String {
        format!(
            "arn:{}:sagemaker:{}:{}:pipeline/{}/execution/{}",
            self.partition, self.region, self.account, self.pipeline, self.execution_id
        )
    }
}

/// The length of a generated ARN: its execution id's, or the whole ARN's
/// (to land on both sides of the documented maximum, 2048).
#[derive(Debug, Clone)]
enum Length {
    Id(usize),
    Total(usize),
}

/// Well-formed execution ARNs, many longer than 256 characters (pipeline
/// names of up to 256), some longer than the 2048 SageMaker allows, and many
/// within a few characters of 2048.
fn well_formed_parts() -> impl Strategy<Value = WellFormed> {
    (
        "(|-cn|-us-gov|-iso-b)",
        "[a-z]{2}-[a-z]{4,9}-[0-9]",
        "[0-9]{12}",
        pipeline_name(),
        "[a-z0-9]{1,16}",
        prop_oneof![
            (1..1900usize).prop_map(Length::Id),
            (2045..=2051usize).prop_map(Length::Total),
        ],
    )
        .prop_map(|(partition, region, account, pipeline, seed, length)| {
            let mut parts = WellFormed {
                partition: format!("aws{partition}"),
                region,
                account,
                pipeline,
                execution_id: String::new(),
            };
            let id_len = match length {
                Length::Id(n) => n,
                Length::Total(n) => n.saturating_sub(parts.arn().len()).max(1),
            };
            parts.execution_id = seed.chars().cycle().take(id_len).collect();
            parts
        })
}

fn well_formed() -> impl Strategy<Value = String> {
    well_formed_parts().prop_map(|parts| parts.arn())
}

/// A well-formed ARN with one character replaced, inserted or removed.
fn mutated() -> impl Strategy<Value = String> {
    (
        well_formed(),
        any::<prop::sample::Index>(),
        any::<char>(),
        0..3u8,
    )
        .prop_map(|(arn, at, c, how)| {
            let mut chars: Vec<char> = arn.chars().collect();
            let i = at.index(chars.len());
            match how {
                0 => chars[i] = c,
                1 => chars.insert(i, c),
                _ => {
                    chars.remove(i);
                }
            }
            chars.into_iter().collect()
        })
}

proptest! {
    // 2000 cases unless PROPTEST_CASES says otherwise (scripts/mutants runs
    // fewer: one mutant's test run must stay short).
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(2000)
    ))]

    /// A well-formed ARN is accepted exactly when it is within the documented
    /// length, and then split into the very parts it was built from. The
    /// expectation comes from the documented maximum and the generated parts,
    /// never from `arn.rs` (its constant or its own split).
    #[test]
    fn well_formed_arns_are_accepted_exactly_within_the_documented_length(parts in well_formed_parts()) {
        let arn = parts.arn();
        // The generator's promise, on which the expectation below rests.
        prop_assert!(documented().is_match(&arn), "the generator made {:?}", arn);
        let within = arn.chars().count() <= DOCUMENTED_MAX_LEN;
        match parse_execution_arn(&arn) {
            Ok(parsed) => {
                prop_assert!(within, "accepted {} characters", arn.chars().count());
                prop_assert_eq!(
                    (parsed.partition, parsed.region, parsed.account, parsed.pipeline, parsed.execution_id),
                    (
                        parts.partition.as_str(), parts.region.as_str(), parts.account.as_str(),
                        parts.pipeline.as_str(), parts.execution_id.as_str(),
                    )
                );
            }
            Err(e) => prop_assert!(!within, "refused a well-formed ARN of {} characters: {}", arn.chars().count(), e.message),
        }
    }

    #[test]
    fn nothing_outside_the_documented_pattern_is_accepted(arn in prop_oneof![mutated(), ".{0,300}"]) {
        if let Ok(parsed) = parse_execution_arn(&arn) {
            prop_assert!(documented().is_match(&arn), "accepted {:?}", arn);
            prop_assert!(arn.chars().count() <= DOCUMENTED_MAX_LEN);
            // The parts are those of the ARN: the allow-list checks this pipeline.
            let expected = format!(
                "arn:{}:sagemaker:{}:{}:pipeline/{}/execution/{}",
                parsed.partition, parsed.region, parsed.account, parsed.pipeline, parsed.execution_id
            );
            prop_assert_eq!(expected, arn);
        }
    }

    /// Derived tokens: always within SageMaker's 32–128 characters, the same
    /// for the same trigger and execution, different for any other pair.
    #[test]
    fn derived_tokens_fit_are_deterministic_and_distinct(
        identity in ".{0,80}", other_identity in ".{0,80}",
        arn in well_formed(), other_arn in well_formed(),
    ) {
        let t = token::derive(&identity, &arn);
        prop_assert!(token::is_valid(&t));
        prop_assert!(t.len() == 72 && t.strip_prefix(token::DERIVED_PREFIX).is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit())));
        prop_assert_eq!(&t, &token::derive(&identity, &arn));
        if (&identity, &arn) != (&other_identity, &other_arn) {
            prop_assert_ne!(t, token::derive(&other_identity, &other_arn));
        }
    }

    /// A caller's token is accepted exactly when it has 32 to 128 characters.
    #[test]
    fn caller_tokens_are_checked_by_characters(given in ".{0,200}") {
        let n = given.chars().count();
        prop_assert_eq!(token::is_valid(&given), (32..=128).contains(&n));
    }

    /// Whatever state an alarm reports, in each of the three alarm triggers,
    /// only ALARM leads to a stop; anything else is ignored or refused.
    #[test]
    fn only_a_transition_into_alarm_acts(
        state in prop_oneof![
            Just("ALARM".to_owned()), Just("OK".to_owned()), Just("INSUFFICIENT_DATA".to_owned()),
            Just("alarm".to_owned()), Just("".to_owned()), "[A-Z_]{1,20}",
        ],
        file in prop_oneof![Just("alarm-eventbridge.json"), Just("alarm-lambda-action.json"), Just("alarm-sns.json")],
    ) {
        let event = alarm_event(file, &state);
        let acts = matches!(decode(&event.to_string()).action, Ok(Action::Stop(_)));
        prop_assert_eq!(acts, state == "ALARM", "{} in state {:?}", file, state);
    }
}

/// An `events/` alarm sample with its new state replaced.
fn alarm_event(file: &str, state: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../events")
        .join(file);
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    if let Some(value) = event.pointer_mut("/detail/state/value") {
        *value = state.into();
    } else if let Some(value) = event.pointer_mut("/alarmData/state/value") {
        *value = state.into();
    } else {
        let message = event.pointer_mut("/Records/0/Sns/Message").unwrap();
        let mut alarm: Value = serde_json::from_str(message.as_str().unwrap()).unwrap();
        alarm["NewStateValue"] = state.into();
        *message = alarm.to_string().into();
    }
    event
}
