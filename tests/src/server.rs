//! Real HTTP servers on 127.0.0.1 for tests: the echo upstream (answers with the request it saw
//! as JSON) and [`TestServer`]s with a handler (JWKS endpoints and the like).

use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A request as a test server received it. Header names are lower case; repeated headers
/// are joined with ", ".
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq)]
pub struct SeenRequest {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl SeenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// What a handler answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into().into_bytes(),
        }
    }

    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&SeenRequest) -> Reply + Send + Sync;

/// An HTTP/1.1 server on 127.0.0.1 with a free port, served by a few threads until dropped.
pub struct TestServer {
    server: Arc<tiny_http::Server>,
    port: u16,
    hits: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<SeenRequest>>>,
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server whose every request is answered by `handler`.
    pub fn start(handler: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_on(0, handler)
    }

    /// As [`TestServer::start`] on a given port (0 = any free port).
    pub fn start_on(
        port: u16,
        handler: impl Fn(&SeenRequest) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let (server, port) = listen(port);
        let handler: Arc<Handler> = Arc::new(handler);
        let hits = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stopping = Arc::new(AtomicBool::new(false));
        let threads = (0..4)
            .map(|_| {
                let (server, handler, hits, seen, stopping) = (
                    server.clone(),
                    handler.clone(),
                    hits.clone(),
                    seen.clone(),
                    stopping.clone(),
                );
                std::thread::spawn(move || {
                    while let Ok(mut request) = server.recv() {
                        if stopping.load(Ordering::SeqCst) {
                            break;
                        }
                        let seen_request = read_request(&mut request);
                        hits.fetch_add(1, Ordering::SeqCst);
                        let reply = handler(&seen_request);
                        if let Ok(mut all) = seen.lock() {
                            all.push(seen_request);
                        }
                        let mut response = tiny_http::Response::from_data(reply.body)
                            .with_status_code(reply.status);
                        for (k, v) in &reply.headers {
                            if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes())
                            {
                                response.add_header(h);
                            }
                        }
                        let _ = request.respond(response);
                    }
                })
            })
            .collect();
        Self {
            server,
            port,
            hits,
            seen,
            stopping,
            threads,
        }
    }

    /// The echo upstream: answers 200 with the [`SeenRequest`] as JSON.
    pub fn echo() -> Self {
        Self::start(echo_reply)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Every request served so far.
    pub fn requests(&self) -> Vec<SeenRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// A tiny_http server on 127.0.0.1:`port` (0 = any free port) and the port it got.
pub fn listen(port: u16) -> (Arc<tiny_http::Server>, u16) {
    let server = Arc::new(
        tiny_http::Server::http(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot listen on 127.0.0.1:{port}: {e}")),
    );
    let port = server
        .server_addr()
        .to_ip()
        .map(|a| a.port())
        .unwrap_or_default();
    (server, port)
}

/// The echo upstream's answer.
pub fn echo_reply(request: &SeenRequest) -> Reply {
    Reply::json(200, serde_json::to_string(request).unwrap_or_default())
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // `unblock` wakes one blocked `recv`; every serving thread needs one.
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn read_request(request: &mut tiny_http::Request) -> SeenRequest {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for h in request.headers() {
        let name = h.field.as_str().as_str().to_ascii_lowercase();
        let value = h.value.as_str().to_string();
        headers
            .entry(name)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    let mut body = String::new();
    let _ = std::io::Read::read_to_string(request.as_reader(), &mut body);
    SeenRequest {
        method: request.method().as_str().to_string(),
        path: request.url().to_string(),
        headers,
        body,
    }
}
