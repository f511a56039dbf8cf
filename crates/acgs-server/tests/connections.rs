//! Connection handling on a real socket: clients that are slow to send a head or a body, idle keep-alive
//! connections, a declared body over the limit, and the cap on open connections.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use acgs_server::ServerSettings;
use acgs_server::connection::ConnectionLimits;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Longest a test waits for something the server must do (generous: the host may be busy).
const PATIENCE: Duration = Duration::from_secs(10);

struct Running {
    addr: SocketAddr,
    key: String,
    stop: Option<oneshot::Sender<()>>,
    served: tokio::task::JoinHandle<std::io::Result<()>>,
    _server: common::TestServer,
}

impl Running {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(PATIENCE, &mut self.served)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

async fn start(limits: ConnectionLimits) -> Running {
    let server = common::server(ServerSettings {
        max_body_bytes: 4096,
        connections: limits,
        ..Default::default()
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let served = tokio::spawn(acgs_server::serve(listener, server.state.clone(), async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        key: server.key.clone(),
        stop: Some(stop),
        served,
        _server: server,
    }
}

fn limits() -> ConnectionLimits {
    ConnectionLimits {
        max_connections: 64,
        header_timeout: Duration::from_millis(300),
        body_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_millis(300),
        shutdown_grace: Duration::from_secs(5),
    }
}

/// Everything the server sends until it closes the connection; panics if it keeps it open past `PATIENCE`.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await {
            Err(_) => panic!(
                "the server kept the connection open; it sent: {}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&received).into_owned(),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// One complete response (head and `Content-Length` body) from a connection that stays open.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_owned())
                })
                .map_or(0, |v| v.parse::<usize>().unwrap());
            if received.len() >= end + 4 + length {
                return text;
            }
        }
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("a response in time")
            .unwrap();
        assert!(n > 0, "closed before a whole response: {text}");
        received.extend_from_slice(&buf[..n]);
    }
}

fn health_request() -> &'static [u8] {
    b"GET /health HTTP/1.1\r\nHost: acgs\r\n\r\n"
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_header_timeout() {
    let server = start(limits()).await;
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    assert_eq!(read_until_closed(&mut silent).await, "", "no answer, just closed");
    server.stop().await;
}

#[tokio::test]
async fn half_a_request_head_is_closed_after_the_header_timeout() {
    let server = start(limits()).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"POST /v1/decisions HTTP/1.1\r\nHost: acgs\r\n")
        .await
        .unwrap();
    // Trickling more header bytes does not extend the deadline.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if slow.write_all(b"X-A: b\r\n").await.is_err() {
            break;
        }
    }
    assert_eq!(read_until_closed(&mut slow).await, "");
    server.stop().await;
}

#[tokio::test]
async fn half_a_body_is_answered_408_and_closed() {
    let server = start(limits()).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/decisions HTTP/1.1\r\nHost: acgs\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{",
        server.key
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(answer.contains("urn:acgs:problem:request-timeout"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn an_unauthenticated_half_body_is_answered_401_and_closed() {
    let server = start(ConnectionLimits {
        body_timeout: Duration::from_secs(60),
        ..limits()
    })
    .await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(
        b"POST /v1/decisions HTTP/1.1\r\nHost: acgs\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_before_it_is_sent() {
    let server = start(ConnectionLimits {
        body_timeout: Duration::from_secs(60),
        ..limits()
    })
    .await;
    let mut big = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /v1/decisions HTTP/1.1\r\nHost: acgs\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
        server.key
    );
    big.write_all(head.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut big).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("urn:acgs:problem:payload-too-large"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("connection: close"), "{answer}");
    server.stop().await;
}

#[tokio::test]
async fn a_keep_alive_connection_serves_requests_then_closes_when_idle() {
    let server = start(ConnectionLimits {
        idle_timeout: Duration::from_millis(500),
        header_timeout: Duration::from_secs(5),
        ..limits()
    })
    .await;
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    for _ in 0..2 {
        client.write_all(health_request()).await.unwrap();
        let answer = read_response(&mut client).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    assert_eq!(read_until_closed(&mut client).await, "", "closed once idle");
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let server = start(ConnectionLimits {
        max_connections: 2,
        header_timeout: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(60),
        ..limits()
    })
    .await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    first.write_all(health_request()).await.unwrap();
    read_response(&mut first).await;
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    second.write_all(health_request()).await.unwrap();
    read_response(&mut second).await;

    // The kernel completes the third handshake, but the server does not take the connection while two are open.
    let mut third = TcpStream::connect(server.addr).await.unwrap();
    third.write_all(health_request()).await.unwrap();
    let mut buf = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf))
            .await
            .is_err(),
        "a third connection was served while two were open"
    );
    drop(first);
    let answer = read_response(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(second);
    drop(third);
    server.stop().await;
}

#[tokio::test]
async fn requests_hyper_cannot_parse_get_problem_documents() {
    let server = start(limits()).await;
    let many_headers: String = (0..1000).map(|i| format!("X-{i}: y\r\n")).collect();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".to_vec(),
            "400",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n".to_vec(),
            "400",
        ),
        (
            b"GET /health HTTP/1.1\r\nHost: x\r\nBad\x01Header: y\r\n\r\n".to_vec(),
            "400",
        ),
        (
            format!("GET /health HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n").into_bytes(),
            "431",
        ),
    ];
    for (request, status) in cases {
        let mut client = TcpStream::connect(server.addr).await.unwrap();
        client.write_all(&request).await.unwrap();
        let answer = read_until_closed(&mut client).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{answer}");
        assert!(answer.contains("content-type: application/problem+json"), "{answer}");
        let body = answer.split_once("\r\n\r\n").unwrap().1;
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"].to_string(), status, "{answer}");
        assert!(problem["detail"].as_str().is_some_and(|d| !d.is_empty()));
    }
    // A well-formed request on a fresh connection is answered as usual afterwards.
    let mut client = TcpStream::connect(server.addr).await.unwrap();
    client.write_all(health_request()).await.unwrap();
    assert!(read_response(&mut client).await.starts_with("HTTP/1.1 200"));
    server.stop().await;
}
