//! [`TlsConfig`]: what `ssl=` takes — asyncio's `SSLContext`, built on
//! rustls with the *aws-lc-rs* crypto provider.
//!
//! A configuration has a side: [`TlsConfig::client`] verifies servers (on
//! by default, against the bundled Mozilla roots of `webpki-roots`, with
//! the name checked, like `ssl.create_default_context()`);
//! [`TlsConfig::server`] presents a certificate and may verify clients.
//! Building one parses every PEM input, so a bad certificate or key is an
//! error at set-up, not at the first connection.
//!
//! Why *aws-lc-rs* (rustls' default provider): its AES-GCM is the fastest
//! on hand — AVX-512 VAES where the CPU has it; ~1.2× *ring*'s VAES-AVX2 on
//! the development machine, and AES-GCM is a third of a bulk TLS
//! transfer's CPU (`just bench-tls`) — and on Linux and macOS it builds
//! with the C compiler alone (no cmake, Go or NASM; prebuilt NASM objects
//! on Windows).

use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use anyloop_core::tls::{TlsContext, TlsParams};
use anyloop_core::{Error, ErrorKind, EventLoop, LoopFuture, StreamProtocol, Transport};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};

use crate::session::{Refused, Session};

/// A TLS protocol version (asyncio's `ssl.TLSVersion`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, msg.into())
}

/// Parses every certificate of a PEM bundle; an error if there is none.
fn certs_from_pem(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(format!("{what}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(format!("{what}: no CERTIFICATE found in the PEM data")));
    }
    Ok(certs)
}

fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| invalid(format!("private key: no usable PEM key found: {e}")))
}

fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, Error> {
    let mut roots = RootCertStore::empty();
    for cert in certs_from_pem(pem, "root certificates")? {
        roots.add(cert).map_err(|e| invalid(format!("root certificates: {e}")))?;
    }
    Ok(roots)
}

fn tls_setup_error(what: &str, e: impl fmt::Display) -> Error {
    invalid(format!("{what}: {e}"))
}

/// Versions and cipher suites shared by both builders.
#[derive(Clone, Debug)]
struct Protocols {
    min: TlsVersion,
    max: TlsVersion,
    suites: Option<Vec<String>>,
    alpn: Vec<Vec<u8>>,
}

impl Default for Protocols {
    fn default() -> Self {
        Protocols { min: TlsVersion::Tls12, max: TlsVersion::Tls13, suites: None, alpn: Vec::new() }
    }
}

impl Protocols {
    fn versions(&self) -> Result<Vec<&'static rustls::SupportedProtocolVersion>, Error> {
        let mut v = Vec::new();
        if self.min <= TlsVersion::Tls12 && self.max >= TlsVersion::Tls12 {
            v.push(&rustls::version::TLS12);
        }
        if self.max >= TlsVersion::Tls13 {
            v.push(&rustls::version::TLS13);
        }
        if v.is_empty() {
            return Err(invalid(format!("minimum_version {:?} is above maximum_version {:?}", self.min, self.max)));
        }
        Ok(v)
    }

    fn provider(&self) -> Result<Arc<CryptoProvider>, Error> {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        if let Some(names) = &self.suites {
            let mut chosen = Vec::new();
            for name in names {
                let Some(s) = provider.cipher_suites.iter().find(|s| s.suite().as_str() == Some(name.as_str())) else {
                    let known: Vec<_> = provider.cipher_suites.iter().filter_map(|s| s.suite().as_str()).collect();
                    return Err(invalid(format!("unknown cipher suite {name:?} (known: {})", known.join(", "))));
                };
                chosen.push(*s);
            }
            provider.cipher_suites = chosen;
        }
        Ok(Arc::new(provider))
    }
}

/// A TLS configuration for connections and servers: what the `ssl` field
/// of `ConnectOptions` / `ServerOptions` and `start_tls` take (asyncio's
/// `SSLContext`). Cheap to clone; pass it as `Some(Rc::new(config))`.
///
/// ```no_run
/// # async fn demo(lp: &anyloop_core::EventLoop) -> Result<(), anyloop_core::Error> {
/// use std::rc::Rc;
/// use anyloop_core::net::ConnectOptions;
/// use anyloop_tls::TlsConfig;
///
/// let ssl = TlsConfig::client().alpn_protocols(["http/1.1"]).build()?;
/// let opts = ConnectOptions { ssl: Some(Rc::new(ssl)), ..Default::default() };
/// let (reader, writer) = lp.open_connection_with("example.org", 443, opts, 64 * 1024).await?;
/// # let _ = (reader, writer); Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    side: Side,
}

#[derive(Clone)]
enum Side {
    Client {
        config: Arc<ClientConfig>,
        /// The same, without the name check, for `server_hostname = ""`
        /// (`None` for a configuration made by rustls' own builder).
        no_name_check: Option<Arc<ClientConfig>>,
    },
    Server(Arc<ServerConfig>),
}

impl TlsConfig {
    /// A client configuration: server certificates verified against the
    /// bundled roots and checked against the server name; TLS 1.2 and 1.3.
    pub fn client() -> ClientBuilder {
        ClientBuilder { roots: None, verify: true, client_cert: None, protocols: Protocols::default() }
    }

    /// A server configuration presenting the certificate chain
    /// `cert_chain_pem` (leaf first) with the private key `key_pem` (PKCS#8,
    /// PKCS#1 or SEC1), as asyncio's `load_cert_chain`.
    pub fn server(cert_chain_pem: &[u8], key_pem: &[u8]) -> ServerBuilder {
        ServerBuilder {
            chain: cert_chain_pem.to_vec(),
            key: key_pem.to_vec(),
            client_auth: ClientAuth::None,
            protocols: Protocols::default(),
        }
    }

    /// A client configuration from a rustls one, for what the builder does
    /// not cover (session resumption settings, key logging…). Such a
    /// configuration cannot turn the name check off with
    /// `server_hostname = ""`.
    pub fn from_rustls_client(config: Arc<ClientConfig>) -> TlsConfig {
        TlsConfig { side: Side::Client { config, no_name_check: None } }
    }

    /// A server configuration from a rustls one.
    pub fn from_rustls_server(config: Arc<ServerConfig>) -> TlsConfig {
        TlsConfig { side: Side::Server(config) }
    }

    /// Whether this is a server configuration.
    pub fn is_server(&self) -> bool {
        matches!(self.side, Side::Server(_))
    }

    fn new_connection(&self, params: &TlsParams) -> Result<rustls::Connection, Error> {
        match &self.side {
            Side::Server(config) => rustls::ServerConnection::new(config.clone())
                .map(rustls::Connection::Server)
                .map_err(|e| crate::error::tls_error(e, "TLS set-up failed")),
            Side::Client { config, no_name_check } => {
                let name = params.server_hostname.as_deref().unwrap_or_default();
                let (config, name) = if name.is_empty() {
                    // asyncio's `server_hostname=''`: no name check, no SNI.
                    let Some(config) = no_name_check.clone() else {
                        return Err(invalid(
                            "server_hostname=\"\" (no name check) needs a configuration from TlsConfig::client()",
                        ));
                    };
                    (config, ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into()))
                } else {
                    let name = ServerName::try_from(name.to_owned())
                        .map_err(|e| invalid(format!("invalid server_hostname {name:?}: {e}")))?;
                    (config.clone(), name)
                };
                rustls::ClientConnection::new(config, name)
                    .map(rustls::Connection::Client)
                    .map_err(|e| crate::error::tls_error(e, "TLS set-up failed"))
            }
        }
    }
}

impl TlsContext for TlsConfig {
    fn check(&self, server_side: bool) -> Result<(), Error> {
        match (server_side, self.is_server()) {
            (true, false) => Err(invalid(
                "a client TLS configuration was given for the server side (use TlsConfig::server(cert, key))",
            )),
            (false, true) => {
                Err(invalid("a server TLS configuration was given for the client side (use TlsConfig::client())"))
            }
            _ => Ok(()),
        }
    }

    fn start(
        &self,
        lp: &EventLoop,
        protocol: StreamProtocol,
        params: TlsParams,
        waiter: Option<LoopFuture<Rc<dyn Transport>>>,
    ) -> StreamProtocol {
        match self.new_connection(&params) {
            Ok(conn) => Session::start(lp, conn, protocol, params, waiter),
            Err(e) => Refused::protocol(e, waiter),
        }
    }
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (side, alpn) = match &self.side {
            Side::Client { config, .. } => ("client", &config.alpn_protocols),
            Side::Server(config) => ("server", &config.alpn_protocols),
        };
        let alpn: Vec<_> = alpn.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
        f.debug_struct("TlsConfig").field("side", &side).field("alpn", &alpn).finish()
    }
}

/// Builds a client [`TlsConfig`]; from [`TlsConfig::client`].
pub struct ClientBuilder {
    roots: Option<RootCertStore>,
    verify: bool,
    client_cert: Option<(Vec<u8>, Vec<u8>)>,
    protocols: Protocols,
}

impl ClientBuilder {
    /// Trusts the CA certificates of `pem` *instead of* the bundled roots
    /// (asyncio's `create_default_context(cadata=…)`); call again to add
    /// more.
    pub fn root_certificates_pem(mut self, pem: &[u8]) -> Result<Self, Error> {
        let more = roots_from_pem(pem)?;
        self.roots.get_or_insert_with(RootCertStore::empty).roots.extend(more.roots);
        Ok(self)
    }

    /// Presents this certificate chain and key when the server asks for a
    /// client certificate (asyncio's `load_cert_chain` on a client).
    pub fn client_certificate_pem(mut self, cert_chain_pem: &[u8], key_pem: &[u8]) -> Self {
        self.client_cert = Some((cert_chain_pem.to_vec(), key_pem.to_vec()));
        self
    }

    /// Offers these ALPN protocols, most preferred first
    /// (`set_alpn_protocols`); the chosen one is the transport's
    /// `alpn_protocol` extra info.
    pub fn alpn_protocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        self.protocols.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// The lowest TLS version accepted (default 1.2).
    pub fn minimum_version(mut self, v: TlsVersion) -> Self {
        self.protocols.min = v;
        self
    }

    /// The highest TLS version offered (default 1.3).
    pub fn maximum_version(mut self, v: TlsVersion) -> Self {
        self.protocols.max = v;
        self
    }

    /// Restricts the cipher suites to these, by their IANA names
    /// (`"TLS13_AES_128_GCM_SHA256"`, `"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"`…).
    pub fn cipher_suites<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.protocols.suites = Some(names.into_iter().map(|s| s.as_ref().to_owned()).collect());
        self
    }

    /// **Dangerous:** accepts any server certificate for any name. The
    /// connection is still encrypted, but not authenticated: anyone on the
    /// path can read and change it (asyncio's `check_hostname = False` plus
    /// `verify_mode = CERT_NONE`). Only for tests against throw-away
    /// servers.
    pub fn dangerous_disable_verification(mut self) -> Self {
        self.verify = false;
        self
    }

    /// The configuration; `InvalidInput` naming the bad PEM input, version
    /// range or cipher suite.
    pub fn build(self) -> Result<TlsConfig, Error> {
        let provider = self.protocols.provider()?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.protocols.versions()?)
            .map_err(|e| tls_setup_error("TLS versions", e))?;
        let verifier: Arc<dyn ServerCertVerifier> = if self.verify {
            let roots = match self.roots {
                Some(r) => r,
                None => RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() },
            };
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| tls_setup_error("root certificates", e))?
        } else {
            Arc::new(NoVerification(provider.signature_verification_algorithms))
        };
        let builder = builder.dangerous().with_custom_certificate_verifier(verifier.clone());
        let mut config = match self.client_cert {
            Some((chain, key)) => builder
                .with_client_auth_cert(certs_from_pem(&chain, "client certificate")?, key_from_pem(&key)?)
                .map_err(|e| tls_setup_error("client certificate", e))?,
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.protocols.alpn;
        let mut relaxed = config.clone();
        if self.verify {
            relaxed.dangerous().set_certificate_verifier(Arc::new(NoNameCheck(verifier)));
        }
        Ok(TlsConfig { side: Side::Client { config: Arc::new(config), no_name_check: Some(Arc::new(relaxed)) } })
    }
}

enum ClientAuth {
    None,
    Optional(Vec<u8>),
    Required(Vec<u8>),
}

/// Builds a server [`TlsConfig`]; from [`TlsConfig::server`].
pub struct ServerBuilder {
    chain: Vec<u8>,
    key: Vec<u8>,
    client_auth: ClientAuth,
    protocols: Protocols,
}

impl ServerBuilder {
    /// Requires a client certificate signed by one of the CAs in `ca_pem`
    /// (asyncio's `verify_mode = CERT_REQUIRED` on a server).
    pub fn client_auth_required(mut self, ca_pem: &[u8]) -> Self {
        self.client_auth = ClientAuth::Required(ca_pem.to_vec());
        self
    }

    /// Verifies a client certificate if one is presented, but accepts
    /// clients without one (`CERT_OPTIONAL`).
    pub fn client_auth_optional(mut self, ca_pem: &[u8]) -> Self {
        self.client_auth = ClientAuth::Optional(ca_pem.to_vec());
        self
    }

    /// Accepts these ALPN protocols, most preferred first; a client that
    /// offers ALPN but none of these is refused (`no_application_protocol`).
    pub fn alpn_protocols<I, P>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        self.protocols.alpn = protocols.into_iter().map(|p| p.as_ref().to_vec()).collect();
        self
    }

    /// The lowest TLS version accepted (default 1.2).
    pub fn minimum_version(mut self, v: TlsVersion) -> Self {
        self.protocols.min = v;
        self
    }

    /// The highest TLS version accepted (default 1.3).
    pub fn maximum_version(mut self, v: TlsVersion) -> Self {
        self.protocols.max = v;
        self
    }

    /// Restricts the cipher suites, by IANA name (see
    /// [`ClientBuilder::cipher_suites`]).
    pub fn cipher_suites<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.protocols.suites = Some(names.into_iter().map(|s| s.as_ref().to_owned()).collect());
        self
    }

    /// The configuration; `InvalidInput` naming the bad PEM input (or a key
    /// that does not match the certificate), version range or suite.
    pub fn build(self) -> Result<TlsConfig, Error> {
        let provider = self.protocols.provider()?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.protocols.versions()?)
            .map_err(|e| tls_setup_error("TLS versions", e))?;
        let builder = match &self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            ClientAuth::Optional(ca) | ClientAuth::Required(ca) => {
                let mut v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots_from_pem(ca)?), provider);
                if matches!(self.client_auth, ClientAuth::Optional(_)) {
                    v = v.allow_unauthenticated();
                }
                builder.with_client_cert_verifier(v.build().map_err(|e| tls_setup_error("client CA certificates", e))?)
            }
        };
        let chain = certs_from_pem(&self.chain, "server certificate")?;
        let mut config = builder
            .with_single_cert(chain, key_from_pem(&self.key)?)
            .map_err(|e| tls_setup_error("server certificate and key", e))?;
        config.alpn_protocols = self.protocols.alpn;
        Ok(TlsConfig::from_rustls_server(Arc::new(config)))
    }
}

/// Verifies the chain as the configuration's verifier does, but accepts
/// any name.
#[derive(Debug)]
struct NoNameCheck(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for NoNameCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            // webpki checks the chain first: a name error means the chain is good.
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Accepts any certificate (the handshake signatures are still checked, so
/// the peer does hold the key of the certificate it sent).
#[derive(Debug)]
struct NoVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
