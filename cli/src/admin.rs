//! The admin endpoint of `ringwire node` and its clients (`ringwire peers`, `book`, `stats`,
//! `dial`, `dial-seeds`, `disconnect`, `ban`).
//!
//! Protocol: one JSON object per line each way. Requests are
//! `{"cmd":"peers"}`, `{"cmd":"book"}`, `{"cmd":"stats"}`, `{"cmd":"dial","addr":"ID@HOST:PORT"}`,
//! `{"cmd":"dial_seeds"}`, `{"cmd":"disconnect","id":"ID"}` and
//! `{"cmd":"ban","id":"ID","for":"1h"}`; every answer has `"ok"` and either the result
//! (`"peers"` for a list, `"book"` and `"bans"` for the book, `"stats"` for the counters,
//! `"dialed"` for the seeds dialed) or `"error"`. The fields of each are in
//! docs/CONFIGURATION.md (`[admin]`).
//!
//! Policy: off unless `[admin] enabled`; it listens on a Unix socket created with mode 0600
//! (only the node's user may connect) or on a loopback TCP address. Requests are at most
//! [`MAX_LINE`] bytes and at most [`MAX_CLIENTS`] clients are served at once (others are
//! closed at once); each client thread ends when its client does or after [`IDLE`] of silence.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ringwire::config::{AdminAddress, PeerAddress};
use ringwire::node::Node;
use ringwire::proto::secret::NodeId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Failure;

/// Longest request line accepted.
pub(crate) const MAX_LINE: usize = 64 * 1024;
/// Most clients served at once.
pub(crate) const MAX_CLIENTS: usize = 8;
/// How long a client may stay silent.
const IDLE: Duration = Duration::from_secs(60);
/// Ban length when `ringwire ban` has no `--for`.
const DEFAULT_BAN: Duration = Duration::from_secs(24 * 3600);

/// One request.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case")]
pub(crate) enum Request {
    /// List the connected peers.
    Peers,
    /// The address book, and the bans in force.
    Book,
    /// The node's counters ([`ringwire::router::NodeStats`], one field per counter).
    Stats,
    /// Dial the configured seeds now.
    DialSeeds,
    /// Dial `addr` (`ID@HOST:PORT`) and wait until the peer is up.
    Dial { addr: String },
    /// Close the connection to `id`.
    Disconnect { id: String },
    /// Ban `id` for `for` (a duration, default 24h) and close its connection.
    Ban {
        id: String,
        #[serde(rename = "for", default, skip_serializing_if = "Option::is_none")]
        duration: Option<String>,
    },
}

/// A listening admin endpoint; stops accepting when dropped.
pub(crate) struct Server {
    stop: Arc<AtomicBool>,
    unix_path: Option<PathBuf>,
    wake: Option<SocketAddr>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(p) = &self.unix_path {
            // Wakes the accept loop, then removes the socket file.
            let _ = UnixStream::connect(p);
            let _ = std::fs::remove_file(p);
        }
        if let Some(a) = self.wake {
            let _ = TcpStream::connect_timeout(&a, Duration::from_millis(200));
        }
    }
}

/// Starts serving `node` on `addr` (a relative Unix path is under `home`).
pub(crate) fn serve(node: Node, addr: &AdminAddress, home: &Path) -> Result<Server, Failure> {
    let stop = Arc::new(AtomicBool::new(false));
    let clients = Arc::new(AtomicUsize::new(0));
    match addr {
        AdminAddress::Unix(path) => {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                home.join(path)
            };
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Failure(format!("admin.listen: {}: {e}", dir.display())))?;
            }
            // A socket file left by a node that did not stop cleanly.
            if UnixStream::connect(&path).is_err() {
                let _ = std::fs::remove_file(&path);
            }
            let listener = UnixListener::bind(&path)
                .map_err(|e| Failure(format!("admin.listen: {}: {e}", path.display())))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
                .map_err(|e| Failure(format!("admin.listen: {}: {e}", path.display())))?;
            tracing::info!(listen = %path.display(), "admin endpoint listening");
            let stop2 = stop.clone();
            spawn("ringwire-admin", move || {
                accept(listener.incoming(), &stop2, &node, &clients)
            })?;
            Ok(Server {
                stop,
                unix_path: Some(path),
                wake: None,
            })
        }
        AdminAddress::Tcp(a) => {
            if !a.ip().is_loopback() {
                return Err(Failure(format!(
                    "admin.listen: {a} is not a loopback address"
                )));
            }
            let listener =
                TcpListener::bind(a).map_err(|e| Failure(format!("admin.listen: {a}: {e}")))?;
            let bound = listener
                .local_addr()
                .map_err(|e| Failure(format!("admin.listen: {e}")))?;
            tracing::info!(listen = %bound, "admin endpoint listening");
            let stop2 = stop.clone();
            spawn("ringwire-admin", move || {
                accept(listener.incoming(), &stop2, &node, &clients)
            })?;
            Ok(Server {
                stop,
                unix_path: None,
                wake: Some(bound),
            })
        }
    }
}

/// A connected admin stream (Unix or TCP).
trait Stream: Read + Write + Send + Sized + 'static {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()>;
    fn try_clone(&self) -> std::io::Result<Self>;
}

impl Stream for UnixStream {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        UnixStream::set_read_timeout(self, d)
    }
    fn try_clone(&self) -> std::io::Result<Self> {
        UnixStream::try_clone(self)
    }
}

impl Stream for TcpStream {
    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        TcpStream::set_read_timeout(self, d)
    }
    fn try_clone(&self) -> std::io::Result<Self> {
        TcpStream::try_clone(self)
    }
}

/// The accept loop: serves each connection until `stop` is set (the server's drop sets it and
/// then connects once, to wake this loop).
fn accept<S: Stream>(
    incoming: impl Iterator<Item = std::io::Result<S>>,
    stop: &AtomicBool,
    node: &Node,
    clients: &Arc<AtomicUsize>,
) {
    for conn in incoming {
        if stop.load(Ordering::Acquire) {
            break;
        }
        if let Ok(c) = conn {
            let _ = c.set_read_timeout(Some(IDLE));
            let Ok(w) = c.try_clone() else { continue };
            client(node, clients, c, w);
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), Failure> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map(drop)
        .map_err(|e| Failure(format!("cannot start a thread: {e}")))
}

/// Serves one client on its own thread, unless [`MAX_CLIENTS`] are already served.
fn client<R, W>(node: &Node, clients: &Arc<AtomicUsize>, r: R, mut w: W)
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    if clients.fetch_add(1, Ordering::AcqRel) >= MAX_CLIENTS {
        clients.fetch_sub(1, Ordering::AcqRel);
        let _ = writeln!(
            w,
            "{}",
            json!({"ok": false, "error": "too many admin clients"})
        );
        return;
    }
    let node = node.clone();
    let clients2 = clients.clone();
    let started = spawn("ringwire-admin-client", move || {
        let mut reader = BufReader::new(r);
        let mut line = Vec::new();
        loop {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut line);
            match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let answer = if line.len() > MAX_LINE {
                json!({"ok": false, "error": "request too long"})
            } else {
                match serde_json::from_slice::<Request>(&line) {
                    Ok(req) => handle(&node, req),
                    Err(e) => json!({"ok": false, "error": format!("bad request: {e}")}),
                }
            };
            if writeln!(w, "{answer}").is_err() || line.len() > MAX_LINE {
                break;
            }
        }
        clients2.fetch_sub(1, Ordering::AcqRel);
    });
    if started.is_err() {
        clients.fetch_sub(1, Ordering::AcqRel);
    }
}

fn parse_id(id: &str) -> Result<NodeId, String> {
    id.trim()
        .parse::<NodeId>()
        .map_err(|e| format!("bad node ID {id:?}: {e}"))
}

/// Runs one request on the node.
pub(crate) fn handle(node: &Node, req: Request) -> Value {
    let result: Result<Value, String> = match req {
        Request::Peers => Ok(json!({ "peers": crate::admin_view::peers(node) })),
        Request::Book => Ok(crate::admin_view::book(node)),
        Request::DialSeeds => {
            let dialed: Vec<String> = node.dial_seeds().iter().map(|id| id.to_string()).collect();
            tracing::info!(seeds = dialed.len(), "seeds dialed by the operator");
            Ok(json!({ "dialed": dialed }))
        }
        Request::Stats => serde_json::to_value(node.stats())
            .map(|stats| json!({ "stats": stats }))
            .map_err(|e| e.to_string()),
        Request::Dial { addr } => dial(node, &addr),
        Request::Disconnect { id } => parse_id(&id).map(|id| {
            let was = node.disconnect(&id, "disconnected by the operator");
            json!({ "disconnected": was })
        }),
        Request::Ban { id, duration } => {
            let d = match duration.as_deref().map(crate::run::parse_duration) {
                None => Ok(DEFAULT_BAN),
                Some(Ok(d)) => Ok(d),
                Some(Err(e)) => Err(format!("bad ban duration: {e}")),
            };
            d.and_then(|d| parse_id(&id).map(|id| (id, d)))
                .and_then(|(id, d)| {
                    if node.ban(&id, Instant::now() + d) {
                        tracing::info!(peer = %id, duration = ?d, "peer banned by the operator");
                        Ok(json!({ "banned": id.to_string() }))
                    } else {
                        Err("this node has no peer manager".to_owned())
                    }
                })
        }
    };
    match result {
        Ok(Value::Object(mut m)) => {
            m.insert("ok".into(), Value::Bool(true));
            Value::Object(m)
        }
        Ok(other) => json!({"ok": true, "result": other}),
        Err(e) => json!({"ok": false, "error": e}),
    }
}

fn dial(node: &Node, addr: &str) -> Result<Value, String> {
    let peer: PeerAddress = addr
        .parse()
        .map_err(|e| format!("bad peer address {addr:?} (want ID@HOST:PORT): {e}"))?;
    let target = peer
        .addr
        .to_string()
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("cannot resolve {}", peer.addr))?;
    let info = node
        .dial_blocking(target, Some(peer.id))
        .map_err(|e| format!("dial {addr}: {e}"))?;
    tracing::info!(peer = %info.node_id, %target, "dialed by the operator");
    Ok(json!({ "connected": info.node_id.to_string() }))
}

/// Sends one request to the endpoint at `addr` and returns the answer, or the error it gives.
pub(crate) fn call(addr: &AdminAddress, home: &Path, req: &Request) -> Result<Value, Failure> {
    let line = serde_json::to_string(req).map_err(|e| Failure(e.to_string()))?;
    let text = match addr {
        AdminAddress::Unix(path) => {
            let path = if path.is_absolute() {
                path.clone()
            } else {
                home.join(path)
            };
            let s = UnixStream::connect(&path).map_err(|e| {
                Failure(format!(
                    "cannot reach the admin endpoint {}: {e} (is the node running with [admin] enabled?)",
                    path.display()
                ))
            })?;
            exchange(s, &line)?
        }
        AdminAddress::Tcp(a) => {
            let s = TcpStream::connect(a)
                .map_err(|e| Failure(format!("cannot reach the admin endpoint {a}: {e}")))?;
            exchange(s, &line)?
        }
    };
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| Failure(format!("bad answer from the node: {e}")))?;
    if v.get("ok") == Some(&Value::Bool(true)) {
        Ok(v)
    } else {
        let e = v.get("error").and_then(Value::as_str).unwrap_or("failed");
        Err(Failure(e.to_owned()))
    }
}

fn exchange<S: Read + Write>(mut s: S, line: &str) -> Result<String, Failure> {
    let io = |e: std::io::Error| Failure(format!("admin endpoint: {e}"));
    s.write_all(line.as_bytes()).map_err(io)?;
    s.write_all(b"\n").map_err(io)?;
    s.flush().map_err(io)?;
    let mut answer = String::new();
    BufReader::new(s.take(16 << 20))
        .read_line(&mut answer)
        .map_err(io)?;
    Ok(answer)
}
