//! `TLS_ROOTS` against a real TLS server: a DynamoDB client built on `TlsRoots::https_client`
//! talks to a server on 127.0.0.1 whose certificate a test authority signed (made by `openssl`,
//! which Debian's ca-certificates depends on). With Amazon's roots (the default) and with the
//! system's store the handshake is refused; with the authority's file as `TLS_ROOTS` it completes
//! and the client reads the server's answer.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a panic is a failed test"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use chat_shared::platform::aws::TlsRoots;
use chat_shared::platform::config::Env;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fresh directory with a certificate authority (`ca.pem`) and a server certificate it signed
/// for `localhost` and 127.0.0.1 (`cert.pem`, `key.pem`).
fn certificates() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chat-tls-roots-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509", "-days", "1", "-subj", "/CN=chat test CA"][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-subj", "/CN=localhost"][..],
            &ec,
            &["-keyout", "key.pem", "-out", "server.csr"],
        ]
        .concat(),
    );
    openssl(&[
        "x509",
        "-req",
        "-days",
        "1",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-extfile",
        "server.ext",
        "-out",
        "cert.pem",
    ]);
    dir
}

/// Serves TLS with the directory's certificate; every request gets DynamoDB's "no such table".
/// Returns the port and the number of handshakes completed.
async fn serve(dir: &Path) -> (u16, Arc<AtomicUsize>) {
    let certs = vec![CertificateDer::from_pem_file(dir.join("cert.pem")).unwrap()];
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let counted = counted.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let body = br#"{"__type":"com.amazonaws.dynamodb.v20120810#ResourceNotFoundException","message":"no such table"}"#;
                let head = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/x-amz-json-1.0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (port, handshakes)
}

/// One `DescribeTable` through the roots' client; the error's full text.
async fn describe(roots: &TlsRoots, port: u16) -> String {
    let mut config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .retry_config(RetryConfig::disabled())
        .endpoint_url(format!("https://localhost:{port}"));
    if let Some(client) = roots.https_client() {
        config = config.http_client(client);
    }
    let client = aws_sdk_dynamodb::Client::from_conf(config.build());
    let error = client
        .describe_table()
        .table_name("chat")
        .send()
        .await
        .expect_err("the server answers every request with an error");
    DisplayErrorContext(&error).to_string()
}

#[tokio::test]
async fn only_the_configured_roots_are_trusted() {
    let dir = certificates();
    let (port, handshakes) = serve(&dir).await;

    for refused in [TlsRoots::Amazon, TlsRoots::System] {
        let error = describe(&refused, port).await;
        assert!(
            error.contains("UnknownIssuer") || error.contains("invalid peer certificate"),
            "{refused:?}: {error}"
        );
        assert_eq!(handshakes.load(Ordering::SeqCst), 0, "{refused:?}");
    }

    let cert = dir.join("ca.pem");
    let own = TlsRoots::from_env(&Env::new(|name: &str| {
        (name == "TLS_ROOTS").then(|| cert.display().to_string())
    }))
    .unwrap();
    let error = describe(&own, port).await;
    assert!(error.contains("ResourceNotFoundException"), "{error}");
    assert!(handshakes.load(Ordering::SeqCst) >= 1);
    let _ = std::fs::remove_dir_all(&dir);
}
