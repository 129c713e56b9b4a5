//! TLS failures as anyloop errors: `ErrorKind::Tls`, a message that names
//! the reason in plain words (unknown CA, hostname mismatch, expired
//! certificate, protocol version mismatch…), and rustls' error as the
//! source for code that wants to match on it (see [`rustls_error`]).

use anyloop_core::{Error, ErrorKind};
use rustls::{AlertDescription, CertificateError, PeerIncompatible};

/// What went wrong, in words, for the common handshake failures.
fn reason(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => format!("certificate verify failed: {}", certificate_reason(c)),
        E::AlertReceived(a) => alert_reason(*a),
        E::PeerIncompatible(p) => match p {
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled => {
                String::from("protocol version mismatch: no TLS version both sides accept")
            }
            PeerIncompatible::NoCipherSuitesInCommon => String::from("no cipher suite in common"),
            other => format!("the peer is incompatible: {other:?}"),
        },
        E::NoApplicationProtocol => String::from("no ALPN protocol in common"),
        E::NoCertificatesPresented => String::from("the peer presented no certificate"),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            String::from("the peer does not speak TLS as expected")
        }
        E::DecryptError => String::from("a record failed to decrypt (corrupt or forged data)"),
        E::PeerMisbehaved(_) => String::from("the peer violated the TLS protocol"),
        _ => String::from("TLS error"),
    }
}

fn certificate_reason(c: &CertificateError) -> String {
    match c {
        CertificateError::UnknownIssuer => String::from("unknown CA (the certificate is not signed by a trusted root)"),
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            String::from("hostname mismatch (the certificate is not valid for the server name)")
        }
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => String::from("certificate has expired"),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            String::from("certificate is not valid yet")
        }
        CertificateError::BadSignature => String::from("bad certificate signature"),
        CertificateError::BadEncoding => String::from("bad certificate (malformed)"),
        CertificateError::Revoked => String::from("certificate revoked"),
        CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
            String::from("certificate not valid for this purpose")
        }
        _ => String::from("bad certificate"),
    }
}

fn alert_reason(a: AlertDescription) -> String {
    let what = match a {
        AlertDescription::UnknownCA => "the peer rejected our certificate: unknown CA",
        AlertDescription::BadCertificate => "the peer rejected our certificate: bad certificate",
        AlertDescription::CertificateExpired => "the peer rejected our certificate: certificate has expired",
        AlertDescription::CertificateUnknown => "the peer rejected our certificate",
        AlertDescription::CertificateRequired => "the peer requires a client certificate",
        AlertDescription::ProtocolVersion => "protocol version mismatch: no TLS version both sides accept",
        AlertDescription::HandshakeFailure => "handshake failure (no common cipher suite or parameters)",
        AlertDescription::NoApplicationProtocol => "no ALPN protocol in common",
        AlertDescription::DecryptError => "the peer could not verify the handshake (decrypt error)",
        AlertDescription::UnrecognisedName => "the peer does not serve that server name",
        _ => return format!("the peer sent the fatal alert {a:?}"),
    };
    String::from(what)
}

/// `rustls_error` as an anyloop error of kind `Tls`: "{what}: {reason}: {rustls' message}".
pub(crate) fn tls_error(e: rustls::Error, what: &str) -> Error {
    let why = reason(&e);
    Error::wrap(ErrorKind::Tls, e).context(format_args!("{what}: {why}"))
}

/// The rustls error behind an anyloop error of kind `Tls`, if any: for
/// code that acts on the exact reason.
///
/// ```
/// # fn demo(e: &anyloop_core::Error) {
/// use anyloop_tls::{rustls, rustls_error};
/// if let Some(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)) = rustls_error(e) {
///     eprintln!("the server's CA is not trusted");
/// }
/// # }
/// ```
pub fn rustls_error(e: &Error) -> Option<&rustls::Error> {
    core::error::Error::source(e)?.downcast_ref::<rustls::Error>()
}
