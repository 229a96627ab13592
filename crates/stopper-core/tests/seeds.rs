//! The fuzz target's properties (fuzz/properties.rs) over its seeds, as an
//! ordinary test: every sample in events/, request bodies (first byte 0x01)
//! and SNS messages (0x02), as scripts/fuzz seeds its runs. CI runs this on
//! every change; the fuzzer explores from the same seeds.

#[allow(dead_code)]
#[path = "../fuzz/properties.rs"]
mod properties;

use serde_json::{json, Value};

const EXECUTION: &str =
    "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nightly-training/execution/k7xvw1b9q2hj";

fn seeds() -> Vec<Vec<u8>> {
    let events = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events");
    let mut seeds: Vec<Vec<u8>> = std::fs::read_dir(&events)
        .expect("events/")
        .map(|entry| std::fs::read(entry.unwrap().path()).unwrap())
        .collect();
    assert!(seeds.len() >= 10, "the samples in events/");
    let alarm: Value =
        serde_json::from_slice(&std::fs::read(events.join("alarm-sns.json")).unwrap()).unwrap();
    let alarm_message = alarm["Records"][0]["Sns"]["Message"]
        .as_str()
        .unwrap()
        .to_owned();
    let bodies = [
        json!({"PipelineExecutionArn": EXECUTION}),
        json!({"PipelineExecutionArns": ["arn:aws:sagemaker:us-east-1:123456789012:pipeline/exp-1/execution/a"], "DryRun": true}),
        json!({"PipelineName": "nightly-training", "OlderThanMinutes": 240, "Force": true, "Reason": "r", "WaitSeconds": 30}),
        json!({"PipelineExecutionArn": EXECUTION, "ClientRequestToken": "0123456789abcdef0123456789abcdef"}),
        json!({"Guard": true}),
        json!({}),
    ];
    for body in bodies.iter().map(Value::to_string).chain([alarm_message]) {
        for prefix in [1u8, 2] {
            seeds.push([&[prefix], body.as_bytes()].concat());
        }
    }
    seeds
}

#[test]
fn the_fuzz_targets_properties_hold_for_every_seed() {
    for seed in seeds() {
        properties::check(&seed);
    }
}
