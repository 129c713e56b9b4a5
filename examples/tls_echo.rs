//! TLS echo: a server on 127.0.0.1 with a certificate made at start-up,
//! and a client that verifies it against the CA that signed it.
//!
//! `cargo run --example tls_echo --features tls`
//!
//! The certificates are throw-away: a CA and a certificate for
//! `localhost` / `127.0.0.1` it signs, generated with rcgen
//! (`anyloop::rcgen`). The client
//! trusts that CA only (instead of the bundled public roots) and checks the
//! server's name, as `ssl.create_default_context(cadata=…)` would.

use std::rc::Rc;

use anyloop::net::{ConnectOptions, ServerOptions};
use anyloop::tls::TlsConfig;
use anyloop::{Error, ErrorKind, ExtraInfo, StreamReader, StreamWriter};

/// PEM texts: the CA's certificate, the server's certificate and its key.
struct Pki {
    ca: String,
    cert: String,
    key: String,
}

fn make_pki() -> Result<Pki, anyloop::rcgen::Error> {
    use anyloop::rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    };
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.distinguished_name.push(DnType::CommonName, "anyloop tls_echo CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate()?)?;
    let key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    server.distinguished_name.push(DnType::CommonName, "localhost");
    let cert = server.signed_by(&key, &ca)?;
    Ok(Pki { ca: ca.pem(), cert: cert.pem(), key: key.serialize_pem() })
}

/// Echoes every line back until the client closes.
async fn echo(mut reader: StreamReader, writer: StreamWriter) -> Result<(), Error> {
    loop {
        let line = reader.readline().await?;
        if line.is_empty() {
            break;
        }
        writer.write(&line)?;
        writer.drain().await?;
    }
    writer.close();
    writer.wait_closed().await
}

fn text(info: Option<ExtraInfo>) -> String {
    match info {
        Some(ExtraInfo::Text(t)) => t,
        other => format!("{other:?}"),
    }
}

fn main() -> Result<(), Error> {
    let pki = make_pki().map_err(|e| Error::wrap(ErrorKind::Other, e))?;
    anyloop::run(async move {
        let lp = anyloop::get_running_loop()?;

        let server_tls = TlsConfig::server(pki.cert.as_bytes(), pki.key.as_bytes()).build()?;
        let opts = ServerOptions { ssl: Some(Rc::new(server_tls)), ..Default::default() };
        let server = lp.start_server(echo, Some("127.0.0.1"), 0, opts).await?;
        let addr = server.sockets()[0].to_string();
        let port: u16 = addr.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or_default();
        println!("TLS echo server on {addr}");

        let client_tls = TlsConfig::client().root_certificates_pem(pki.ca.as_bytes())?.build()?;
        let opts = ConnectOptions {
            ssl: Some(Rc::new(client_tls)),
            server_hostname: Some("localhost".into()),
            ..Default::default()
        };
        let (mut reader, writer) = lp.open_connection_with("127.0.0.1", port, opts, anyloop::DEFAULT_LIMIT).await?;
        println!(
            "Connected: {} with {}, certificate verified for localhost",
            text(writer.get_extra_info("ssl_version")),
            text(writer.get_extra_info("cipher")),
        );

        let message = "Hello over TLS!\n";
        print!("Send: {message}");
        writer.write(message.as_bytes())?;
        let echoed = reader.readline().await?;
        print!("Received: {}", String::from_utf8_lossy(&echoed));
        if echoed != message.as_bytes() {
            return Err(Error::new(ErrorKind::Other, "the echo differs from the message"));
        }

        writer.close();
        writer.wait_closed().await?;
        server.close();
        server.wait_closed().await?;
        println!("Closed cleanly");
        Ok(())
    })?
}
