//! One webhook attempt: a POST over HTTP/1.1 on a fresh connection, plain TCP for
//! `http` and TLS (rustls, ring) for `https`, bounded by a timeout covering DNS,
//! connect, handshake, request and the response head.
//!
//! Deliberately small: no connection pool (webhook volume is a few requests a second
//! at most; a new connection per attempt also means a receiver's DNS change is seen at
//! once), no proxy support, no redirects (a 3xx is a failure per Standard Webhooks),
//! no HTTP/2. The response body is never read: only the status (and `Retry-After`)
//! matter.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, Request, Uri};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::signing::Attempt;

/// Where the system's CA bundle usually is (Debian/Ubuntu, Red Hat/Fedora, Alpine/BSD).
const SYSTEM_BUNDLES: &[&str] = &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

/// Sends signed webhook requests. Cheap to share behind an `Arc`.
pub struct Sender {
    /// The TLS client, or why there is none (https attempts fail with that message).
    tls: Result<TlsConnector, String>,
    timeout: Duration,
    user_agent: String,
}

impl Sender {
    /// A sender trusting the CAs in `ca_file` (empty: the system bundle).
    pub fn new(ca_file: &Path, timeout: Duration) -> Sender {
        Sender { tls: tls_connector(ca_file), timeout, user_agent: format!("fixline-webhooks/{}", env!("CARGO_PKG_VERSION")) }
    }

    /// Why https endpoints cannot be reached, if they cannot.
    pub fn tls_problem(&self) -> Option<&str> {
        self.tls.as_ref().err().map(String::as_str)
    }

    /// POSTs `body` to `url` with the Standard Webhooks headers.
    pub async fn post(&self, url: &str, msg_id: &str, timestamp: i64, signature: &str, body: Vec<u8>) -> Attempt {
        match tokio::time::timeout(self.timeout, self.post_inner(url, msg_id, timestamp, signature, body)).await {
            Ok(Ok((status, retry_after))) => Attempt::Answered { status, retry_after },
            Ok(Err(e)) => Attempt::Failed(e),
            Err(_) => Attempt::Failed(format!("no answer within {} s", self.timeout.as_secs())),
        }
    }

    async fn post_inner(&self, url: &str, msg_id: &str, timestamp: i64, signature: &str, body: Vec<u8>) -> Result<(u16, Option<String>), String> {
        let uri: Uri = url.parse().map_err(|_| "the endpoint URL does not parse".to_owned())?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("the endpoint URL is not http or https".into()),
        };
        let authority = uri.authority().ok_or("the endpoint URL has no host")?.clone();
        // IPv6 literals are bracketed in URLs, bare in socket addresses and SNI.
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let request = Request::post(path)
            .header(header::HOST, authority.as_str())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, &self.user_agent)
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("cannot build the request: {e}"))?;
        let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("connect: {e}"))?;
        let _ = tcp.set_nodelay(true);
        if https {
            let tls = self.tls.as_ref().map_err(|e| e.clone())?;
            let name = ServerName::try_from(host).map_err(|_| "the endpoint host is not a valid TLS server name".to_owned())?;
            let stream = tls.connect(name, tcp).await.map_err(|e| format!("TLS: {e}"))?;
            exchange(stream, request).await
        } else {
            exchange(tcp, request).await
        }
    }
}

/// One request on a fresh HTTP/1.1 connection; the status and `Retry-After` back.
async fn exchange<S>(stream: S, request: Request<Full<Bytes>>) -> Result<(u16, Option<String>), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| format!("HTTP: {e}"))?;
    // The connection future does the I/O; it must be polled while the request runs.
    let mut conn = std::pin::pin!(conn);
    let response = tokio::select! {
        r = send.send_request(request) => r.map_err(|e| format!("HTTP: {e}"))?,
        r = &mut conn => {
            return Err(match r {
                Ok(()) => "the connection closed before an answer".to_owned(),
                Err(e) => format!("HTTP: {e}"),
            })
        }
    };
    let retry_after = response.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(64).collect());
    Ok((response.status().as_u16(), retry_after))
}

fn tls_connector(ca_file: &Path) -> Result<TlsConnector, String> {
    let path: PathBuf = if ca_file.as_os_str().is_empty() {
        let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from).filter(|p| p.is_file());
        from_env
            .or_else(|| SYSTEM_BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file()))
            .ok_or("no CA bundle found for https endpoints; set webhooks.ca_file")?
    } else {
        ca_file.to_owned()
    };
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| format!("cannot read the CA bundle {}: {e}", path.display()))?
        .filter_map(Result::ok);
    let mut roots = rustls::RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!("the CA bundle {} holds no usable certificate", path.display()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS protocol versions: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}
