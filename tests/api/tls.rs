//! HTTPS: a self-signed certificate for a LAN trial, or a configured one.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// GET `path` over TLS, trusting only `ca` and checking the name `localhost`.
async fn https_get(addr: std::net::SocketAddr, ca: &std::path::Path, path: &str) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.expect("TLS handshake with the server's certificate");
    tls.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").as_bytes()).await.unwrap();
    let mut out = String::new();
    tls.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn the_server_speaks_https_with_a_self_signed_or_configured_certificate() {
    let dir = TempDir::new();
    let mut c = test_config(&dir, format!("sqlite://{}?mode=rwc", dir.0.join("a.db").display()));
    c.tls.self_signed = true;
    let running = fixline::app::start(c.clone()).await.unwrap();
    let cert = dir.0.join("tls/self-signed.crt");
    let key = dir.0.join("tls/self-signed.key");
    let resp = https_get(running.addr, &cert, "/healthz").await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    // Plain HTTP to the HTTPS port gets nowhere.
    let plain = reqwest::Client::builder().no_proxy().build().unwrap().get(format!("http://{}/healthz", running.addr)).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // Invite links say https.
    assert!(running.state.config.effective_public_url().starts_with("https://"));
    running.stop().await.unwrap();

    // The same certificate as configured files; a restart reuses the generated one.
    let dir2 = TempDir::new();
    let mut c2 = test_config(&dir2, format!("sqlite://{}?mode=rwc", dir2.0.join("b.db").display()));
    c2.tls.cert_file = Some(cert.clone());
    c2.tls.key_file = Some(key.clone());
    let running = fixline::app::start(c2).await.unwrap();
    assert!(https_get(running.addr, &cert, "/api/v1/openapi.json").await.starts_with("HTTP/1.1 200"));
    running.stop().await.unwrap();

    // A certificate without its key is refused naming the section.
    let e = fixline::config::Config::load(None, vec![("FIXLINE_TLS__CERT_FILE".to_owned(), "/x.pem".to_owned())], &Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("tls"), "{e}");
}
