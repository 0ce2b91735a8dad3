//! The management API's HTTP/1.1 listener: `std::net` sockets, `httparse` for the request
//! head, our own accept loop, one reading thread per connection and a small pool of
//! request handlers. Built so that hostile or broken clients can neither stop nor stall it
//! (issue #14):
//!
//! * **Reads are bounded in time.** The request head must arrive whole within
//!   [`HEAD_TIMEOUT`] of the connection's first byte (of its acceptance for the first
//!   request), a body within [`BODY_TIMEOUT`] of the end of its head; a keep-alive
//!   connection waits at most [`IDLE_TIMEOUT`] for its next request. A late client gets
//!   408 and is closed; one that sent nothing is closed silently. Responses are written
//!   with [`WRITE_TIMEOUT`].
//! * **Reads are bounded in size, while reading.** At most [`MAX_HEAD`] bytes of head are
//!   buffered (431 beyond, and at most [`MAX_HEADERS`] header fields); a body is refused
//!   with 413 from its `Content-Length` before it is read, and a chunked body as soon as
//!   its decoded size passes the handler's limit ([`super::MAX_BODY`]). A connection never
//!   holds more than its head plus one body.
//! * **Connections are bounded.** At most [`MAX_CONNECTIONS`] at once; past that the
//!   oldest *idle* one (no request under way: waiting for its first byte or its next
//!   keep-alive request) is closed to make room; when none is idle the newcomer gets 503
//!   at once (written without blocking) and is closed.
//! * **Accept errors are survived.** `EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`: the oldest
//!   idle connection is shed (freeing a descriptor), the loop backs off (10 ms doubling to
//!   1 s, reset by the next accepted connection) and logs a warning through `tracing` at
//!   most once per second with the count of errors since the last one. Once descriptors
//!   are free again the loop serves as before. Other accept errors (a connection reset
//!   before it was accepted) are skipped.
//! * **A slow client never delays others.** Reading and writing happen on the
//!   connection's own thread; only complete requests go to the [`WORKERS`] handler
//!   threads, which never touch a socket. The handler's admission check (the token) runs
//!   on the connection thread *before* the body is read, so an unauthenticated client
//!   cannot make the server buffer a body. A handler that panics answers 500 and the
//!   pool keeps its thread.
//! * **Error answers close carefully**: `Connection: close`, the write side shut down,
//!   then up to [`LINGER`] (or [`LINGER_BYTES`]) of what the client still sends is read
//!   and thrown away before closing, so that a client still sending (a 1 GB header, a
//!   refused body) reads the answer instead of a connection reset.
//!
//! Streams (the pcapng capture) are handed the connection by the handler
//! ([`Answer::Stream`]) and run on the connection's thread until they end; the
//! connection is closed after them.
//!
//! # Why our own loop on `httparse`
//! `tiny_http` (0.12, what this replaced) cannot time out its sockets, ends its accept
//! loop for good on `EMFILE`, buffers a header line without bound and reads request
//! bodies on its worker threads. Candidates, each a minimal "hello" server built alone
//! (`cargo build --release -j1` from an empty target directory, CPU user+sys under
//! `nice` on the shared 2-core machine, load 3–5; size of the stripped binary; crates
//! besides the program's own):
//!
//! | server | clean build CPU | stripped | crates | timeouts | bounded connections |
//! |---|---:|---:|---:|---|---|
//! | std only (no parser) | 0.3 s | 375,648 B | 0 | ours | ours |
//! | **`httparse` 1.10 + this module** | 0.9 s | 385,120 B | 1 | ours | ours |
//! | `tiny_http` 0.12 (before) | 6.2 s | 664,384 B | 5 | none | no (thread per connection) |
//! | `astra` 0.4 (hyper 1, mio) | 14.6 s | 761,584 B | 21 | none (no header or idle timeout) | no |
//!
//! `may_minihttp` brings the `may` coroutine runtime (its own scheduler and stacks) for a
//! control plane of a few requests a second; `rouille` is built on `tiny_http`; `hyper`'s
//! server needs an async runtime (tokio) for its timers. `httparse` is the parser `hyper`
//! itself uses, maintained, `no_std`, no dependencies, fuzzed upstream. The whole
//! `sgswitch` binary: 139 → 135 crates in `Cargo.lock` (tiny_http and its 4 out, httparse
//! in); stripped release binary 4,755,560 → 4,661,912 B (`strip -o`; the "before" is
//! main's binary of a few commits later, so the difference is approximate).
//!
//! Each answered request (also one refused before its body, such as a 401) is handed to
//! [`super::access_log`] with its peer, status and duration once the answer is written.
//!
//! Owns: sockets, HTTP/1.1 framing (heads, bodies, chunked decoding, keep-alive,
//! `Expect: 100-continue`), the limits above, the threads. May not touch: routing,
//! tokens or resources — the [`Handler`] decides every answer.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Connections open at once (the oldest idle one is shed past it).
pub const MAX_CONNECTIONS: usize = 256;
/// Largest request head (request line and header fields), bytes.
pub const MAX_HEAD: usize = 16 << 10;
/// Most header fields in a request head.
pub const MAX_HEADERS: usize = 64;
/// Time for a whole request head to arrive.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Time for a whole request body to arrive, from the end of its head.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a keep-alive connection waits for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Time for a response (or a stream's next write) to be taken by the client.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request-handling threads.
pub const WORKERS: usize = 4;
/// After an error answer: how long what the client still sends is read and discarded.
pub const LINGER: Duration = Duration::from_secs(2);
/// After an error answer: at most this much is read and discarded.
pub const LINGER_BYTES: u64 = 64 << 20;
/// Stack of a connection thread (reading, writing, a capture stream).
const CONN_STACK: usize = 256 << 10;
/// Longest chunk-size line of a chunked body.
const MAX_CHUNK_LINE: usize = 1024;

/// A request: its head, and its body once read.
#[derive(Debug, Clone)]
pub struct Request {
    /// As sent (`GET`, `post`…).
    pub method: String,
    /// The request target (path and query).
    pub target: String,
    /// HTTP/1.1 (else 1.0).
    pub http11: bool,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header field named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A whole response; `Content-Length` and `Connection` are added when it is written.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// A plain-text answer of the server itself (its limits).
    fn text(status: u16, message: &str) -> Response {
        Response {
            status,
            headers: vec![("Content-Type", "text/plain; charset=utf-8".into())],
            body: format!("{message}\n").into_bytes(),
        }
    }
}

/// A stream's body: it gets the connection (with [`WRITE_TIMEOUT`]) and whether the
/// client speaks HTTP/1.1 (chunks), writes its own head, and the connection closes after.
pub type StreamFn = Box<dyn FnOnce(&TcpStream, bool) + Send>;

/// What a handler answers.
pub enum Answer {
    Full(Response),
    Stream(StreamFn),
}

/// Decides every answer; runs on the handler pool, never on a socket.
pub trait Handler: Send + Sync + 'static {
    /// Before the body is read (on the connection's thread; keep it cheap): an answer
    /// that ends the request now (e.g. 401), or `None` to read the body and handle it.
    fn admit(&self, head: &Request) -> Option<Response>;
    /// Largest body this handler accepts (413 beyond, before it is read).
    fn max_body(&self) -> usize;
    /// Answer a whole request.
    fn handle(&self, req: Request) -> Answer;
    /// The answer for a request the server itself refuses (`status`: 400, 408, 413,
    /// 431, 500, 501, 503) with `message`; plain text unless the handler words it.
    fn refusal(&self, status: u16, message: &str) -> Response {
        Response::text(status, message)
    }
}

/// One open connection in the registry.
struct Conn {
    stream: Arc<TcpStream>,
    /// `Some(since)` while idle (no request under way): it may be shed.
    idle_since: Option<Instant>,
}

/// The open connections, and the accept loop's error log state.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Conn>>,
    next_id: AtomicU64,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Conn>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    fn set_idle(&self, id: u64, idle: bool) {
        if let Some(c) = self.lock().get_mut(&id) {
            c.idle_since = idle.then(Instant::now);
        }
    }

    /// Close the connection idle the longest; false if none is idle.
    fn shed_oldest_idle(&self) -> bool {
        let mut conns = self.lock();
        let oldest = conns
            .iter()
            .filter_map(|(id, c)| c.idle_since.map(|t| (t, *id)))
            .min();
        match oldest {
            Some((_, id)) => {
                if let Some(c) = conns.remove(&id) {
                    // Its thread's read returns end-of-file; it drops its Arc and exits.
                    let _ = c.stream.shutdown(Shutdown::Both);
                }
                true
            }
            None => false,
        }
    }

    fn shutdown_all(&self) {
        for c in self.lock().values() {
            let _ = c.stream.shutdown(Shutdown::Both);
        }
    }
}

/// Counters of the listener (for tests and logs).
#[derive(Default, Debug)]
pub struct ListenerStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Idle connections closed to make room (the bound or descriptors).
    pub shed: AtomicU64,
    /// Connections refused with 503 (the bound reached, none idle).
    pub refused: AtomicU64,
    /// Accept errors (`EMFILE`…).
    pub accept_errors: AtomicU64,
    /// Requests that ran out of time (head, body or idle).
    pub timeouts: AtomicU64,
}

/// A running listener; [`Listener::stop`] (or drop) closes every connection and joins
/// the threads.
pub struct Listener {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    registry: Arc<Registry>,
    stats: Arc<ListenerStats>,
    accept: Option<JoinHandle<()>>,
    pool: Option<Pool>,
}

impl Listener {
    /// Bind `addr` and serve `handler`.
    pub fn start(addr: SocketAddr, handler: Arc<dyn Handler>) -> io::Result<Listener> {
        let listener = TcpListener::bind(addr)?;
        let bound = listener.local_addr()?;
        let stopping = Arc::new(AtomicBool::new(false));
        let registry = Arc::new(Registry::default());
        let stats = Arc::new(ListenerStats::default());
        let pool = Pool::start(WORKERS)?;
        let ctx = Ctx {
            handler,
            registry: Arc::clone(&registry),
            stats: Arc::clone(&stats),
            pool: pool.sender(),
            stopping: Arc::clone(&stopping),
        };
        let accept = std::thread::Builder::new()
            .name("sgswitch-api-accept".into())
            .spawn(move || accept_loop(&listener, &ctx))?;
        Ok(Listener {
            addr: bound,
            stopping,
            registry,
            stats,
            accept: Some(accept),
            pool: Some(pool),
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.registry.len()
    }

    pub fn stats(&self) -> &ListenerStats {
        &self.stats
    }

    /// Stop accepting, close every connection, join the accept loop and the pool.
    pub fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        // Wake the accept loop with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        self.registry.shutdown_all();
        let until = Instant::now() + Duration::from_secs(5);
        while self.registry.len() > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
            self.registry.shutdown_all();
        }
        if let Some(p) = self.pool.take() {
            p.join();
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop();
    }
}

// ----- the handler pool ---------------------------------------------------------------

type Job = Box<dyn FnOnce() + Send>;

struct Pool {
    tx: Option<SyncSender<Job>>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    fn start(n: usize) -> io::Result<Pool> {
        // One job per connection at most is queued (its thread waits for the answer).
        let (tx, rx) = sync_channel::<Job>(MAX_CONNECTIONS);
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..n)
            .map(|i| {
                let rx = Arc::clone(&rx);
                std::thread::Builder::new()
                    .name(format!("sgswitch-api-{i}"))
                    .spawn(move || worker(&rx))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Pool {
            tx: Some(tx),
            threads,
        })
    }

    fn sender(&self) -> SyncSender<Job> {
        self.tx.clone().expect("a running pool")
    }

    fn join(mut self) {
        self.tx.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(j) => j,
            Err(_) => return,
        };
        job();
    }
}

// ----- the accept loop ----------------------------------------------------------------

/// What every connection thread shares.
#[derive(Clone)]
struct Ctx {
    handler: Arc<dyn Handler>,
    registry: Arc<Registry>,
    stats: Arc<ListenerStats>,
    pool: SyncSender<Job>,
    stopping: Arc<AtomicBool>,
}

/// Logs a repeated warning at most once per second, with how many were suppressed.
struct RateLimitedLog {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimitedLog {
    fn warn(&mut self, what: &str, e: &io::Error) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.suppressed += 1;
            return;
        }
        tracing::warn!(
            "management API: {what}: {e} ({} more since the last warning)",
            self.suppressed
        );
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// Whether an accept error means the process or system is out of a resource.
fn out_of_resources(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

fn accept_loop(listener: &TcpListener, ctx: &Ctx) {
    let mut log = RateLimitedLog {
        last: None,
        suppressed: 0,
    };
    let mut backoff = Duration::from_millis(10);
    while !ctx.stopping.load(Ordering::Acquire) {
        match listener.accept() {
            Ok((stream, _peer)) => {
                backoff = Duration::from_millis(10);
                if ctx.stopping.load(Ordering::Acquire) {
                    break;
                }
                ctx.stats.accepted.fetch_add(1, Ordering::Relaxed);
                admit(stream, ctx, &mut log);
            }
            Err(e) if out_of_resources(&e) => {
                ctx.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                log.warn(
                    "cannot accept a connection (backing off, shedding idle ones)",
                    &e,
                );
                if ctx.registry.shed_oldest_idle() {
                    ctx.stats.shed.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
            Err(e) => {
                // ECONNABORTED, EINTR, EPROTO…: that connection is gone; go on.
                ctx.stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                if !matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted | io::ErrorKind::Interrupted
                ) {
                    log.warn("accept failed", &e);
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
}

/// Register an accepted connection and start its thread (making room, or refusing it).
fn admit(stream: TcpStream, ctx: &Ctx, log: &mut RateLimitedLog) {
    if ctx.registry.len() >= MAX_CONNECTIONS {
        if ctx.registry.shed_oldest_idle() {
            ctx.stats.shed.fetch_add(1, Ordering::Relaxed);
        } else {
            ctx.stats.refused.fetch_add(1, Ordering::Relaxed);
            refuse(stream, ctx);
            return;
        }
    }
    let stream = Arc::new(stream);
    let id = ctx.registry.next_id.fetch_add(1, Ordering::Relaxed);
    ctx.registry.lock().insert(
        id,
        Conn {
            stream: Arc::clone(&stream),
            idle_since: Some(Instant::now()),
        },
    );
    let c = ctx.clone();
    let spawned = std::thread::Builder::new()
        .name("sgswitch-api-conn".into())
        .stack_size(CONN_STACK)
        .spawn(move || {
            serve_connection(&stream, id, &c);
            c.registry.lock().remove(&id);
        });
    if let Err(e) = spawned {
        // The closure (and the stream) is gone with the error: deregister.
        ctx.registry.lock().remove(&id);
        log.warn("cannot start a connection thread", &e);
    }
}

/// 503 to a connection over the bound, without ever blocking the accept loop.
fn refuse(stream: TcpStream, ctx: &Ctx) {
    let _ = stream.set_nonblocking(true);
    let r = ctx.handler.refusal(503, "Too many connections; try again.");
    let _ = (&stream).write_all(&response_bytes(&r, false));
    let _ = stream.shutdown(Shutdown::Write);
}

// ----- one connection -----------------------------------------------------------------

/// Why reading a request stopped.
#[derive(Debug)]
enum ReadFail {
    /// The client closed (or was shed) before a request began.
    Closed,
    /// Nothing arrived in time before a request began.
    Idle,
    /// The handler's answer to send before closing (its admission check).
    Answer(Response),
    /// A limit or framing error to answer (400, 408, 413, 431, 501; the handler words it)
    /// before closing.
    Limit(u16, String),
    /// The connection broke.
    Io,
}

/// The connection's read side: buffered bytes (a pipelined next request stays here).
struct Reader<'a> {
    stream: &'a TcpStream,
    buf: Vec<u8>,
}

impl Reader<'_> {
    /// Read more into the buffer before `deadline` (at most `max` bytes); Ok(0) at EOF.
    fn fill(&mut self, deadline: Instant, max: usize) -> Result<usize, io::ErrorKind> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut);
        }
        self.stream
            .set_read_timeout(Some(left))
            .map_err(|e| e.kind())?;
        let mut chunk = [0u8; 8192];
        let want = max.clamp(1, chunk.len());
        loop {
            match (&*self.stream).read(&mut chunk[..want]) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Err(io::ErrorKind::TimedOut)
                }
                Err(e) => return Err(e.kind()),
            }
        }
    }
}

fn timeout(what: &str) -> ReadFail {
    ReadFail::Limit(408, format!("The request {what} did not arrive in time."))
}

fn bad_request(message: &str) -> ReadFail {
    ReadFail::Limit(400, message.to_string())
}

/// The end of the head in `buf` (just past its blank line), looking only from `from`.
fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let b = &buf[start..];
    (0..b.len()).find_map(|i| {
        if b[i..].starts_with(b"\r\n\r\n") {
            Some(start + i + 4)
        } else if b[i..].starts_with(b"\n\n") {
            Some(start + i + 2)
        } else {
            None
        }
    })
}

/// Read and parse one request head; leaves the buffer at the start of the body. Waits
/// for the first byte until `wait_until`; the whole head must then arrive by
/// `head_deadline`, or within [`HEAD_TIMEOUT`] of its first byte when `None`.
fn read_head(
    r: &mut Reader,
    wait_until: Instant,
    head_deadline: Option<Instant>,
    ctx: &Ctx,
    id: u64,
) -> Result<Request, ReadFail> {
    let mut started = false;
    let mut deadline = wait_until;
    let mut scanned = 0;
    loop {
        if !started {
            // Blank lines before a request are ignored (RFC 9112 §2.2).
            let blank = r
                .buf
                .iter()
                .take_while(|b| **b == b'\r' || **b == b'\n')
                .count();
            r.buf.drain(..blank);
            if !r.buf.is_empty() {
                started = true;
                ctx.registry.set_idle(id, false);
                deadline = head_deadline.unwrap_or_else(|| Instant::now() + HEAD_TIMEOUT);
            }
        }
        if started {
            if let Some(end) = head_end(&r.buf, scanned) {
                return parse_head(r, end);
            }
            scanned = r.buf.len();
            if r.buf.len() >= MAX_HEAD {
                return Err(too_large_head());
            }
        }
        match r.fill(deadline, MAX_HEAD - r.buf.len()) {
            Ok(0) if !started => return Err(ReadFail::Closed),
            Ok(0) => return Err(ReadFail::Io),
            Ok(_) => {}
            Err(io::ErrorKind::TimedOut) if !started => return Err(ReadFail::Idle),
            Err(io::ErrorKind::TimedOut) => return Err(timeout("head")),
            Err(_) => return Err(ReadFail::Io),
        }
    }
}

fn too_large_head() -> ReadFail {
    ReadFail::Limit(
        431,
        format!("Request header fields larger than {MAX_HEAD} bytes."),
    )
}

fn parse_head(r: &mut Reader, end: usize) -> Result<Request, ReadFail> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut p = httparse::Request::new(&mut fields);
    match p.parse(&r.buf[..end]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad_request("Malformed request head.")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(ReadFail::Limit(
                431,
                format!("More than {MAX_HEADERS} header fields."),
            ))
        }
        Err(e) => return Err(bad_request(&format!("Malformed request head: {e}."))),
    }
    let req = Request {
        method: p.method.unwrap_or_default().to_string(),
        target: p.path.unwrap_or_default().to_string(),
        http11: p.version == Some(1),
        headers: p
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).trim().to_string(),
                )
            })
            .collect(),
        body: Vec::new(),
    };
    r.buf.drain(..end);
    Ok(req)
}

/// How the body is framed.
enum Framing {
    None,
    Length(usize),
    Chunked,
}

fn framing(req: &Request, max: usize) -> Result<Framing, ReadFail> {
    let te: Vec<&str> = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    let lengths: Vec<&str> = req
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.as_str())
        .collect();
    if !te.is_empty() {
        if !lengths.is_empty() {
            return Err(bad_request(
                "Both Transfer-Encoding and Content-Length given.",
            ));
        }
        return match te.as_slice() {
            [t] if t.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
            _ => Err(ReadFail::Limit(
                501,
                "Only the chunked transfer coding is supported.".into(),
            )),
        };
    }
    let mut n: Option<u64> = None;
    for l in lengths {
        let v: u64 = l
            .parse()
            .map_err(|_| bad_request("Invalid Content-Length."))?;
        if n.is_some_and(|n| n != v) {
            return Err(bad_request("Conflicting Content-Length values."));
        }
        n = Some(v);
    }
    match n {
        None | Some(0) => Ok(Framing::None),
        Some(n) if n > max as u64 => Err(body_too_large(max)),
        Some(n) => Ok(Framing::Length(n as usize)),
    }
}

fn body_too_large(max: usize) -> ReadFail {
    ReadFail::Limit(413, format!("Request body larger than {max} bytes."))
}

/// Read the body framed by `f`, at most `max` bytes, before `deadline`.
fn read_body(
    r: &mut Reader,
    f: Framing,
    max: usize,
    deadline: Instant,
) -> Result<Vec<u8>, ReadFail> {
    let more = |r: &mut Reader, want: usize| -> Result<(), ReadFail> {
        match r.fill(deadline, want) {
            Ok(0) => Err(ReadFail::Io),
            Ok(_) => Ok(()),
            Err(io::ErrorKind::TimedOut) => Err(timeout("body")),
            Err(_) => Err(ReadFail::Io),
        }
    };
    match f {
        Framing::None => Ok(Vec::new()),
        Framing::Length(n) => {
            while r.buf.len() < n {
                let want = n - r.buf.len();
                more(r, want)?;
            }
            let rest = r.buf.split_off(n);
            Ok(std::mem::replace(&mut r.buf, rest))
        }
        Framing::Chunked => {
            let mut body = Vec::new();
            let mut at = 0;
            loop {
                // The chunk-size line.
                let eol = loop {
                    if let Some(i) = r.buf[at..].iter().position(|b| *b == b'\n') {
                        break at + i;
                    }
                    if r.buf.len() - at > MAX_CHUNK_LINE {
                        return Err(bad_request("Chunk-size line too long."));
                    }
                    more(r, MAX_CHUNK_LINE)?;
                };
                let line = String::from_utf8_lossy(&r.buf[at..eol]);
                let size = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size, 16)
                    .ok()
                    .filter(|_| !size.is_empty() && size.len() <= 8)
                    .ok_or_else(|| bad_request("Invalid chunk size."))?;
                at = eol + 1;
                if size == 0 {
                    // Trailer fields up to the blank line (bounded as a head).
                    loop {
                        if let Some(i) = r.buf[at..].iter().position(|b| *b == b'\n') {
                            let blank = r.buf[at..at + i].iter().all(|b| *b == b'\r');
                            at += i + 1;
                            if blank {
                                r.buf.drain(..at);
                                return Ok(body);
                            }
                            continue;
                        }
                        if r.buf.len() - at > MAX_HEAD {
                            return Err(too_large_head());
                        }
                        more(r, MAX_HEAD)?;
                    }
                }
                if body.len() + size > max {
                    return Err(body_too_large(max));
                }
                // The data and its line end.
                while r.buf.len() < at + size + 1 {
                    let want = at + size + 2 - r.buf.len();
                    more(r, want)?;
                }
                body.extend_from_slice(&r.buf[at..at + size]);
                at += size;
                if r.buf[at] == b'\r' {
                    at += 1;
                    while r.buf.len() <= at {
                        more(r, 1)?;
                    }
                }
                if r.buf[at] != b'\n' {
                    return Err(bad_request("Malformed chunk."));
                }
                at += 1;
                // Keep the buffer small: drop what was decoded.
                r.buf.drain(..at);
                at = 0;
            }
        }
    }
}

/// Whether the connection stays open after answering `req`.
fn keep_alive(req: &Request) -> bool {
    let conn = req.header("Connection").unwrap_or("");
    let has = |t: &str| conn.split(',').any(|v| v.trim().eq_ignore_ascii_case(t));
    if req.http11 {
        !has("close")
    } else {
        has("keep-alive")
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

fn response_bytes(r: &Response, keep: bool) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (k, v) in &r.headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    if r.status != 204 && r.status >= 200 {
        head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    }
    head.push_str(if keep {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let mut out = head.into_bytes();
    out.extend_from_slice(&r.body);
    out
}

/// Answer and close: shut the write side, then read and discard what the client still
/// sends for a while (so it reads the answer rather than a reset).
fn answer_and_close(stream: &TcpStream, r: &Response) {
    let _ = (&*stream).write_all(&response_bytes(r, false));
    let _ = stream.shutdown(Shutdown::Write);
    let until = Instant::now() + LINGER;
    let mut sink = [0u8; 8192];
    let mut total = 0u64;
    while total < LINGER_BYTES {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match (&*stream).read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n as u64,
        }
    }
}

/// Run the handler for `req` on the pool and wait for its answer.
fn handle_on_pool(req: Request, ctx: &Ctx) -> Answer {
    let (tx, rx) = sync_channel::<Answer>(1);
    let handler = Arc::clone(&ctx.handler);
    let job: Job = Box::new(move || {
        let a = catch_unwind(AssertUnwindSafe(|| handler.handle(req))).unwrap_or_else(|_| {
            tracing::error!("management API: a request handler panicked");
            Answer::Full(handler.refusal(500, "Internal error."))
        });
        let _ = tx.send(a);
    });
    let stopping = || Answer::Full(ctx.handler.refusal(503, "The server is stopping."));
    if ctx.pool.send(job).is_err() {
        return stopping();
    }
    rx.recv().unwrap_or_else(|_| stopping())
}

fn serve_connection(stream: &TcpStream, id: u64, ctx: &Ctx) {
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let mut r = Reader {
        stream,
        buf: Vec::new(),
    };
    // The first request's head must come within HEAD_TIMEOUT of the connection; a
    // keep-alive connection waits IDLE_TIMEOUT for the next one.
    let accepted = Instant::now() + HEAD_TIMEOUT;
    let (mut wait_until, mut head_deadline) = (accepted, Some(accepted));
    let peer = stream.peer_addr().ok();
    loop {
        // The request line, for the access log (also of an answer given before the body).
        let mut line: Option<(String, String)> = None;
        if ctx.stopping.load(Ordering::Acquire) {
            return;
        }
        ctx.registry.set_idle(id, true);
        let result = read_head(&mut r, wait_until, head_deadline, ctx, id).and_then(|head| {
            line = Some((head.method.clone(), head.target.clone()));
            if let Some(early) = ctx.handler.admit(&head) {
                return Err(ReadFail::Answer(early));
            }
            let max = ctx.handler.max_body();
            let f = framing(&head, max)?;
            if !matches!(f, Framing::None)
                && head.http11
                && head
                    .header("Expect")
                    .is_some_and(|e| e.eq_ignore_ascii_case("100-continue"))
            {
                (&*stream)
                    .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                    .map_err(|_| ReadFail::Io)?;
            }
            let body = read_body(&mut r, f, max, Instant::now() + BODY_TIMEOUT)?;
            Ok(Request { body, ..head })
        });
        let req = match result {
            Ok(req) => req,
            Err(ReadFail::Answer(a)) => {
                if let Some((m, t)) = &line {
                    super::access_log::request(peer, m, t, a.status, Duration::ZERO);
                }
                answer_and_close(stream, &a);
                return;
            }
            Err(ReadFail::Limit(status, message)) => {
                if status == 408 {
                    ctx.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                }
                answer_and_close(stream, &ctx.handler.refusal(status, &message));
                return;
            }
            Err(ReadFail::Idle) => {
                ctx.stats.timeouts.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(ReadFail::Closed | ReadFail::Io) => return,
        };
        let keep = keep_alive(&req) && !ctx.stopping.load(Ordering::Acquire);
        let http11 = req.http11;
        let (method, target, started) = (req.method.clone(), req.target.clone(), Instant::now());
        match handle_on_pool(req, ctx) {
            Answer::Full(resp) => {
                let written = (&*stream).write_all(&response_bytes(&resp, keep));
                super::access_log::request(peer, &method, &target, resp.status, started.elapsed());
                if written.is_err() || !keep {
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
            }
            Answer::Stream(f) => {
                super::access_log::request(peer, &method, &target, 200, started.elapsed());
                f(stream, http11);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
        (wait_until, head_deadline) = (Instant::now() + IDLE_TIMEOUT, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)], http11: bool) -> Request {
        Request {
            method: "GET".into(),
            target: "/".into(),
            http11,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body: Vec::new(),
        }
    }

    #[test]
    fn head_end_is_found_across_reads() {
        let b = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest";
        assert_eq!(head_end(b, 0), Some(b.len() - 4));
        assert_eq!(head_end(b, 26), Some(b.len() - 4));
        assert_eq!(head_end(b"GET / HTTP/1.0\n\n", 10), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost", 0), None);
    }

    #[test]
    fn keep_alive_rules() {
        assert!(keep_alive(&req(&[], true)));
        assert!(!keep_alive(&req(&[("connection", "Close")], true)));
        assert!(!keep_alive(&req(&[], false)));
        assert!(keep_alive(&req(&[("Connection", "keep-alive")], false)));
    }

    #[test]
    fn body_framing() {
        let f = |h: &[(&str, &str)]| framing(&req(h, true), 100);
        assert!(matches!(f(&[]), Ok(Framing::None)));
        assert!(matches!(
            f(&[("Content-Length", "10")]),
            Ok(Framing::Length(10))
        ));
        assert!(matches!(
            f(&[("Transfer-Encoding", "chunked")]),
            Ok(Framing::Chunked)
        ));
        let status = |r: Result<Framing, ReadFail>| match r {
            Err(ReadFail::Limit(s, _)) => s,
            _ => 0,
        };
        assert_eq!(status(f(&[("Content-Length", "101")])), 413);
        assert_eq!(status(f(&[("Content-Length", "x")])), 400);
        assert_eq!(
            status(f(&[("Content-Length", "1"), ("Content-Length", "2")])),
            400
        );
        assert_eq!(status(f(&[("Transfer-Encoding", "gzip")])), 501);
        assert_eq!(
            status(f(&[
                ("Transfer-Encoding", "chunked"),
                ("Content-Length", "2")
            ])),
            400
        );
    }

    #[test]
    fn responses() {
        let r = Response {
            status: 204,
            headers: vec![("X-A", "b".into())],
            body: Vec::new(),
        };
        assert_eq!(
            String::from_utf8(response_bytes(&r, true)).unwrap(),
            "HTTP/1.1 204 No Content\r\nX-A: b\r\nConnection: keep-alive\r\n\r\n"
        );
        let r = Response::text(431, "big");
        let s = String::from_utf8(response_bytes(&r, false)).unwrap();
        assert!(s.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(s.contains("Content-Length: 4\r\nConnection: close\r\n\r\nbig\n"));
    }
}
