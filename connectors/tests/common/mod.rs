//! Helpers shared by the connector tests that use the local AWS emulator.
#![allow(dead_code)]

/// The local AWS emulator `scripts/test` starts; a clear failure without it.
pub fn endpoint() -> String {
    std::env::var("FERRY_TEST_AWS_ENDPOINT_URL").unwrap_or_else(|_| {
        panic!("this test needs the local AWS emulator: run scripts/test, or set FERRY_TEST_AWS_ENDPOINT_URL")
    })
}

/// Sets the emulator's injected faults (see scripts/moto_server.py); returns
/// them with their hit counts.
pub async fn faults(endpoint: &str, body: &str) -> serde_json::Value {
    let url = url::Url::parse(endpoint).unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let method = if body.is_empty() { "GET" } else { "POST" };
    let request = format!(
        "{method} /_ferry/faults HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let reply = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut conn = std::net::TcpStream::connect(&host).unwrap();
        conn.write_all(request.as_bytes()).unwrap();
        let mut reply = String::new();
        conn.read_to_string(&mut reply).unwrap();
        reply
    })
    .await
    .unwrap();
    serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap_or("[]")).unwrap()
}
