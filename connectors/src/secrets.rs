//! The database's credentials from an AWS Secrets Manager secret, read by the
//! process itself. ECS resolves a task's secrets into its environment at
//! start; Lambda does not, so the Lambda fast path (`ferry lambda`) reads the
//! secret the stack names (`FERRY_DATABASE_SECRET`) once per sandbox.

use serde::Deserialize;

use crate::aws::{AwsError, sdk_config};

/// The fields of an RDS-managed secret (`host`, `port`, `username`,
/// `password`, `dbname`); each one missing leaves the libpq variable (or its
/// default) in force, as an account's own database's secret often holds only
/// the user and password.
#[derive(Deserialize, Default, Clone)]
pub struct DatabaseSecret {
    /// Server host name.
    pub host: Option<String>,
    /// Server port (a number or a numeric string).
    #[serde(default, deserialize_with = "port")]
    pub port: Option<u16>,
    /// User name.
    pub username: Option<String>,
    /// Password (never logged: this type has no Debug).
    pub password: Option<String>,
    /// Database name.
    pub dbname: Option<String>,
}

fn port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    match Option::<Port>::deserialize(d)? {
        None => Ok(None),
        Some(Port::Number(n)) => Ok(Some(n)),
        Some(Port::Text(t)) => t
            .parse()
            .map(Some)
            .map_err(|_| serde::de::Error::custom(format!("port {t:?} is not a port number"))),
    }
}

/// Reads the secret `id` (a name or an ARN) and parses it as RDS writes it.
pub async fn database_secret(id: &str) -> Result<DatabaseSecret, AwsError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk_config().await);
    let out = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| AwsError::from_sdk("SecretsManager", "GetSecretValue", e))?;
    let text = out.secret_string().unwrap_or_default();
    serde_json::from_str(text).map_err(|e| AwsError {
        service: "SecretsManager",
        operation: "GetSecretValue",
        // serde's message names the field and position, never the value.
        detail: format!("the secret {id} is not the JSON of a database secret: {e}"),
        retryable: false,
    })
}
