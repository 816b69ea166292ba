//! An HTTP proxy written for the tests of the crates that go through one (the exporter, the
//! trace-store clients), included by each with `#[path]`.
//!
//! It tunnels `CONNECT` and forwards plaintext requests in absolute form, records every request
//! head and every byte a client sends through it, and resolves names under `.test` to this
//! machine, as a corporate proxy resolves names the client cannot. Or it refuses every request
//! with a status of the test's choice.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What the proxy answers.
#[derive(Clone, Copy)]
pub(crate) enum Answer {
    /// Tunnels `CONNECT` and forwards the rest.
    Pass,
    /// Answers every request with this status (`407 Proxy Authentication Required`).
    Refuse(&'static str),
}

#[derive(Default)]
struct Seen {
    /// Connections accepted.
    connections: usize,
    /// The head of each request, as received.
    heads: Vec<String>,
    /// Every byte clients sent after the head, through tunnels or forwarded.
    relayed: Vec<u8>,
}

pub(crate) struct TestProxy {
    pub(crate) addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
}

impl TestProxy {
    pub(crate) async fn start(answer: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                shared.lock().unwrap().connections += 1;
                tokio::spawn(serve(client, answer, Arc::clone(&shared)));
            }
        });
        Self { addr, seen }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL with a user and password in it, which no error or log may repeat.
    pub(crate) fn url_with_credentials(&self) -> String {
        format!("http://proxyuser:pr0xy-passw0rd@{}", self.addr)
    }

    pub(crate) fn connections(&self) -> usize {
        self.seen.lock().unwrap().connections
    }

    pub(crate) fn heads(&self) -> Vec<String> {
        self.seen.lock().unwrap().heads.clone()
    }

    pub(crate) fn relayed(&self) -> Vec<u8> {
        self.seen.lock().unwrap().relayed.clone()
    }
}

/// `name:port` with names under `.test` resolved to loopback.
fn resolve(authority: &str) -> String {
    match authority.rsplit_once(':') {
        Some((host, port)) if host.ends_with(".test") => format!("127.0.0.1:{port}"),
        _ => authority.to_owned(),
    }
}

async fn serve(mut client: TcpStream, answer: Answer, seen: Arc<Mutex<Seen>>) {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") && head.len() < 16 * 1024 {
        match client.read_u8().await {
            Ok(byte) => head.push(byte),
            Err(_) => return,
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    seen.lock().unwrap().heads.push(text.clone());
    if let Answer::Refuse(status) = answer {
        let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
        let _ = client.write_all(reply.as_bytes()).await;
        return;
    }
    let mut words = text.split_whitespace();
    let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (authority, forwarded_head) = if method == "CONNECT" {
        (target.to_owned(), None)
    } else {
        // Absolute form: `GET http://host:port/path HTTP/1.1`.
        let rest = target.strip_prefix("http://").unwrap_or(target);
        let authority = rest.split('/').next().unwrap_or("").to_owned();
        (authority, Some(head))
    };
    let Ok(mut upstream) = TcpStream::connect(resolve(&authority)).await else {
        let _ = client
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    match forwarded_head {
        None => {
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
        }
        Some(head) => {
            if upstream.write_all(&head).await.is_err() {
                return;
            }
        }
    }
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let up = async move {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.lock().unwrap().relayed.extend_from_slice(&buf[..n]);
                    if upstream_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = upstream_write.shutdown().await;
    };
    let down = async move {
        let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}
