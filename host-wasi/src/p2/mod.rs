//! wasip2 networking on `wasi:sockets`, and the stream adapters shared by
//! pipes and TCP: addresses and errors converted to anyloop's types.

pub(crate) mod dns;
pub(crate) mod net;
pub(crate) mod server;
pub(crate) mod streams;
pub(crate) mod tcp;
pub(crate) mod udp;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use anyloop_core::{Error, ErrorKind};
use wasip2::sockets::network::{
    ErrorCode, IpAddress, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress,
};

/// A `wasi:sockets` error code as an anyloop error.
pub(crate) fn code_error(code: ErrorCode, what: &str) -> Error {
    let kind = match code {
        ErrorCode::AccessDenied => ErrorKind::PermissionDenied,
        ErrorCode::NotSupported => ErrorKind::Unsupported,
        ErrorCode::InvalidArgument => ErrorKind::InvalidInput,
        ErrorCode::Timeout => ErrorKind::TimedOut,
        ErrorCode::WouldBlock => ErrorKind::WouldBlock,
        ErrorCode::InvalidState | ErrorCode::NotInProgress | ErrorCode::ConcurrencyConflict => ErrorKind::InvalidState,
        ErrorCode::NewSocketLimit => ErrorKind::TooManyOpenFiles,
        ErrorCode::AddressNotBindable => ErrorKind::AddrNotAvailable,
        ErrorCode::AddressInUse => ErrorKind::AddrInUse,
        ErrorCode::ConnectionRefused => ErrorKind::ConnectionRefused,
        ErrorCode::ConnectionReset => ErrorKind::ConnectionReset,
        ErrorCode::ConnectionAborted => ErrorKind::ConnectionAborted,
        ErrorCode::NameUnresolvable => ErrorKind::NotFound,
        _ => ErrorKind::Other,
    };
    let text = code.message().lines().next().unwrap_or("").trim_end_matches('.');
    Error::new(kind, format!("{what}: {text}"))
}

/// A failed stream operation (`last-operation-failed`) as an anyloop
/// error. wasip2 0.2 has no stable way to get the socket error code out of
/// a stream error, so the runtime's description decides the kind.
pub(crate) fn io_error(e: &wasip2::io::error::Error, what: &str) -> Error {
    let text = e.to_debug_string();
    let lower = text.to_ascii_lowercase();
    let kind = if lower.contains("reset") {
        ErrorKind::ConnectionReset
    } else if lower.contains("broken pipe") || lower.contains("pipe") {
        ErrorKind::BrokenPipe
    } else if lower.contains("abort") {
        ErrorKind::ConnectionAborted
    } else if lower.contains("timed out") || lower.contains("timeout") {
        ErrorKind::TimedOut
    } else {
        ErrorKind::Other
    };
    Error::new(kind, format!("{what}: {text}"))
}

/// `std` address → `wasi:sockets` address.
pub(crate) fn to_wasi(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(a) => {
            let [x, y, z, w] = a.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress { port: a.port(), address: (x, y, z, w) })
        }
        SocketAddr::V6(a) => {
            let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: a.port(),
                flow_info: a.flowinfo(),
                address: (s0, s1, s2, s3, s4, s5, s6, s7),
                scope_id: a.scope_id(),
            })
        }
    }
}

/// `wasi:sockets` address → `std` address.
pub(crate) fn from_wasi(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(a) => {
            let (x, y, z, w) = a.address;
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(x, y, z, w), a.port))
        }
        IpSocketAddress::Ipv6(a) => {
            let (s0, s1, s2, s3, s4, s5, s6, s7) = a.address;
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::new(s0, s1, s2, s3, s4, s5, s6, s7),
                a.port,
                a.flow_info,
                a.scope_id,
            ))
        }
    }
}

/// A resolved `wasi:sockets` IP address → `std`.
pub(crate) fn ip_from_wasi(ip: IpAddress) -> std::net::IpAddr {
    match ip {
        IpAddress::Ipv4((a, b, c, d)) => Ipv4Addr::new(a, b, c, d).into(),
        IpAddress::Ipv6((s0, s1, s2, s3, s4, s5, s6, s7)) => Ipv6Addr::new(s0, s1, s2, s3, s4, s5, s6, s7).into(),
    }
}

/// The `wasi:sockets` family of an address.
pub(crate) fn family_of(addr: &SocketAddr) -> IpAddressFamily {
    if addr.is_ipv4() { IpAddressFamily::Ipv4 } else { IpAddressFamily::Ipv6 }
}
