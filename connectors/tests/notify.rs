//! Every notifier delivers the same event: JSONL (a temp file), SNS and
//! EventBridge (the local AWS emulator, through the real SDK, each read back
//! from an SQS queue subscribed to it).

use crate::common;

use ferry_connectors::aws::emulator_config;
use ferry_connectors::jobs::{JobError, JobInput, JobStatus, Workflow, new_job};
use ferry_connectors::notify::{
    EventBridgeNotifier, JobEvent, JsonlNotifier, Notifier, SnsNotifier,
};
use serde_json::{Value, json};

fn event() -> JobEvent {
    let mut job = new_job(
        JobInput {
            uri: "s3://in/orders/bad.csv".into(),
            size: Some(38),
            etag: Some("e".into()),
            version: None,
        },
        "s3://in/orders/bad.csv#etag=e".into(),
        Some("orders".into()),
        Some(Workflow::Loader),
        "/data/x".into(),
        uuid::Uuid::now_v7().to_string(),
    );
    job.status = JobStatus::Failed;
    job.error = Some(JobError {
        step: "transform".into(),
        name: "ferry.Input".into(),
        retryable: false,
        message: "bad.csv:3: column 2 (\"amount\"): not a number: \"abc\"".into(),
    });
    JobEvent::for_job(&job)
}

async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> (String, String) {
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    (
        url.clone(),
        attrs[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone(),
    )
}

async fn one_message(sqs: &aws_sdk_sqs::Client, url: &str) -> String {
    for _ in 0..10 {
        let r = sqs
            .receive_message()
            .queue_url(url)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if let Some(m) = r.messages.unwrap_or_default().into_iter().next() {
            return m.body.unwrap();
        }
    }
    panic!("no message on {url}");
}

#[tokio::test]
async fn jsonl_sns_and_eventbridge_carry_the_same_event() {
    let e = event();
    assert_eq!(e.title(), "Ferry Job Failed");

    let tmp = tempfile::tempdir().unwrap();
    let jsonl = JsonlNotifier::new(tmp.path().join("sub/events.jsonl"));
    jsonl.send(&e).await.unwrap();
    jsonl.send(&e).await.unwrap();
    let text = std::fs::read_to_string(tmp.path().join("sub/events.jsonl")).unwrap();
    let lines: Vec<JobEvent> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, vec![e.clone(), e.clone()]);

    let endpoint = common::endpoint();
    let config = emulator_config(&endpoint).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let id = uuid::Uuid::now_v7().simple().to_string();

    // SNS → SQS (the envelope's Message is the event).
    let sns = aws_sdk_sns::Client::new(&config);
    let topic = sns
        .create_topic()
        .name(format!("jobs-{id}"))
        .send()
        .await
        .unwrap()
        .topic_arn
        .unwrap();
    let (sns_q, sns_arn) = queue(&sqs, &format!("sns-{id}")).await;
    sns.subscribe()
        .topic_arn(&topic)
        .protocol("sqs")
        .endpoint(&sns_arn)
        .send()
        .await
        .unwrap();
    SnsNotifier::with_config(&config, &topic)
        .send(&e)
        .await
        .unwrap();
    let envelope: Value = serde_json::from_str(&one_message(&sqs, &sns_q).await).unwrap();
    assert_eq!(envelope["Subject"], "Ferry Job Failed");
    assert_eq!(envelope["MessageAttributes"]["status"]["Value"], "failed");
    let got: JobEvent = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(got, e);

    // EventBridge bus → rule on source "ferry" → SQS.
    let eb = aws_sdk_eventbridge::Client::new(&config);
    let bus = format!("ferry-{id}");
    eb.create_event_bus().name(&bus).send().await.unwrap();
    let (eb_q, eb_arn) = queue(&sqs, &format!("eb-{id}")).await;
    eb.put_rule()
        .name(format!("jobs-{id}"))
        .event_bus_name(&bus)
        .event_pattern(
            json!({"source": ["ferry"], "detail-type": ["Ferry Job Failed"]}).to_string(),
        )
        .send()
        .await
        .unwrap();
    eb.put_targets()
        .rule(format!("jobs-{id}"))
        .event_bus_name(&bus)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("q")
                .arn(&eb_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    EventBridgeNotifier::with_config(&config, &bus)
        .send(&e)
        .await
        .unwrap();
    let delivered: Value = serde_json::from_str(&one_message(&sqs, &eb_q).await).unwrap();
    assert_eq!(
        (
            delivered["source"].as_str(),
            delivered["detail-type"].as_str()
        ),
        (Some("ferry"), Some("Ferry Job Failed"))
    );
    let got: JobEvent = serde_json::from_value(delivered["detail"].clone()).unwrap();
    assert_eq!(got, e);
}

/// EventBridge throttling of the job event (ThrottlingException on PutEvents
/// to this bus): the SDK's retries absorb two; a lasting throttle is a
/// retryable error naming it, so the notify step fails as transient and is
/// retried, not lost.
#[tokio::test(flavor = "multi_thread")]
async fn a_throttled_event_is_retried_then_reported_as_retryable() {
    let endpoint = common::endpoint();
    let config = emulator_config(&endpoint).await;
    let bus = format!("ferry-throttle-{}", uuid::Uuid::now_v7().simple());
    aws_sdk_eventbridge::Client::new(&config)
        .create_event_bus()
        .name(&bus)
        .send()
        .await
        .unwrap();
    let throttle = |count: u32| {
        format!(
            r#"[{{"target":"AWSEvents.PutEvents","body":"{bus}","status":400,"code":"ThrottlingException","count":{count}}}]"#
        )
    };
    let notifier = EventBridgeNotifier::with_config(&config, &bus);
    common::faults(&endpoint, &throttle(2)).await;
    let sent = notifier.send(&event()).await;
    let hits = common::faults(&endpoint, "").await[0]["hits"].as_u64();
    assert!(sent.is_ok(), "{sent:?}");
    assert_eq!(
        hits,
        Some(2),
        "two throttled PutEvents, then the third passed"
    );

    common::faults(&endpoint, &throttle(1000)).await;
    let refused = notifier.send(&event()).await;
    common::faults(&endpoint, "[]").await;
    let e = refused.expect_err("a lasting throttle fails");
    assert!(e.retryable(), "{e}");
    assert!(e.to_string().contains("Throttling"), "{e}");
}
