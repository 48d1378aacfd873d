//! kubectl's SPDY/3.1 transport (draft 3.1 of the SPDY protocol): port-forward over a
//! plain HTTP upgrade (`Upgrade: SPDY/3.1`, kubectl up to 1.30) or tunnelled in a
//! WebSocket (`SPDY/3.1+portforward.k8s.io`, kubectl 1.31+), and exec (remote command
//! protocol `v4.channel.k8s.io`, kubectl up to 1.29; newer ones use WebSockets).
//!
//! The API server ends the SPDY session itself and carries what the streams hold to
//! the node agent over the agent's WebSocket protocols, so agents speak one kind of
//! protocol. For port-forward, kubectl opens two streams per connection, told apart
//! by their headers: `streamtype: error` and `streamtype: data`, both with `port` and
//! `requestid`; the data stream carries the bytes both ways, the error stream an
//! error message, and its end (FIN) tells kubectl the connection is over. For exec,
//! one stream per standard stream (`error`, `stdin`, `stdout`, `stderr`, `resize`).
//!
//! Parts: the header-block compression ([`Inflater`], [`Deflater`]: zlib with
//! SPDY's preset dictionary one way, stored blocks the other), the frame codec
//! ([`Frame`], [`parse`], [`Frame::encode`]), the session ([`serve`]: replies, routing,
//! pings) and its two applications ([`port_forward`], [`exec`]).
//! Flow control (WINDOW_UPDATE) is not enforced by kubectl's SPDY library, and is
//! not here: the agent connection's own back-pressure bounds what is in flight.

use bytes::Bytes;
use futures::future::BoxFuture;
use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};
use std::collections::HashMap;
use std::sync::LazyLock;
use tokio::sync::mpsc;

/// What goes wrong in a SPDY session: the peer broke the protocol.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpdyError {
    #[error("SPDY: unsupported version {0} (only 3 is spoken)")]
    Version(u16),
    #[error("SPDY: a frame of {0} bytes is larger than the {MAX_FRAME} allowed")]
    TooLarge(usize),
    #[error("SPDY: a malformed {0} frame")]
    Malformed(&'static str),
    #[error("SPDY: header block: {0}")]
    Headers(String),
}

/// The largest frame accepted: kubectl sends data in 32 KiB pieces.
pub const MAX_FRAME: usize = 1 << 20;

// === header compression ===

/// SPDY/3's zlib dictionary (the draft's section 2.6.10.1): length-prefixed header
/// names and values, then common value fragments.
static DICTIONARY: LazyLock<Vec<u8>> = LazyLock::new(|| {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const CODES: &str = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505";
    const TAIL: &str = "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request\
        401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented\
        503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 \
        Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,\
        application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=\
        gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    let mut d = Vec::with_capacity(1423);
    for w in WORDS {
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(CODES.as_bytes());
    d.extend_from_slice(TAIL.as_bytes());
    d
});

/// Ring size of the inflater: deflate's whole window.
const WINDOW: usize = 32 * 1024;

/// Decompresses the peer's header blocks: one zlib stream over the whole session,
/// with SPDY's dictionary preset, flushed at the end of every block.
pub struct Inflater {
    state: Box<DecompressorOxide>,
    ring: Vec<u8>,
    pos: usize,
    /// zlib header bytes still to read (2, then 4 more with a dictionary id).
    header: Vec<u8>,
    header_done: bool,
}

impl Default for Inflater {
    fn default() -> Self {
        // The dictionary sits just before the first output, as if it had been
        // decompressed already, so back-references into it resolve.
        let mut ring = vec![0u8; WINDOW];
        let dict = &DICTIONARY[..];
        ring[..dict.len()].copy_from_slice(dict);
        Self { state: Box::default(), ring, pos: dict.len(), header: Vec::new(), header_done: false }
    }
}

impl Inflater {
    /// The header bytes one frame's compressed block holds.
    pub fn inflate(&mut self, mut input: &[u8]) -> Result<Vec<u8>, SpdyError> {
        let bad = |m: &str| SpdyError::Headers(m.to_string());
        if !self.header_done {
            while self.header.len() < 2 && !input.is_empty() {
                self.header.push(input[0]);
                input = &input[1..];
            }
            if self.header.len() < 2 {
                return Ok(Vec::new());
            }
            let (cmf, flg) = (self.header[0], self.header[1]);
            if cmf & 0x0f != 8 || (u16::from(cmf) << 8 | u16::from(flg)) % 31 != 0 {
                return Err(bad("not a zlib stream"));
            }
            let want = if flg & 0x20 != 0 { 6 } else { 2 };
            while self.header.len() < want && !input.is_empty() {
                self.header.push(input[0]);
                input = &input[1..];
            }
            if self.header.len() < want {
                return Ok(Vec::new());
            }
            if want == 6 {
                let id = u32::from_be_bytes([self.header[2], self.header[3], self.header[4], self.header[5]]);
                if id != adler2::adler32_slice(&DICTIONARY) {
                    return Err(bad("compressed with a dictionary other than SPDY/3's"));
                }
            }
            self.header_done = true;
        }
        let mut out = Vec::new();
        let flags = inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
        loop {
            let (status, used, written) = decompress(&mut self.state, input, &mut self.ring, self.pos, flags);
            out.extend_from_slice(&self.ring[self.pos..self.pos + written]);
            self.pos = (self.pos + written) % WINDOW;
            input = &input[used..];
            if out.len() > MAX_FRAME {
                return Err(SpdyError::TooLarge(out.len()));
            }
            if used == 0 && written == 0 && status != TINFLStatus::NeedsMoreInput {
                return Err(bad("the compressed stream makes no progress"));
            }
            match status {
                TINFLStatus::HasMoreOutput => continue,
                TINFLStatus::NeedsMoreInput if input.is_empty() => return Ok(out),
                TINFLStatus::NeedsMoreInput if used > 0 || written > 0 => continue,
                TINFLStatus::NeedsMoreInput => return Err(bad("the compressed stream makes no progress")),
                TINFLStatus::Done => return Err(bad("the compressed stream ended")),
                _ => return Err(bad("corrupt compressed data")),
            }
        }
    }
}

/// Compresses this side's header blocks: a zlib stream of stored (uncompressed)
/// deflate blocks, each header block ended by a sync flush. Valid for any zlib reader; SPDY's
/// dictionary is not needed to read it, so none is announced.
#[derive(Default)]
pub struct Deflater {
    started: bool,
}

impl Deflater {
    pub fn deflate(&mut self, block: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(block.len() + 8);
        if !self.started {
            // CMF 0x78 (deflate, 32 KiB window), FLG 0x01: no dictionary, check bits.
            out.extend_from_slice(&[0x78, 0x01]);
            self.started = true;
        }
        // Each piece a stored block, then an empty one: zlib's sync-flush marker.
        // Without it Go's reader, having copied a block out, reads on for the next
        // block header past the frame's end, and its stream is broken for good.
        for piece in block.chunks(0xffff).chain([&[][..]]) {
            let len = piece.len() as u16;
            out.push(0x00); // not final, stored
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(&(!len).to_le_bytes());
            out.extend_from_slice(piece);
        }
        out
    }
}

/// Headers as (lowercase name, value) pairs; SPDY joins repeated values with NUL.
pub type Headers = Vec<(String, String)>;

fn encode_headers(headers: &[(&str, &str)]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (k, v) in headers {
        b.extend_from_slice(&(k.len() as u32).to_be_bytes());
        b.extend_from_slice(k.as_bytes());
        b.extend_from_slice(&(v.len() as u32).to_be_bytes());
        b.extend_from_slice(v.as_bytes());
    }
    b
}

fn decode_headers(b: &[u8]) -> Result<Headers, SpdyError> {
    let bad = |m: &str| SpdyError::Headers(m.to_string());
    let mut r = Reader(b);
    let n = r.u32().ok_or_else(|| bad("truncated"))?;
    let mut out = Vec::new();
    for _ in 0..n {
        let name = r.bytes().ok_or_else(|| bad("truncated name"))?;
        let value = r.bytes().ok_or_else(|| bad("truncated value"))?;
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        out.push((name, String::from_utf8_lossy(value).into_owned()));
    }
    Ok(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u32(&mut self) -> Option<u32> {
        let (head, rest) = self.0.split_first_chunk::<4>()?;
        self.0 = rest;
        Some(u32::from_be_bytes(*head))
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

// === frames ===

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;
const FLAG_FIN: u8 = 1;

/// RST_STREAM status: the stream was malformed.
pub const PROTOCOL_ERROR: u32 = 1;

/// A frame, decoded (headers decompressed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    SynStream {
        id: u32,
        fin: bool,
        headers: Headers,
    },
    SynReply {
        id: u32,
        fin: bool,
    },
    RstStream {
        id: u32,
        status: u32,
    },
    Ping(u32),
    GoAway,
    Data {
        id: u32,
        fin: bool,
        data: Bytes,
    },
    /// SETTINGS, HEADERS, WINDOW_UPDATE and unknown control frames: nothing to do.
    Ignored,
}

/// The first frame in `buf`, and how many bytes it took; None until a whole frame
/// has arrived.
pub fn parse(buf: &[u8], inflater: &mut Inflater) -> Result<Option<(Frame, usize)>, SpdyError> {
    let Some(head) = buf.first_chunk::<8>() else { return Ok(None) };
    let len = usize::from(head[5]) << 16 | usize::from(head[6]) << 8 | usize::from(head[7]);
    if len > MAX_FRAME {
        return Err(SpdyError::TooLarge(len));
    }
    let Some(payload) = buf.get(8..8 + len) else { return Ok(None) };
    let flags = head[4];
    let word = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if word & 0x8000_0000 == 0 {
        let data = Bytes::copy_from_slice(payload);
        return Ok(Some((Frame::Data { id: word, fin: flags & FLAG_FIN != 0, data }, 8 + len)));
    }
    let version = (word >> 16) as u16 & 0x7fff;
    if version != 3 {
        return Err(SpdyError::Version(version));
    }
    let id_at = |at: usize| payload.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff);
    let frame = match word as u16 {
        SYN_STREAM => {
            let id = id_at(0).filter(|_| payload.len() >= 10).ok_or(SpdyError::Malformed("SYN_STREAM"))?;
            let headers = decode_headers(&inflater.inflate(&payload[10..])?)?;
            Frame::SynStream { id, fin: flags & FLAG_FIN != 0, headers }
        }
        SYN_REPLY | HEADERS => {
            // Decompressed even though unused: the zlib stream must stay in step.
            id_at(0).ok_or(SpdyError::Malformed("HEADERS"))?;
            inflater.inflate(&payload[4..])?;
            Frame::Ignored
        }
        RST_STREAM => {
            let id = id_at(0).ok_or(SpdyError::Malformed("RST_STREAM"))?;
            let status = payload.get(4..8).ok_or(SpdyError::Malformed("RST_STREAM"))?;
            Frame::RstStream { id, status: u32::from_be_bytes([status[0], status[1], status[2], status[3]]) }
        }
        PING => {
            let b = payload.get(..4).ok_or(SpdyError::Malformed("PING"))?;
            Frame::Ping(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        }
        GOAWAY => Frame::GoAway,
        SETTINGS | WINDOW_UPDATE => Frame::Ignored,
        _ => Frame::Ignored,
    };
    Ok(Some((frame, 8 + len)))
}

impl Frame {
    /// The frame's bytes; header blocks go through `deflater`.
    pub fn encode(&self, deflater: &mut Deflater) -> Vec<u8> {
        let control = |kind: u16, flags: u8, payload: &[u8]| {
            let mut out = Vec::with_capacity(8 + payload.len());
            out.extend_from_slice(&(0x8003u16).to_be_bytes());
            out.extend_from_slice(&kind.to_be_bytes());
            out.push(flags);
            out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
            out.extend_from_slice(payload);
            out
        };
        let fin = |f: bool| if f { FLAG_FIN } else { 0 };
        match self {
            Frame::SynReply { id, fin: f } => {
                let mut p = id.to_be_bytes().to_vec();
                p.extend_from_slice(&deflater.deflate(&encode_headers(&[])));
                control(SYN_REPLY, fin(*f), &p)
            }
            Frame::SynStream { id, fin: f, headers } => {
                let mut p = id.to_be_bytes().to_vec();
                p.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
                let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                p.extend_from_slice(&deflater.deflate(&encode_headers(&pairs)));
                control(SYN_STREAM, fin(*f), &p)
            }
            Frame::RstStream { id, status } => {
                let mut p = id.to_be_bytes().to_vec();
                p.extend_from_slice(&status.to_be_bytes());
                control(RST_STREAM, 0, &p)
            }
            Frame::Ping(id) => control(PING, 0, &id.to_be_bytes()),
            Frame::GoAway => control(GOAWAY, 0, &[0; 8]),
            Frame::Data { id, fin: f, data } => {
                let mut out = Vec::with_capacity(8 + data.len());
                out.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
                out.push(fin(*f));
                out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                out.extend_from_slice(data);
                out
            }
            Frame::Ignored => Vec::new(),
        }
    }
}

// === the session ===

/// A stream the client opened: its headers, and what it sends on it (the receiver
/// ends at the client's FIN or reset).
pub struct ClientStream {
    pub id: u32,
    pub headers: Headers,
    pub input: mpsc::Receiver<Bytes>,
}

impl ClientStream {
    /// A header's value (names are lowercase in SPDY).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// Writes to the client's streams (frames are encoded in order by one writer).
#[derive(Clone)]
pub struct Sender(mpsc::Sender<Frame>);

impl Sender {
    /// Sends `data` on stream `id`; false once the session is gone.
    pub async fn data(&self, id: u32, data: Bytes) -> bool {
        self.0.send(Frame::Data { id, fin: false, data }).await.is_ok()
    }

    /// Ends this side of stream `id`.
    pub async fn finish(&self, id: u32) {
        let _ = self.0.send(Frame::Data { id, fin: true, data: Bytes::new() }).await;
    }

    /// Refuses stream `id`.
    pub async fn reset(&self, id: u32) {
        let _ = self.0.send(Frame::RstStream { id, status: PROTOCOL_ERROR }).await;
    }
}

/// What a session does with the streams the client opens: it receives each
/// ([`ClientStream`]) and answers through the [`Sender`]. It runs as a task of its
/// own, stopped when the session ends.
pub type App = Box<dyn FnOnce(mpsc::Receiver<ClientStream>, Sender) -> BoxFuture<'static, ()> + Send>;

/// Runs a SPDY session: chunks of the client's byte stream arrive on `from_client`,
/// encoded frames leave on `to_client`. Every stream the client opens is accepted
/// (SYN_REPLY) and handed to `app`; data is routed to its stream; pings are answered.
/// Ends when the client goes away or says GOAWAY, or with the error when it breaks
/// the protocol.
pub async fn serve(
    mut from_client: mpsc::Receiver<Bytes>,
    to_client: mpsc::Sender<Bytes>,
    app: App,
) -> Result<(), SpdyError> {
    let (frames_tx, mut frames_rx) = mpsc::channel::<Frame>(64);
    let writer = tokio::spawn(async move {
        let mut deflater = Deflater::default();
        while let Some(f) = frames_rx.recv().await {
            if to_client.send(Bytes::from(f.encode(&mut deflater))).await.is_err() {
                break;
            }
        }
    });
    let (opened_tx, opened_rx) = mpsc::channel::<ClientStream>(16);
    let app = tokio::spawn(app(opened_rx, Sender(frames_tx.clone())));
    let mut inflater = Inflater::default();
    let mut buf: Vec<u8> = Vec::new();
    // Where each open stream's data goes; removed at the client's FIN or reset.
    let mut inputs: HashMap<u32, mpsc::Sender<Bytes>> = HashMap::new();
    let result = 'session: loop {
        let Some(chunk) = from_client.recv().await else { break Ok(()) };
        buf.extend_from_slice(&chunk);
        loop {
            let (frame, used) = match parse(&buf, &mut inflater) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => break 'session Err(e),
            };
            buf.drain(..used);
            match frame {
                Frame::SynStream { id, fin, headers } => {
                    let _ = frames_tx.send(Frame::SynReply { id, fin: false }).await;
                    let (tx, input) = mpsc::channel(16);
                    if !fin {
                        inputs.insert(id, tx);
                    }
                    if opened_tx.send(ClientStream { id, headers, input }).await.is_err() {
                        break 'session Ok(());
                    }
                }
                Frame::Data { id, fin, data } => {
                    if !data.is_empty()
                        && let Some(tx) = inputs.get(&id)
                        && tx.send(data).await.is_err()
                    {
                        inputs.remove(&id);
                    }
                    if fin {
                        inputs.remove(&id);
                    }
                }
                Frame::RstStream { id, .. } => {
                    inputs.remove(&id);
                }
                Frame::Ping(id) => {
                    let _ = frames_tx.send(Frame::Ping(id)).await;
                }
                Frame::GoAway => break 'session Ok(()),
                Frame::SynReply { .. } | Frame::Ignored => {}
            }
        }
        if buf.len() > MAX_FRAME + 8 {
            break Err(SpdyError::TooLarge(buf.len()));
        }
    };
    app.abort();
    drop(frames_tx);
    let _ = writer.await;
    result
}

// === port forwarding ===

/// One forwarded connection's end at the node: bytes for the pod go in `input`;
/// `output` yields what the pod sent, and an error message last if it failed.
pub struct Forward {
    pub input: mpsc::Sender<Bytes>,
    pub output: mpsc::Receiver<Result<Bytes, String>>,
}

/// Opens a connection to a port of the pod.
pub type Connect = std::sync::Arc<dyn Fn(u16) -> BoxFuture<'static, Result<Forward, String>> + Send + Sync>;

/// kubectl's port-forward: two streams per connection (`streamtype` `error` and
/// `data`, the same `port` and `requestid`); each pair becomes a connection at the
/// node.
pub fn port_forward(connect: Connect) -> App {
    Box::new(move |mut opened, out| {
        Box::pin(async move {
            // Streams waiting for their partner, by request id.
            let mut waiting: HashMap<String, ClientStream> = HashMap::new();
            let mut tasks = tokio::task::JoinSet::new();
            while let Some(stream) = opened.recv().await {
                let port = stream.header("port").and_then(|p| p.parse::<u16>().ok()).filter(|&p| p > 0);
                let kind = stream.header("streamtype").map(str::to_string);
                let (Some(port), Some("data" | "error")) = (port, kind.as_deref()) else {
                    out.reset(stream.id).await;
                    continue;
                };
                // kubectl before 1.11 sent no request id: one connection per session then.
                let key = stream.header("requestid").unwrap_or("").to_string();
                let Some(partner) = waiting.remove(&key) else {
                    waiting.insert(key, stream);
                    continue;
                };
                let (data, error) = if kind.as_deref() == Some("data") { (stream, partner) } else { (partner, stream) };
                if data.header("streamtype") != Some("data") || error.header("streamtype") != Some("error") {
                    out.reset(data.id.max(error.id)).await;
                    continue;
                }
                tasks.spawn(carry(connect.clone(), port, data, error.id, out.clone()));
            }
        })
    })
}

/// One connection: opens it at the node, then copies until either side ends; the
/// error stream carries a failure's message, and both streams end with FIN. kubectl
/// ending its data stream ends the connection, as the kubelet's forward ends when
/// either direction does.
async fn carry(connect: Connect, port: u16, mut data: ClientStream, error: u32, out: Sender) {
    let mut failure = None;
    match connect(port).await {
        Err(e) => failure = Some(e),
        Ok(Forward { input: to_pod, mut output }) => loop {
            tokio::select! {
                from_client = data.input.recv() => match from_client {
                    Some(b) => if to_pod.send(b).await.is_err() { break },
                    None => break,
                },
                from_pod = output.recv() => match from_pod {
                    Some(Ok(b)) => if !out.data(data.id, b).await { return },
                    Some(Err(e)) => { failure = Some(e); break }
                    None => break,
                },
            }
        },
    }
    if let Some(message) = failure {
        out.data(error, Bytes::from(message)).await;
    }
    out.finish(data.id).await;
    out.finish(error).await;
}

// === exec ===

/// The streams of an exec session, as the request's query asks for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl ExecStreams {
    /// How many streams the client opens: error, the asked-for ones, and resize with
    /// a terminal (whose stderr goes to stdout, so no stderr stream then).
    fn expected(&self) -> usize {
        1 + usize::from(self.stdin)
            + usize::from(self.stdout)
            + usize::from(self.stderr && !self.tty)
            + usize::from(self.tty)
    }
}

/// An exec session at the node, in the WebSocket channel protocol: (channel, bytes)
/// both ways: 0 stdin, 1 stdout, 2 stderr, 3 the final Status, 4 resize; `[255, 0]`
/// closes stdin.
pub struct ExecSession {
    pub input: mpsc::Sender<(u8, Bytes)>,
    pub output: mpsc::Receiver<(u8, Bytes)>,
}

/// Opens the exec session at the node.
pub type ExecConnect = BoxFuture<'static, Result<ExecSession, String>>;

/// kubectl's exec over SPDY (remote command protocol `v4.channel.k8s.io`, kubectl up to
/// 1.29): one stream per standard stream (`streamtype` `error`, `stdin`, `stdout`,
/// `stderr`, `resize`), carried to the node's WebSocket channels; the error stream gets
/// the final Status.
pub fn exec(streams: ExecStreams, connect: ExecConnect) -> App {
    Box::new(move |mut opened, out| {
        Box::pin(async move {
            let mut by_kind: HashMap<String, ClientStream> = HashMap::new();
            // The kubelet waits this long for the client's streams too.
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
            while by_kind.len() < streams.expected() {
                let Ok(Some(stream)) = tokio::time::timeout_at(deadline, opened.recv()).await else { return };
                match stream.header("streamtype") {
                    Some(k @ ("error" | "stdin" | "stdout" | "stderr" | "resize")) if !by_kind.contains_key(k) => {
                        by_kind.insert(k.to_string(), stream);
                    }
                    _ => out.reset(stream.id).await,
                }
            }
            let id = |k: &str| by_kind.get(k).map(|s| s.id);
            let (error, stdout, stderr) = (id("error"), id("stdout"), id("stderr"));
            let finish = async |out: &Sender| {
                for s in [stdout, stderr, error].into_iter().flatten() {
                    out.finish(s).await;
                }
            };
            let session = match connect.await {
                Ok(s) => s,
                Err(e) => {
                    if let Some(error) = error {
                        let status = serde_json::json!({"metadata": {}, "status": "Failure", "message": e, "reason": "InternalError", "code": 500});
                        out.data(error, Bytes::from(status.to_string())).await;
                    }
                    finish(&out).await;
                    return;
                }
            };
            // The client's stdin and resize streams, into the node's channels 0 and 4.
            for (kind, ch) in [("stdin", 0u8), ("resize", 4u8)] {
                if let Some(mut stream) = by_kind.remove(kind) {
                    let input = session.input.clone();
                    tokio::spawn(async move {
                        while let Some(b) = stream.input.recv().await {
                            if input.send((ch, b)).await.is_err() {
                                return;
                            }
                        }
                        // The client's end of stdin: the command sees end of input.
                        if ch == 0 {
                            let _ = input.send((255, Bytes::from_static(&[0]))).await;
                        }
                    });
                }
            }
            let mut output = session.output;
            while let Some((ch, b)) = output.recv().await {
                let to = match ch {
                    1 => stdout,
                    2 => stderr.or(stdout),
                    3 => error,
                    _ => None,
                };
                if let Some(to) = to
                    && !out.data(to, b).await
                {
                    return;
                }
            }
            finish(&out).await;
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Two header blocks as Go's SPDY framer (and Python's zlib) compress them:
    /// zlib with SPDY/3's dictionary, best compression, a sync flush after each.
    const ERROR_BLOCK: &str =
        "78f9e3c6a7c202253a703a2b294a4dcc851625aca9a0808614cb45e01c6061606100a4398b20d198094ade8c0600000000ffff";
    const DATA_BLOCK: &str = "c2aa19540e2512d60b000000ffff";

    #[test]
    fn the_dictionary_is_spdy3s() {
        assert_eq!(DICTIONARY.len(), 1423);
        assert_eq!(adler2::adler32_slice(&DICTIONARY), 0xe3c6a7c2, "the id zlib streams announce for it");
        assert!(DICTIONARY.starts_with(b"\0\0\0\x07options\0\0\0\x04head") && DICTIONARY.ends_with(b",*,enq=0."));
    }

    #[test]
    fn header_blocks_from_a_real_zlib_decompress_in_sequence() {
        let mut inf = Inflater::default();
        let first = decode_headers(&inf.inflate(&hex(ERROR_BLOCK)).unwrap()).unwrap();
        let pairs = |h: &[(&str, &str)]| h.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Headers>();
        assert_eq!(first, pairs(&[("streamtype", "error"), ("port", "8080"), ("requestid", "0")]));
        // The second block refers back into the first: the stream continues.
        let second = decode_headers(&inf.inflate(&hex(DATA_BLOCK)).unwrap()).unwrap();
        assert_eq!(second, pairs(&[("streamtype", "data"), ("port", "8080"), ("requestid", "0")]));
        // Split anywhere, the same.
        let mut inf = Inflater::default();
        let all = [hex(ERROR_BLOCK), hex(DATA_BLOCK)].concat();
        let mut out = Vec::new();
        for piece in all.chunks(3) {
            out.extend(inf.inflate(piece).unwrap());
        }
        let block = |kind| encode_headers(&[("streamtype", kind), ("port", "8080"), ("requestid", "0")]);
        assert_eq!(out, [block("error"), block("data")].concat());
    }

    #[test]
    fn bad_streams_are_errors_not_panics() {
        assert!(Inflater::default().inflate(&[0x12, 0x34]).is_err(), "not zlib");
        let mut other_dict = hex(ERROR_BLOCK);
        other_dict[2] ^= 1;
        assert!(Inflater::default().inflate(&other_dict).is_err(), "another dictionary");
        let mut corrupt = hex(ERROR_BLOCK);
        for b in corrupt.iter_mut().skip(6) {
            *b = 0xff;
        }
        assert!(Inflater::default().inflate(&corrupt).is_err());
        assert!(decode_headers(&[0, 0, 0, 1, 0, 0, 0, 9, b'a']).is_err());
        // Frames: truncated ones wait, bad ones are refused.
        let mut inf = Inflater::default();
        assert_eq!(parse(&[0x80, 0x03, 0, 1, 0, 0, 0], &mut inf), Ok(None));
        assert_eq!(parse(&[0x80, 0x02, 0, 1, 0, 0, 0, 0], &mut inf), Err(SpdyError::Version(2)));
        assert_eq!(parse(&[0x80, 0x03, 0, 3, 0, 0, 0, 2, 0, 0], &mut inf), Err(SpdyError::Malformed("RST_STREAM")));
        assert_eq!(parse(&[0, 0, 0, 1, 0, 0xff, 0xff, 0xff], &mut inf), Err(SpdyError::TooLarge(0xff_ffff)));
    }

    #[test]
    fn frames_round_trip_through_the_codec() {
        // Every header block ends with a sync flush, as Go's reader needs.
        let mut def = Deflater::default();
        assert_eq!(def.deflate(b"ab"), [0x78, 0x01, 0, 2, 0, 0xfd, 0xff, b'a', b'b', 0, 0, 0, 0xff, 0xff]);
        assert_eq!(def.deflate(b""), [0, 0, 0, 0xff, 0xff]);
        let (mut def, mut inf) = (Deflater::default(), Inflater::default());
        let frames = [
            Frame::SynStream {
                id: 1,
                fin: false,
                headers: vec![("streamtype".into(), "data".into()), ("port".into(), "80".into())],
            },
            Frame::SynStream { id: 3, fin: true, headers: vec![("x".into(), "y".repeat(70_000))] },
            Frame::Data { id: 3, fin: true, data: Bytes::from_static(b"hello") },
            Frame::RstStream { id: 5, status: PROTOCOL_ERROR },
            Frame::Ping(7),
        ];
        let wire: Vec<u8> = frames.iter().flat_map(|f| f.encode(&mut def)).collect();
        let mut at = 0;
        for want in &frames {
            let (got, used) = parse(&wire[at..], &mut inf).unwrap().unwrap();
            assert_eq!(&got, want);
            at += used;
        }
        assert_eq!(at, wire.len());
        // A reply's header block (empty) reads back through a fresh inflater too.
        let reply = Frame::SynReply { id: 1, fin: false }.encode(&mut Deflater::default());
        assert_eq!(
            parse(&reply, &mut Inflater::default()).unwrap().map(|(f, n)| (f, n == reply.len())),
            Some((Frame::Ignored, true))
        );
    }

    /// A SYN_STREAM frame as kubectl sends it, around a header block Go compressed.
    fn kubectl_syn_stream(id: u32, block: &[u8]) -> Vec<u8> {
        let len = (10 + block.len()) as u32;
        let mut out = vec![0x80, 0x03, 0, 1, 0];
        out.extend_from_slice(&len.to_be_bytes()[1..]);
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(block);
        out
    }

    #[test]
    fn kubectls_frames_parse() {
        let wire = [kubectl_syn_stream(1, &hex(ERROR_BLOCK)), kubectl_syn_stream(3, &hex(DATA_BLOCK))].concat();
        let mut inf = Inflater::default();
        let (first, n) = parse(&wire, &mut inf).unwrap().unwrap();
        assert!(matches!(first, Frame::SynStream { id: 1, ref headers, .. } if headers[0].1 == "error"), "{first:?}");
        let (second, m) = parse(&wire[n..], &mut inf).unwrap().unwrap();
        assert!(matches!(second, Frame::SynStream { id: 3, ref headers, .. } if headers[0].1 == "data"), "{second:?}");
        assert_eq!(n + m, wire.len());
    }

    proptest::proptest! {
        /// Whatever a client sends, parsing answers with frames or an error, never a
        /// panic: random bytes, and kubectl's own frames with bytes changed.
        #[test]
        fn no_input_makes_parsing_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            changes in proptest::collection::vec((0usize..200, 1u8..=255), 1..6),
        ) {
            let mut inf = Inflater::default();
            let mut buf = bytes;
            while let Ok(Some((_, n))) = parse(&buf, &mut inf) {
                buf.drain(..n);
            }
            let mut wire = [kubectl_syn_stream(1, &hex(ERROR_BLOCK)), kubectl_syn_stream(3, &hex(DATA_BLOCK))].concat();
            for (at, x) in changes {
                let i = at % wire.len();
                wire[i] ^= x;
            }
            let mut inf = Inflater::default();
            let mut buf = wire;
            while let Ok(Some((_, n))) = parse(&buf, &mut inf) {
                buf.drain(..n);
            }
        }
    }

    /// kubectl's side of a session under test: encodes what it sends, decodes what
    /// the session answers.
    struct Client {
        tx: Option<mpsc::Sender<Bytes>>,
        rx: mpsc::Receiver<Bytes>,
        def: Deflater,
        inf: Inflater,
        got: Vec<u8>,
        session: tokio::task::JoinHandle<Result<(), SpdyError>>,
    }

    impl Client {
        fn start(app: App) -> Client {
            let (tx, client_rx) = mpsc::channel(16);
            let (server_tx, rx) = mpsc::channel(16);
            let session = tokio::spawn(serve(client_rx, server_tx, app));
            Client { tx: Some(tx), rx, def: Deflater::default(), inf: Inflater::default(), got: Vec::new(), session }
        }

        async fn send(&mut self, frame: Frame) {
            let bytes = Bytes::from(frame.encode(&mut self.def));
            self.tx.as_ref().expect("the client is open").send(bytes).await.unwrap();
        }

        /// The next frame the session sends (10 s at most).
        async fn next(&mut self) -> Frame {
            let frame = async {
                loop {
                    if let Some((f, n)) = parse(&self.got, &mut self.inf).unwrap() {
                        self.got.drain(..n);
                        return f;
                    }
                    self.got.extend_from_slice(&self.rx.recv().await.unwrap());
                }
            };
            tokio::time::timeout(std::time::Duration::from_secs(10), frame).await.expect("a frame within 10 s")
        }

        /// Goes away; the session's outcome.
        async fn close(mut self) -> Result<(), SpdyError> {
            self.tx = None;
            self.session.await.unwrap()
        }
    }

    fn data(id: u32, fin: bool, b: &'static [u8]) -> Frame {
        Frame::Data { id, fin, data: Bytes::from_static(b) }
    }

    /// A session end to end: kubectl's two streams become one connection at the
    /// "node" (an echo here), bytes come back on the data stream, and both streams
    /// end with FIN; a failing connection reports on the error stream.
    #[tokio::test]
    async fn a_session_carries_connections_and_errors() {
        let connect: Connect = std::sync::Arc::new(|port| {
            Box::pin(async move {
                if port == 1 {
                    return Err("connection refused".to_string());
                }
                let (in_tx, mut in_rx) = mpsc::channel::<Bytes>(4);
                let (out_tx, out_rx) = mpsc::channel(4);
                tokio::spawn(async move {
                    while let Some(b) = in_rx.recv().await {
                        let _ = out_tx.send(Ok(Bytes::from([b"echo:".as_slice(), &b].concat()))).await;
                    }
                });
                Ok(Forward { input: in_tx, output: out_rx })
            })
        });
        let mut c = Client::start(port_forward(connect));
        // kubectl's request id: one per connection, shared by its two streams.
        let syn = |id: u32, kind: &str, port: &str| {
            let headers = vec![
                ("streamtype".to_string(), kind.to_string()),
                ("port".to_string(), port.to_string()),
                ("requestid".to_string(), (id / 4).to_string()),
            ];
            Frame::SynStream { id, fin: false, headers }
        };
        c.send(syn(1, "error", "8080")).await;
        assert_eq!(c.next().await, Frame::Ignored, "a SYN_REPLY");
        c.send(syn(3, "data", "8080")).await;
        assert_eq!(c.next().await, Frame::Ignored, "a SYN_REPLY");
        c.send(data(3, false, b"hi")).await;
        assert_eq!(c.next().await, data(3, false, b"echo:hi"));
        c.send(Frame::Ping(9)).await;
        assert_eq!(c.next().await, Frame::Ping(9));
        // kubectl ends its side: both streams end.
        c.send(data(3, true, b"")).await;
        assert_eq!(c.next().await, data(3, true, b""));
        assert_eq!(c.next().await, data(1, true, b""));

        c.send(syn(5, "error", "1")).await;
        c.send(syn(7, "data", "1")).await;
        assert_eq!((c.next().await, c.next().await), (Frame::Ignored, Frame::Ignored));
        assert_eq!(c.next().await, data(5, false, b"connection refused"));
        assert_eq!(c.next().await, data(7, true, b""));
        assert_eq!(c.next().await, data(5, true, b""));

        // A stream without the headers port-forward needs is refused.
        c.send(syn(9, "other", "80")).await;
        assert_eq!(c.next().await, Frame::Ignored, "a SYN_REPLY");
        assert_eq!(c.next().await, Frame::RstStream { id: 9, status: PROTOCOL_ERROR });
        assert_eq!(c.close().await, Ok(()));
    }

    /// kubectl's exec streams become the node's channels: stdin in, stdout out, the end
    /// of stdin passed on, the Status on the error stream, then every stream ends.
    #[tokio::test]
    async fn an_exec_session_maps_streams_to_channels() {
        let (to_node, mut node_in) = mpsc::channel::<(u8, Bytes)>(8);
        let (node_out, from_node) = mpsc::channel::<(u8, Bytes)>(8);
        // The node: echoes stdin to stdout; at the end of stdin, a Status.
        tokio::spawn(async move {
            while let Some((ch, b)) = node_in.recv().await {
                match ch {
                    0 => node_out.send((1, b)).await.unwrap(),
                    255 => {
                        node_out.send((3, Bytes::from_static(b"{\"status\":\"Success\"}"))).await.unwrap();
                        return;
                    }
                    _ => {}
                }
            }
        });
        let connect: ExecConnect = Box::pin(async move { Ok(ExecSession { input: to_node, output: from_node }) });
        let streams = ExecStreams { stdin: true, stdout: true, stderr: true, tty: false };
        let mut c = Client::start(exec(streams, connect));
        for (id, kind) in [(1, "error"), (3, "stdin"), (5, "stdout"), (7, "stderr")] {
            let headers = vec![("streamtype".to_string(), kind.to_string())];
            c.send(Frame::SynStream { id, fin: false, headers }).await;
        }
        for _ in 0..4 {
            assert_eq!(c.next().await, Frame::Ignored, "a SYN_REPLY");
        }
        c.send(data(3, false, b"typed")).await;
        assert_eq!(c.next().await, data(5, false, b"typed"));
        c.send(data(3, true, b"")).await;
        assert_eq!(c.next().await, data(1, false, b"{\"status\":\"Success\"}"));
        assert_eq!(c.next().await, data(5, true, b""));
        assert_eq!(c.next().await, data(7, true, b""));
        assert_eq!(c.next().await, data(1, true, b""));
        assert_eq!(c.close().await, Ok(()));
    }
}
