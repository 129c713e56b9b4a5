//! # anyloop-tls
//!
//! TLS for anyloop — asyncio's `ssl=` arguments and `loop.start_tls()` —
//! on [rustls] with the *aws-lc-rs* crypto provider. Reached as `anyloop::tls`
//! with the facade's `tls` feature (off by default).
//!
//! [`TlsConfig`] is what the `ssl` field of `ConnectOptions` and
//! `ServerOptions` and `start_tls` take (asyncio's `SSLContext`):
//!
//! ```no_run
//! # async fn demo(lp: &anyloop_core::EventLoop, cert_pem: &[u8], key_pem: &[u8], ca_pem: &[u8])
//! # -> Result<(), anyloop_core::Error> {
//! use std::rc::Rc;
//! use anyloop_core::net::{ConnectOptions, ServerOptions};
//! use anyloop_tls::TlsConfig;
//!
//! // A TLS echo server…
//! let server = TlsConfig::server(cert_pem, key_pem).build()?;
//! let opts = ServerOptions { ssl: Some(Rc::new(server)), ..Default::default() };
//! let srv = lp
//!     .start_server(
//!         |mut r, w| async move {
//!             while let Ok(line) = r.readline().await {
//!                 if line.is_empty() || w.write(&line).is_err() {
//!                     break;
//!                 }
//!             }
//!             w.close();
//!         },
//!         Some("127.0.0.1"),
//!         8443,
//!         opts,
//!     )
//!     .await?;
//!
//! // …and a client that verifies it against its CA.
//! let client = TlsConfig::client().root_certificates_pem(ca_pem)?.build()?;
//! let opts = ConnectOptions {
//!     ssl: Some(Rc::new(client)),
//!     server_hostname: Some("localhost".into()),
//!     ..Default::default()
//! };
//! let (mut reader, writer) = lp.open_connection_with("127.0.0.1", 8443, opts, 64 * 1024).await?;
//! writer.write(b"hello\n")?;
//! assert_eq!(reader.readline().await?, b"hello\n");
//! # let _ = srv; Ok(()) }
//! ```
//!
//! The TLS transport wraps any host's stream transport and only uses
//! `anyloop-core`'s traits, so the crate is host-independent; see the
//! `session` module for flow control and the closing handshake.
//!
//! What the TLS transport's `get_extra_info` adds to the raw transport's:
//!
//! | name | value |
//! |---|---|
//! | `"peercert"` | `ExtraInfo::List` of `ExtraInfo::Bytes`: the peer's certificate chain, DER, leaf first |
//! | `"alpn_protocol"` | `ExtraInfo::Text`: the negotiated ALPN protocol |
//! | `"cipher"` | `ExtraInfo::Text`: the cipher suite (`"TLS13_AES_128_GCM_SHA256"`) |
//! | `"ssl_version"` | `ExtraInfo::Text`: `"TLSv1.2"` or `"TLSv1.3"` |
//! | `"server_hostname"` | `ExtraInfo::Text`: the name checked (clients) |
//!
//! Failures are `ErrorKind::Tls` errors whose message names the reason
//! (unknown CA, hostname mismatch, expired certificate, protocol version
//! mismatch…), with rustls' error as the source ([`rustls_error`]); a
//! handshake over `ssl_handshake_timeout` is `TimedOut`; a peer that
//! closes without close_notify is `UnexpectedEof`.
//!
//! [rustls]: https://docs.rs/rustls

#![warn(missing_docs)]

mod config;
mod error;
mod session;

/// The hook types of `anyloop-core` (so `anyloop::tls` has them all).
pub use anyloop_core::tls::{
    DEFAULT_SSL_HANDSHAKE_TIMEOUT, DEFAULT_SSL_SHUTDOWN_TIMEOUT, StartTlsOptions, TlsContext, TlsParams,
};
pub use config::{ClientBuilder, ServerBuilder, TlsConfig, TlsVersion};
pub use error::rustls_error;

/// The rustls crypto provider every [`TlsConfig`] uses.
pub const CRYPTO_PROVIDER: &str = "aws-lc-rs";
/// The rustls version this crate uses, for [`TlsConfig::from_rustls_client`]
/// and for matching on [`rustls_error`].
pub use rustls;
