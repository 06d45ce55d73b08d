//! Smart HTTP remotes (`https://…`): GitHub, Gitea, GitLab or any server behind
//! `git http-backend`, for people who have a token rather than an SSH key.
//!
//! Smart HTTP is the pack protocol cut into stateless requests: `GET …/info/refs?service=…` answers
//! with the advertisement, and each request of the conversation is one `POST …/git-upload-pack` (or
//! `git-receive-pack`) whose response is the server's answer. The protocol code ([`fetch`],
//! [`push`]) is written for a continuous stream, as over SSH, and ends each of its requests with a
//! `flush()`; [`HttpConnection::run`] turns that into HTTP the way git's `remote-curl` does: the
//! advertisement (without its `# service=` preamble) and then every response are fed to the
//! conversation's reader as one stream, and what it writes between two flushes becomes one POST.
//! A request larger than [`POST_BUFFER`] (a push with media) is streamed with chunked encoding
//! instead of being held in memory.
//!
//! The token goes in `Authorization: Basic` (user name from the URL, else `git`), marked
//! sensitive, only to the configured host and only over TLS; [`Token`] never prints itself.
//! TLS is rustls with the system's roots, or only the CA of `ca_file` (like git's
//! `http.sslCAInfo`) for a server with a private CA. One HTTP/1.1 connection is kept alive
//! between requests.
//!
//! Why not gix's HTTP transport: it would bring curl or reqwest, and the same stream shape is
//! needed anyway to keep fetch and push on one code path with the SSH transport; hyper and
//! rustls are already in the build for the edge.
//!
//! [`fetch`]: super::fetch
//! [`push`]: super::push

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::channel::{self, Channel};
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, Mutex};

use super::url::{RemoteUrl, Scheme};
use super::{ClientError, Result};
use crate::channel_io::QUEUE;

/// A request up to this size is sent with a `Content-Length`; a larger one is streamed.
pub const POST_BUFFER: usize = 1 << 20;
/// Redirects followed on the first request (`info/refs`), as git does.
const MAX_REDIRECTS: usize = 5;
/// Servers (GitHub among them) recognise Git clients by a `git/` user agent.
const USER_AGENT: &str = concat!("git/2.0 (whispercms/", env!("CARGO_PKG_VERSION"), ")");
/// Most bytes of an error response kept for the message.
const MAX_ERROR_BODY: usize = 1024;

/// A secret that never shows itself: not in `Debug`, not in errors, not in logs.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    /// A token as given (surrounding white space, such as a file's final newline, dropped).
    pub fn new(token: &str) -> Result<Token> {
        let token = token.trim();
        if token.is_empty() {
            return Err(ClientError::Token("the token is empty".into()));
        }
        if token.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ClientError::Token("the token holds spaces or control characters".into()));
        }
        Ok(Token(token.to_string()))
    }

    /// The token kept in `path` (a file of its own, readable only by the server).
    pub fn from_file(path: &Path) -> Result<Token> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ClientError::Token(format!("cannot read the token file {}: {e}", path.display())))?;
        Token::new(&text).map_err(|e| match e {
            ClientError::Token(why) => ClientError::Token(format!("{}: {why}", path.display())),
            other => other,
        })
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// How to reach a remote over HTTP(S).
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The token sent as the password of HTTP Basic authentication (none for a public remote).
    pub token: Option<Token>,
    /// Trust only the CA certificates of this PEM file instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Limit on TCP connect and TLS handshake together.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response, or for the server to take request bytes.
    pub idle_timeout: Duration,
    /// Ask for protocol v2 when fetching.
    pub protocol_v2: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            token: None,
            ca_file: None,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            protocol_v2: true,
        }
    }
}

/// The bodies we send: a whole request, or one streamed as the conversation writes it.
type Body = Either<Full<Bytes>, Channel<Bytes>>;

/// Scheme, host and port: which connection a request needs, and whether credentials go there.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    tls: bool,
    host: String,
    port: u16,
}

impl Origin {
    /// The origin of an absolute `http(s)://` address.
    fn of(url: &str) -> Option<Origin> {
        let uri: hyper::Uri = url.parse().ok()?;
        let tls = match uri.scheme_str()? {
            "https" => true,
            "http" => false,
            _ => return None,
        };
        let host = uri.host()?.trim_start_matches('[').trim_end_matches(']').to_string();
        Some(Origin { tls, port: uri.port_u16().unwrap_or(if tls { 443 } else { 80 }), host })
    }

    /// The `Host` header.
    fn authority(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// What the conversation thread hands the HTTP side.
enum Outgoing {
    Data(Vec<u8>),
    /// The conversation flushed: the request so far is complete.
    End,
}

/// What the HTTP side hands the conversation thread.
enum Answer {
    Data(Vec<u8>),
    /// The end of the answer to request number `n` (0: the advertisement; each flush of the
    /// writer, sent or not, is the next number).
    End(u64),
}

/// The conversation's reader: the advertisement, then each response in turn. Reading past the
/// end of the latest response reads as the end of the stream, so a conversation that wants
/// more than the server sent gets an error instead of waiting for bytes that will never come.
pub struct ResponseReader {
    rx: mpsc::Receiver<Answer>,
    /// Requests the writer has ended so far: an `End` older than the latest request is stale.
    requests: Arc<AtomicU64>,
    current: Vec<u8>,
    pos: usize,
}

impl Read for ResponseReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.current.len() {
            match self.rx.blocking_recv() {
                Some(Answer::Data(chunk)) => {
                    self.current = chunk;
                    self.pos = 0;
                }
                Some(Answer::End(n)) if n < self.requests.load(Ordering::SeqCst) => {}
                Some(Answer::End(_)) | None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len() - self.pos);
        buf[..n].copy_from_slice(&self.current[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// The conversation's writer: bytes of the current request; `flush` ends it.
pub struct RequestWriter {
    tx: mpsc::Sender<Outgoing>,
    requests: Arc<AtomicU64>,
}

impl RequestWriter {
    fn send(&self, item: Outgoing) -> io::Result<()> {
        self.tx
            .blocking_send(item)
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the HTTP request to the remote failed"))
    }
}

impl Write for RequestWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !buf.is_empty() {
            self.send(Outgoing::Data(buf.to_vec()))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        self.send(Outgoing::End)
    }
}

/// An HTTP(S) remote. Cheap to keep; each [`run`](Self::run) is one conversation (an
/// `info/refs` request, then one POST per request of the protocol).
pub struct HttpConnection {
    url: RemoteUrl,
    options: HttpOptions,
    origin: Origin,
    tls: Option<tokio_rustls::TlsConnector>,
    authorization: Option<HeaderValue>,
    /// The kept-alive connection, with the origin it reaches.
    idle: Mutex<Option<(Origin, SendRequest<Body>)>>,
}

impl HttpConnection {
    /// Prepare to talk to `url`, and reach it once so that a wrong address, port or certificate
    /// shows now rather than at the first fetch.
    pub async fn connect(url: &RemoteUrl, options: HttpOptions) -> Result<HttpConnection> {
        let bad = |reason: &str| ClientError::Url { url: url.original.clone(), reason: reason.into() };
        if !url.is_http() {
            return Err(bad("not an http:// or https:// address"));
        }
        if url.scheme == Scheme::Http && options.token.is_some() {
            return Err(bad("a token is never sent over plain http://; use https://"));
        }
        let origin = Origin::of(&url.http_base()).ok_or_else(|| bad("no host"))?;
        let tls = match url.scheme {
            Scheme::Https => Some(tokio_rustls::TlsConnector::from(Arc::new(tls_config(options.ca_file.as_deref())?))),
            _ => None,
        };
        let authorization = match &options.token {
            Some(token) => {
                use base64::Engine as _;
                let user = if url.user.is_empty() { "git" } else { url.user.as_str() };
                let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{}", token.0));
                let mut value = HeaderValue::from_str(&format!("Basic {encoded}"))
                    .map_err(|_| ClientError::Token("the token cannot be sent in a header".into()))?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let connection = HttpConnection {
            url: url.clone(),
            options,
            origin: origin.clone(),
            tls,
            authorization,
            idle: Mutex::new(None),
        };
        let sender = connection.open(&origin).await?;
        *connection.idle.lock().await = Some((origin, sender));
        Ok(connection)
    }

    /// The remote this connection reaches.
    pub fn url(&self) -> &RemoteUrl {
        &self.url
    }

    /// Whether fetches ask for protocol v2.
    pub fn prefers_v2(&self) -> bool {
        self.options.protocol_v2
    }

    /// Run the `program` service (`git-upload-pack` or `git-receive-pack`) as one conversation,
    /// asking for protocol v2 when `v2` is set; `conversation` runs on a blocking thread, as over
    /// SSH.
    pub async fn run<T, F>(&self, program: &str, v2: bool, conversation: F) -> Result<T>
    where
        F: FnOnce(ResponseReader, RequestWriter) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        if !matches!(program, "git-upload-pack" | "git-receive-pack") {
            return Err(ClientError::Protocol(format!("{program} is not a Git service offered over HTTP")));
        }
        let (in_tx, in_rx) = mpsc::channel::<Answer>(QUEUE);
        let (out_tx, out_rx) = mpsc::channel::<Outgoing>(QUEUE);
        let requests = Arc::new(AtomicU64::new(0));
        let reader = ResponseReader { rx: in_rx, requests: requests.clone(), current: Vec::new(), pos: 0 };
        let writer = RequestWriter { tx: out_tx, requests };
        let talking = tokio::task::spawn_blocking(move || conversation(reader, writer));
        // When the HTTP side fails it drops both queues, so the conversation ends too (its reads
        // see the end of the stream, its writes fail) instead of waiting forever.
        let driven = self.drive(program, v2, in_tx, out_rx).await;
        let outcome =
            talking.await.map_err(|e| ClientError::Protocol(format!("the conversation thread failed: {e}")))?;
        match (driven, outcome) {
            // The HTTP error is the cause; the conversation's is its consequence.
            (Err(e), Err(_)) => Err(e),
            (Err(e), Ok(v)) => {
                tracing::debug!(remote = %self.url, error = %e, "HTTP remote failed after the conversation ended");
                Ok(v)
            }
            (Ok(()), outcome) => outcome,
        }
    }

    /// The HTTP side of one conversation.
    async fn drive(
        &self,
        program: &str,
        v2: bool,
        in_tx: mpsc::Sender<Answer>,
        mut out_rx: mpsc::Receiver<Outgoing>,
    ) -> Result<()> {
        let service = program.trim_start_matches("git-");
        let (base, origin, mut sender, response) = self.info_refs(program, v2).await?;
        let target = format!("{base}/info/refs?service={program}");
        let response = self.checked(&target, response, &format!("application/x-git-{service}-advertisement")).await?;
        let mut body = response.into_body();
        let mut head = Vec::new();
        let mut skipped = false;
        while let Some(chunk) = self.next_chunk(&mut body, &target).await? {
            if skipped {
                if in_tx.send(Answer::Data(chunk)).await.is_err() {
                    return Ok(()); // the conversation is done reading
                }
                continue;
            }
            head.extend_from_slice(&chunk);
            match service_preamble(&head, program)? {
                Preamble::NeedMore => continue,
                Preamble::Len(n) => {
                    head.drain(..n);
                    skipped = true;
                    if !head.is_empty() && in_tx.send(Answer::Data(std::mem::take(&mut head))).await.is_err() {
                        return Ok(());
                    }
                }
            }
        }
        if !head.is_empty() && in_tx.send(Answer::Data(head)).await.is_err() {
            return Ok(());
        }
        if in_tx.send(Answer::End(0)).await.is_err() {
            return Ok(());
        }
        let mut requests = 0;

        let post_url = format!("{base}/{program}");
        let content_type = format!("application/x-git-{service}-request");
        let result_type = format!("application/x-git-{service}-result");
        loop {
            let mut buffered = Vec::new();
            let mut streaming: Option<(channel::Sender<Bytes>, _)> = None;
            let mut closed = false;
            loop {
                match out_rx.recv().await {
                    Some(Outgoing::Data(data)) => match streaming.as_mut() {
                        Some((tx, _)) => self.stream(tx, data, &post_url).await?,
                        None => {
                            buffered.extend_from_slice(&data);
                            if buffered.len() > POST_BUFFER {
                                let (mut tx, body) = Channel::new(4);
                                let request = self.post(&post_url, &origin, &content_type, v2, Either::Right(body))?;
                                self.ready(&mut sender, &origin).await?;
                                let response = sender.send_request(request);
                                self.stream(&mut tx, std::mem::take(&mut buffered), &post_url).await?;
                                streaming = Some((tx, response));
                            }
                        }
                    },
                    Some(Outgoing::End) => {
                        requests += 1;
                        break;
                    }
                    None => {
                        closed = true;
                        break;
                    }
                }
            }
            let response = match streaming {
                Some((tx, response)) => {
                    drop(tx); // the end of the chunked body
                    self.response(response, &post_url).await?
                }
                // A lone flush-pkt asks for nothing (a fetch with nothing to want, a push with
                // nothing to update): no request at all, as git does.
                None if buffered.is_empty() || buffered == b"0000" => {
                    if closed {
                        break;
                    }
                    continue;
                }
                None => {
                    let request =
                        self.post(&post_url, &origin, &content_type, v2, Either::Left(Full::from(buffered)))?;
                    self.ready(&mut sender, &origin).await?;
                    self.response(sender.send_request(request), &post_url).await?
                }
            };
            let response = self.checked(&post_url, response, &result_type).await?;
            let mut body = response.into_body();
            while let Some(chunk) = self.next_chunk(&mut body, &post_url).await? {
                if in_tx.send(Answer::Data(chunk)).await.is_err() {
                    break;
                }
            }
            let _ = in_tx.send(Answer::End(requests)).await;
            if closed {
                break;
            }
        }
        *self.idle.lock().await = Some((origin, sender));
        Ok(())
    }

    /// `GET info/refs`, following redirects (never from https to http); the base address the
    /// rest of the conversation uses, and the connection it arrived on.
    async fn info_refs(
        &self,
        program: &str,
        v2: bool,
    ) -> Result<(String, Origin, SendRequest<Body>, Response<Incoming>)> {
        let suffix = format!("/info/refs?service={program}");
        let mut base = self.url.http_base();
        for _ in 0..=MAX_REDIRECTS {
            let target = format!("{base}{suffix}");
            let origin = Origin::of(&base).ok_or_else(|| self.http_error(&target, "not an http(s) address".into()))?;
            let mut sender = self.sender(&origin).await?;
            let mut request = self.request("GET", &target, &origin, v2)?;
            *request.body_mut() = Either::Left(Full::default());
            let response = self.response(sender.send_request(request), &target).await?;
            if !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED {
                return Ok((base, origin, sender, response));
            }
            let location =
                response.headers().get(header::LOCATION).and_then(|l| l.to_str().ok()).ok_or_else(|| {
                    self.http_error(&target, format!("HTTP {} without a Location", response.status()))
                })?;
            let absolute = if location.starts_with('/') {
                format!("{}://{}{location}", if origin.tls { "https" } else { "http" }, origin.authority())
            } else {
                location.to_string()
            };
            let next = Origin::of(&absolute).ok_or_else(|| {
                self.http_error(&target, format!("redirected to {location:?}, which is not an address"))
            })?;
            if origin.tls && !next.tls {
                return Err(self.http_error(&target, format!("refused a redirect from https to {absolute}")));
            }
            base = absolute
                .strip_suffix(&suffix)
                .ok_or_else(|| {
                    self.http_error(
                        &target,
                        format!("redirected to {absolute}, which is not a Git repository's address"),
                    )
                })?
                .to_string();
            tracing::debug!(from = %target, to = %base, "HTTP remote redirects");
        }
        Err(self.http_error(&self.url.http_base(), format!("more than {MAX_REDIRECTS} redirects")))
    }

    /// A request to `url` with our headers; credentials only to the configured origin.
    fn request(&self, method: &str, url: &str, origin: &Origin, v2: bool) -> Result<Request<Body>> {
        let uri: hyper::Uri = url.parse().map_err(|_| self.http_error(url, "not a valid request address".into()))?;
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, origin.authority())
            .header(header::USER_AGENT, USER_AGENT)
            .header("Pragma", "no-cache");
        if v2 {
            builder = builder.header("Git-Protocol", "version=2");
        }
        if let Some(auth) = self.authorization.as_ref().filter(|_| *origin == self.origin) {
            builder = builder.header(header::AUTHORIZATION, auth.clone());
        }
        builder.body(Either::Left(Full::default())).map_err(|e| self.http_error(url, e.to_string()))
    }

    /// A POST of one protocol request.
    fn post(&self, url: &str, origin: &Origin, content_type: &str, v2: bool, body: Body) -> Result<Request<Body>> {
        let mut request = self.request("POST", url, origin, v2)?;
        let headers = request.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).map_err(|e| self.http_error(url, e.to_string()))?,
        );
        let accept = content_type.replace("-request", "-result");
        headers
            .insert(header::ACCEPT, HeaderValue::from_str(&accept).map_err(|e| self.http_error(url, e.to_string()))?);
        *request.body_mut() = body;
        Ok(request)
    }

    /// Wait for a response head, within the idle limit.
    async fn response(
        &self,
        pending: impl std::future::Future<Output = hyper::Result<Response<Incoming>>>,
        url: &str,
    ) -> Result<Response<Incoming>> {
        match tokio::time::timeout(self.options.idle_timeout, pending).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(self.http_error(url, describe_hyper(&e))),
            Err(_) => {
                Err(ClientError::Timeout { what: format!("waiting for {url}"), after: self.options.idle_timeout })
            }
        }
    }

    /// The next bytes of a response body, within the idle limit; `None` at its end.
    async fn next_chunk(&self, body: &mut Incoming, url: &str) -> Result<Option<Vec<u8>>> {
        loop {
            let frame = match tokio::time::timeout(self.options.idle_timeout, body.frame()).await {
                Ok(Some(Ok(frame))) => frame,
                Ok(Some(Err(e))) => return Err(self.http_error(url, describe_hyper(&e))),
                Ok(None) => return Ok(None),
                Err(_) => {
                    return Err(ClientError::Timeout {
                        what: format!("waiting for data from {url}"),
                        after: self.options.idle_timeout,
                    })
                }
            };
            if let Ok(data) = frame.into_data() {
                if !data.is_empty() {
                    return Ok(Some(data.to_vec()));
                }
            }
        }
    }

    /// One more piece of a streamed request, within the idle limit.
    async fn stream(&self, tx: &mut channel::Sender<Bytes>, data: Vec<u8>, url: &str) -> Result<()> {
        match tokio::time::timeout(self.options.idle_timeout, tx.send_data(Bytes::from(data))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(self.http_error(url, "the server stopped taking the request".into())),
            Err(_) => Err(ClientError::Timeout { what: format!("sending to {url}"), after: self.options.idle_timeout }),
        }
    }

    /// An error for a response that is not what the protocol expects, in words for the person
    /// who set the remote up.
    /// What the server said in the body, as text (GitHub and Gitea explain errors there).
    async fn checked(
        &self,
        url: &str,
        response: Response<Incoming>,
        expected_type: &str,
    ) -> Result<Response<Incoming>> {
        let Err(e) = self.check(url, &response, expected_type) else { return Ok(response) };
        let ClientError::Http { url, mut reason } = e else { return Err(e) };
        if !response.status().is_success() {
            let mut body = response.into_body();
            let mut text = Vec::new();
            while text.len() < MAX_ERROR_BODY {
                match tokio::time::timeout(Duration::from_secs(5), body.frame()).await {
                    Ok(Some(Ok(frame))) => text.extend_from_slice(frame.data_ref().map(|d| &d[..]).unwrap_or_default()),
                    _ => break,
                }
            }
            text.truncate(MAX_ERROR_BODY);
            let said: String = String::from_utf8_lossy(&text)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>()
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            if !said.is_empty() && !said.starts_with('<') {
                reason = format!("{reason}: the server said {said:?}");
            }
        }
        Err(ClientError::Http { url, reason })
    }

    fn check(&self, url: &str, response: &Response<Incoming>, expected_type: &str) -> Result<()> {
        let status = response.status();
        let has_token = self.options.token.is_some() && Origin::of(url).as_ref() == Some(&self.origin);
        let reason = match status {
            s if s.is_success() => {
                let content_type =
                    response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
                if content_type.split(';').next().map(str::trim) == Some(expected_type) {
                    return Ok(());
                }
                format!(
                    "the server is not a smart Git HTTP server (it answered {content_type:?}, not {expected_type:?}); \
                     check the address"
                )
            }
            StatusCode::UNAUTHORIZED if has_token => "the server refused the token (HTTP 401)".to_string(),
            StatusCode::UNAUTHORIZED if self.options.token.is_some() => format!(
                "the server asks for credentials (HTTP 401); the token is only sent to {}",
                self.origin.authority()
            ),
            StatusCode::UNAUTHORIZED => "the server asks for credentials (HTTP 401): give a token".to_string(),
            StatusCode::FORBIDDEN if has_token => {
                "the token is not allowed to do this (HTTP 403): check its scopes or the repository's permissions"
                    .to_string()
            }
            StatusCode::FORBIDDEN => "access denied (HTTP 403)".to_string(),
            StatusCode::NOT_FOUND if has_token => "no repository here, or not one this token can see (HTTP 404)".into(),
            StatusCode::NOT_FOUND => "no repository here (HTTP 404); if it is private, give a token".to_string(),
            s => format!("HTTP {s}"),
        };
        Err(self.http_error(url, reason))
    }

    fn http_error(&self, url: &str, reason: String) -> ClientError {
        ClientError::Http { url: url.to_string(), reason }
    }

    /// A ready connection to `origin`: the kept-alive one when it still is, else a new one.
    async fn sender(&self, origin: &Origin) -> Result<SendRequest<Body>> {
        let parked = self.idle.lock().await.take();
        if let Some((o, mut sender)) = parked {
            if o == *origin && !sender.is_closed() && sender.ready().await.is_ok() {
                return Ok(sender);
            }
        }
        self.open(origin).await
    }

    /// Make `sender` ready for the next request, reconnecting when the server closed it.
    async fn ready(&self, sender: &mut SendRequest<Body>, origin: &Origin) -> Result<()> {
        if sender.is_closed() || sender.ready().await.is_err() {
            *sender = self.open(origin).await?;
        }
        Ok(())
    }

    /// A new connection to `origin` (TCP, TLS, HTTP/1.1) within the connect limit.
    async fn open(&self, origin: &Origin) -> Result<SendRequest<Body>> {
        let addr = format!("{}:{}", origin.host, origin.port);
        let connecting = async {
            let tcp = tokio::net::TcpStream::connect((origin.host.as_str(), origin.port))
                .await
                .map_err(|source| ClientError::Connect { addr: addr.clone(), source })?;
            let _ = tcp.set_nodelay(true);
            if !origin.tls {
                return handshake(TokioIo::new(tcp), &addr).await;
            }
            let connector = self.tls.as_ref().ok_or_else(|| ClientError::Tls {
                addr: addr.clone(),
                reason: "redirected to https from an http:// remote; give the https:// address".into(),
            })?;
            let name = rustls::pki_types::ServerName::try_from(origin.host.clone())
                .map_err(|_| ClientError::Tls { addr: addr.clone(), reason: "not a valid server name".into() })?;
            let stream = connector.connect(name, tcp).await.map_err(|e| ClientError::Tls {
                addr: addr.clone(),
                reason: match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                    Some(rustls::Error::InvalidCertificate(cert)) => format!(
                        "its certificate is not trusted ({cert:?}); if the server uses a private CA, set ca_file"
                    ),
                    _ => e.to_string(),
                },
            })?;
            handshake(TokioIo::new(stream), &addr).await
        };
        tokio::time::timeout(self.options.connect_timeout, connecting).await.map_err(|_| ClientError::Timeout {
            what: format!("connecting to {addr}"),
            after: self.options.connect_timeout,
        })?
    }
}

/// HTTP/1.1 over `io`, its connection task running in the background.
async fn handshake<IO>(io: IO, addr: &str) -> Result<SendRequest<Body>>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = http1::handshake(io)
        .await
        .map_err(|e| ClientError::Http { url: addr.to_string(), reason: describe_hyper(&e) })?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "HTTP connection to the remote ended");
        }
    });
    Ok(sender)
}

/// hyper's error with its cause (its own text alone is often just "connection error").
fn describe_hyper(e: &hyper::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The TLS settings: the system's roots, or only the CAs in `ca_file`.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let bad = |reason: String| ClientError::Tls { addr: path.display().to_string(), reason };
            let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read the CA file: {e}")))?;
            for cert in rustls_pemfile::certs(&mut &pem[..]) {
                let cert = cert.map_err(|e| bad(format!("not a PEM certificate file: {e}")))?;
                roots.add(cert).map_err(|e| bad(format!("an unusable certificate: {e}")))?;
            }
            if roots.is_empty() {
                return Err(bad("no certificate in the CA file".into()));
            }
        }
        None => {
            // Certificates the library cannot use are skipped, as every TLS client does.
            let native = rustls_native_certs::load_native_certs().unwrap_or_default();
            let (_added, _ignored) = roots.add_parsable_certificates(native);
            if roots.is_empty() {
                return Err(ClientError::Tls {
                    addr: "the system".into(),
                    reason: "no trusted CA certificates found; install ca-certificates or set ca_file".into(),
                });
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls { addr: "the system".into(), reason: e.to_string() })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// How much of an `info/refs` answer is the `# service=git-…` line and its flush-pkt.
#[derive(Debug, PartialEq, Eq)]
enum Preamble {
    /// Not enough bytes yet to tell.
    NeedMore,
    /// Skip this many bytes (0: there is none, as in protocol v2's answer).
    Len(usize),
}

fn service_preamble(head: &[u8], program: &str) -> Result<Preamble> {
    let Some(prefix) = head.get(..4) else { return Ok(Preamble::NeedMore) };
    let len = std::str::from_utf8(prefix).ok().and_then(|h| usize::from_str_radix(h, 16).ok());
    let Some(len) = len.filter(|&l| l >= 4) else { return Ok(Preamble::Len(0)) }; // let the parser complain
    let Some(line) = head.get(4..len) else { return Ok(Preamble::NeedMore) };
    if !line.starts_with(b"# service=") {
        return Ok(Preamble::Len(0));
    }
    let named = line[b"# service=".len()..].strip_suffix(b"\n").unwrap_or(&line[b"# service=".len()..]);
    if named != program.as_bytes() {
        return Err(ClientError::Protocol(format!(
            "asked for {program}, the server announced {:?}",
            String::from_utf8_lossy(named)
        )));
    }
    match head.get(len..len + 4) {
        None => Ok(Preamble::NeedMore),
        Some(b"0000") => Ok(Preamble::Len(len + 4)),
        Some(_) => Err(ClientError::Protocol("no flush-pkt after the # service= line".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_preamble_is_found_or_not() {
        let p = "git-upload-pack";
        let full = b"001e# service=git-upload-pack\n0000003fabc";
        assert_eq!(service_preamble(full, p).unwrap(), Preamble::Len(34));
        for cut in 0..34 {
            assert_eq!(service_preamble(&full[..cut], p).unwrap(), Preamble::NeedMore, "at {cut}");
        }
        // Protocol v2 answers without it; so may a server we do not know.
        assert_eq!(service_preamble(b"000eversion 2\n", p).unwrap(), Preamble::Len(0));
        assert_eq!(service_preamble(b"zzzz", p).unwrap(), Preamble::Len(0));
        assert_eq!(service_preamble(b"0000", p).unwrap(), Preamble::Len(0));
        assert!(service_preamble(b"001f# service=git-receive-pack\n0000", p).is_err());
        assert!(service_preamble(b"001e# service=git-upload-pack\n0011", p).is_err());
    }

    #[test]
    fn a_token_never_shows_itself() {
        let t = Token::new("ghp_secret123\n").unwrap();
        assert_eq!(t.0, "ghp_secret123");
        assert!(!format!("{t:?}").contains("secret"));
        let options = HttpOptions { token: Some(t), ..Default::default() };
        assert!(!format!("{options:?}").contains("secret"));
        for bad in ["", "  \n", "two words", "a\u{7f}b"] {
            assert!(Token::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn origins_and_their_host_headers() {
        let o = Origin::of("https://example.org/a.git").unwrap();
        assert_eq!((o.tls, o.port, o.authority().as_str()), (true, 443, "example.org"));
        let o = Origin::of("http://[::1]:8080/a").unwrap();
        assert_eq!((o.host.as_str(), o.authority().as_str()), ("::1", "[::1]:8080"));
        assert!(Origin::of("ftp://h/x").is_none());
        assert!(Origin::of("not a url").is_none());
    }
}
