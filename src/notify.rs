//! Publishing stop notifications: each [`Notice`] the core built, as one
//! EventBridge event on `NOTIFY_EVENT_BUS` and/or one SNS message to
//! `NOTIFY_TOPIC_ARN` (the same JSON notices, or with
//! `NOTIFY_TOPIC_FORMAT=chat` one chat notification). A notification that cannot be published is logged
//! and counted (`NotificationsFailed`), never an error of the event: the
//! stops it reports have happened, and a retry would not undo them.

use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_sns::types::MessageAttributeValue;
use stopper_core::config::Operations;
use stopper_core::notification::{Notice, DETAIL_TYPE, SOURCE};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::setup::timeout_config;

/// Where notifications go; built at init, only for what is configured.
#[derive(Default)]
pub struct Notifier {
    event_bus: Option<(aws_sdk_eventbridge::Client, String)>,
    topic: Option<(aws_sdk_sns::Client, String)>,
}

impl Notifier {
    pub fn new(sdk_config: &aws_config::SdkConfig, operations: &Operations) -> Notifier {
        let event_bus = operations.event_bus.clone().map(|bus| {
            let config = aws_sdk_eventbridge::config::Builder::from(sdk_config)
                .timeout_config(timeout_config())
                .build();
            (aws_sdk_eventbridge::Client::from_conf(config), bus)
        });
        let topic = operations.topic_arn.clone().map(|arn| {
            let config = aws_sdk_sns::config::Builder::from(sdk_config)
                .timeout_config(timeout_config())
                .build();
            (aws_sdk_sns::Client::from_conf(config), arn)
        });
        Notifier { event_bus, topic }
    }

    pub fn is_configured(&self) -> bool {
        self.event_bus.is_some() || self.topic.is_some()
    }

    /// Publishes `bus` to the event bus and `topic` to the topic (each where
    /// configured), by `by`; returns how many publications failed.
    pub async fn publish(&self, bus: &[Notice], topic: &[Notice], by: Instant) -> u64 {
        let expected = if self.event_bus.is_some() {
            bus.len()
        } else {
            0
        } + if self.topic.is_some() { topic.len() } else { 0 };
        if expected == 0 {
            return 0;
        }
        let work = async {
            let (bus, topic) = tokio::join!(self.to_event_bus(bus), self.to_topic(topic));
            bus + topic
        };
        match tokio::time::timeout_at(by, work).await {
            Ok(failed) => failed,
            Err(_) => {
                warn!(
                    notices = expected,
                    "stop notification not published: no time was left before the reply deadline"
                );
                expected as u64
            }
        }
    }

    async fn to_event_bus(&self, notices: &[Notice]) -> u64 {
        let Some((client, bus)) = &self.event_bus else {
            return 0;
        };
        let mut failed = 0;
        for notice in notices {
            let entry = PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source(SOURCE)
                .detail_type(DETAIL_TYPE)
                .detail(&notice.detail)
                .set_resources(Some(notice.resources.clone()))
                .build();
            let why = match client.put_events().entries(entry).send().await {
                Ok(out) if out.failed_entry_count() == 0 => {
                    debug!(
                        event_bus = bus.as_str(),
                        "stop notification put on the event bus"
                    );
                    continue;
                }
                Ok(out) => out
                    .entries()
                    .iter()
                    .find_map(|e| e.error_code())
                    .unwrap_or("the entry was not accepted")
                    .to_owned(),
                Err(e) => crate::setup::failure(&e),
            };
            failed += 1;
            warn!(
                event_bus = bus.as_str(),
                error = why.as_str(),
                executions = notice.resources.len(),
                "stop notification not put on the event bus: check NOTIFY_EVENT_BUS and the \
                 function's events:PutEvents permission"
            );
        }
        failed
    }

    async fn to_topic(&self, notices: &[Notice]) -> u64 {
        let Some((client, topic)) = &self.topic else {
            return 0;
        };
        let mut failed = 0;
        for notice in notices {
            let mut publish = client
                .publish()
                .topic_arn(topic)
                .subject(&notice.subject)
                .message(&notice.detail);
            if let Ok(pipelines) = MessageAttributeValue::builder()
                .data_type("String.Array")
                .string_value(serde_json::to_string(&notice.pipelines).unwrap_or_default())
                .build()
            {
                publish = publish.message_attributes("Pipelines", pipelines);
            }
            let why = match publish.send().await {
                Ok(_) => {
                    debug!(topic = topic.as_str(), "stop notification published");
                    continue;
                }
                Err(e) => crate::setup::failure(&e),
            };
            failed += 1;
            warn!(
                topic = topic.as_str(),
                error = why.as_str(),
                executions = notice.resources.len(),
                "stop notification not published to the SNS topic: check NOTIFY_TOPIC_ARN and the \
                 function's sns:Publish permission (and kms:GenerateDataKey for an encrypted topic)"
            );
        }
        failed
    }
}
