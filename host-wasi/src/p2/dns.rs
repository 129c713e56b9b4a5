//! Name resolution on `wasi:sockets/ip-name-lookup`, without blocking the
//! loop: the lookup's pollable is awaited like any other source.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use anyloop_core::net::Family;
use anyloop_core::{Error, ErrorKind};
use wasip2::sockets::instance_network::instance_network;
use wasip2::sockets::ip_name_lookup::resolve_addresses;
use wasip2::sockets::network::ErrorCode;

use crate::reactor::{Reactor, Source};
use crate::ready::readiness;

/// The addresses of `host` (an address literal, possibly in brackets, or
/// a name to look up).
pub(crate) async fn resolve(reactor: &Rc<Reactor>, host: &str) -> Result<Vec<IpAddr>, Error> {
    let literal = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return Ok(vec![ip]);
    }
    let network = instance_network();
    let mut stream =
        resolve_addresses(&network, host).map_err(|c| super::code_error(c, &format!("getaddrinfo({host:?})")))?;
    let mut out = Vec::new();
    loop {
        match stream.resolve_next_address() {
            Ok(Some(ip)) => out.push(super::ip_from_wasi(ip)),
            Ok(None) => break,
            Err(ErrorCode::WouldBlock) => {
                stream = readiness(reactor, stream, |s| Source::Pollable(s.subscribe())).await;
            }
            Err(c) => return Err(super::code_error(c, &format!("getaddrinfo({host:?})"))),
        }
    }
    if out.is_empty() {
        return Err(Error::new(ErrorKind::NotFound, format!("getaddrinfo({host:?}): no address")));
    }
    Ok(out)
}

/// Whether `ip` is of `family` (`Unspec`: any).
pub(crate) fn family_matches(family: Family, ip: &IpAddr) -> bool {
    match family {
        Family::Inet => ip.is_ipv4(),
        Family::Inet6 => ip.is_ipv6(),
        _ => true,
    }
}

/// `host:port` resolved and filtered by family, in the resolver's order.
pub(crate) async fn resolve_addrs(
    reactor: &Rc<Reactor>,
    host: &str,
    port: u16,
    family: Family,
) -> Result<Vec<SocketAddr>, Error> {
    if family == Family::Unix {
        return Err(Error::new(ErrorKind::InvalidInput, super::net::NO_UNIX));
    }
    let ips = resolve(reactor, host).await?;
    let addrs: Vec<SocketAddr> =
        ips.into_iter().filter(|ip| family_matches(family, ip)).map(|ip| SocketAddr::new(ip, port)).collect();
    if addrs.is_empty() {
        return Err(Error::new(ErrorKind::NotFound, format!("getaddrinfo({host:?}): no address of family {family:?}")));
    }
    Ok(addrs)
}
