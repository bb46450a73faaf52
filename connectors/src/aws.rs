//! One AWS SDK configuration for every client ferry makes (DynamoDB, SNS,
//! EventBridge, SQS, Step Functions): the standard credential and region
//! chain, `AWS_ENDPOINT_URL[_<SERVICE>]` for emulators, and a single HTTP/TLS
//! stack (hyper 1 + rustls on ring) so the binary carries one TLS library.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::Builder;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use tokio::sync::OnceCell;

static CONFIG: OnceCell<SdkConfig> = OnceCell::const_new();

/// hyper 1 + rustls on ring: the TLS stack object_store and
/// tokio-postgres-rustls already bring.
fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The shared SDK configuration, loaded once per process.
///
/// Without a region in the environment the SDK cannot sign requests; ferry
/// then falls back to `us-east-1` so that local emulators work with nothing
/// but `AWS_ENDPOINT_URL` set (real AWS always has a region in ECS tasks).
pub async fn sdk_config() -> &'static SdkConfig {
    CONFIG
        .get_or_init(|| async {
            let loader = aws_config::defaults(BehaviorVersion::latest()).http_client(http_client());
            let config = loader.load().await;
            if config.region().is_some() {
                config
            } else {
                config
                    .into_builder()
                    .region(aws_config::Region::from_static("us-east-1"))
                    .build()
            }
        })
        .await
}

/// A configuration for a local AWS emulator at `endpoint`: fixed test
/// credentials and `us-east-1`, nothing read from the environment. For tests
/// and tools that must not depend on the caller's AWS settings.
pub async fn emulator_config(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .test_credentials()
        .region(aws_config::Region::from_static("us-east-1"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// An AWS call that failed.
#[derive(Debug, thiserror::Error)]
#[error("{service} {operation}: {detail}")]
pub struct AwsError {
    /// The service, e.g. `DynamoDB`.
    pub service: &'static str,
    /// The operation, e.g. `PutItem`.
    pub operation: &'static str,
    /// The service's message (never request parameters, which may hold secrets).
    pub detail: String,
    /// Whether trying again may help: timeouts, connection failures,
    /// throttling and 5xx responses.
    pub retryable: bool,
}

impl AwsError {
    /// Classifies an SDK error.
    pub fn from_sdk<E>(
        service: &'static str,
        operation: &'static str,
        e: aws_sdk_dynamodb::error::SdkError<E, aws_sdk_dynamodb::config::http::HttpResponse>,
    ) -> AwsError
    where
        E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        use aws_sdk_dynamodb::error::SdkError;
        let (detail, retryable) = match &e {
            SdkError::TimeoutError(_) => ("timed out".to_string(), true),
            SdkError::DispatchFailure(d) => (
                format!("could not reach the service: {:?}", d.as_connector_error()),
                true,
            ),
            SdkError::ResponseError(_) => ("unreadable response".to_string(), true),
            SdkError::ServiceError(s) => {
                let err = s.err();
                let code = err.code().unwrap_or("error");
                let throttled = matches!(
                    code,
                    "ThrottlingException"
                        | "ProvisionedThroughputExceededException"
                        | "RequestLimitExceeded"
                        | "TooManyRequestsException"
                        | "Throttling"
                        | "InternalServerError"
                        | "InternalFailure"
                        | "ServiceUnavailable"
                );
                let status = s.raw().status().as_u16();
                let server = status >= 500;
                let detail = match (err.code(), err.message()) {
                    (Some(code), message) => format!("{code}: {}", message.unwrap_or("")),
                    // A response the SDK could not read a code from (a proxy, an emulator, an
                    // error page): its status and the start of its body say what happened.
                    (None, _) => {
                        let body = s.raw().body().bytes().unwrap_or_default();
                        let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
                        format!("HTTP {status} without an error code: {}", text.trim())
                    }
                };
                (detail, throttled || server)
            }
            other => (format!("{other}"), false),
        };
        AwsError {
            service,
            operation,
            detail,
            retryable,
        }
    }

    /// The error code, when the service sent one (e.g.
    /// `ConditionalCheckFailedException`).
    pub fn is_code(&self, code: &str) -> bool {
        self.detail.starts_with(code)
    }
}
