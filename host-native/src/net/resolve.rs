//! Name resolution: `getaddrinfo` / `getnameinfo` in the executor, so the
//! loop never blocks on DNS, with asyncio's shortcut for address literals
//! (`_ipaddr_info`): `"127.0.0.1"` or `"::1"` with a numeric port needs no
//! thread at all — which keeps `create_connection("127.0.0.1", …)` cheap.
//!
//! The C library's resolver is used as is (it honours `/etc/hosts`,
//! `nsswitch.conf`…); on Windows, where only std's resolver is wired up,
//! hints other than the family are ignored and `getnameinfo` is
//! `Unsupported`.

use std::net::{IpAddr, SocketAddr};

use anyloop_core::net::{AddrInfo, AddrInfoHints, Family};
use anyloop_core::{Error, ErrorKind, EventLoop};

/// `SOCK_STREAM` as asyncio's `type=` takes it.
pub(crate) const SOCK_STREAM: i32 = 1;
/// `SOCK_DGRAM`.
pub(crate) const SOCK_DGRAM: i32 = 2;

#[cfg(unix)]
pub(crate) const AI_PASSIVE: i32 = libc::AI_PASSIVE;
#[cfg(not(unix))]
pub(crate) const AI_PASSIVE: i32 = 1;

fn family_matches(family: Family, addr: &SocketAddr) -> bool {
    match family {
        Family::Unspec => true,
        Family::Inet => addr.is_ipv4(),
        Family::Inet6 => addr.is_ipv6(),
        Family::Unix => false,
    }
}

/// The family of an address.
pub(crate) fn family_of(addr: &SocketAddr) -> Family {
    if addr.is_ipv4() { Family::Inet } else { Family::Inet6 }
}

/// asyncio's `_ipaddr_info`: resolves `host` without a lookup when it is an
/// address literal.
fn literal(host: Option<&str>, port: u16, family: Family) -> Option<Result<Vec<SocketAddr>, Error>> {
    let ip: IpAddr = host?.parse().ok()?;
    let addr = SocketAddr::new(ip, port);
    if !family_matches(family, &addr) {
        return Some(Err(Error::new(
            ErrorKind::InvalidInput,
            format!("address {ip} does not belong to the address family {family:?}"),
        )));
    }
    Some(Ok(vec![addr]))
}

/// Resolves `host:port` for a socket of type `socktype`, in the executor
/// unless `host` is a literal. `host` `None` with [`AI_PASSIVE`] means all
/// interfaces.
pub(crate) async fn resolve(
    lp: &EventLoop,
    host: Option<&str>,
    port: u16,
    family: Family,
    socktype: i32,
    flags: i32,
) -> Result<Vec<SocketAddr>, Error> {
    if let Some(r) = literal(host, port, family) {
        return r;
    }
    let hints = AddrInfoHints { family, socktype, proto: 0, flags };
    let host_s = host.map(str::to_owned);
    let infos =
        lp.run_in_executor(move || getaddrinfo_blocking(host_s.as_deref(), Some(&port.to_string()), hints)).await??;
    let mut addrs: Vec<SocketAddr> = Vec::with_capacity(infos.len());
    for i in infos {
        if !addrs.contains(&i.addr) {
            addrs.push(i.addr);
        }
    }
    if addrs.is_empty() {
        return Err(Error::new(ErrorKind::NotFound, "getaddrinfo() returned empty list"));
    }
    Ok(addrs)
}

/// `getaddrinfo` on the calling thread (the executor's).
#[cfg(unix)]
pub(crate) fn getaddrinfo_blocking(
    host: Option<&str>,
    port: Option<&str>,
    hints: AddrInfoHints,
) -> Result<Vec<AddrInfo>, Error> {
    use std::ffi::{CStr, CString};

    let c = |s: Option<&str>| -> Result<Option<CString>, Error> {
        s.map(|s| CString::new(s).map_err(|_| Error::new(ErrorKind::InvalidInput, "name contains a NUL byte")))
            .transpose()
    };
    let (chost, cport) = (c(host)?, c(port)?);
    // SAFETY: an all-zero addrinfo is the documented "no hints" value.
    let mut h: libc::addrinfo = unsafe { std::mem::zeroed() };
    h.ai_family = match hints.family {
        Family::Unspec => libc::AF_UNSPEC,
        Family::Inet => libc::AF_INET,
        Family::Inet6 => libc::AF_INET6,
        Family::Unix => return Err(Error::new(ErrorKind::InvalidInput, "getaddrinfo() does not resolve AF_UNIX")),
    };
    h.ai_socktype = hints.socktype;
    h.ai_protocol = hints.proto;
    h.ai_flags = hints.flags;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: the strings are NUL-terminated and outlive the call; `res` is
    // freed below with freeaddrinfo.
    let rc = unsafe {
        libc::getaddrinfo(
            chost.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            cport.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            &h,
            &mut res,
        )
    };
    if rc != 0 {
        return Err(gai_error(rc, host));
    }
    let mut out = Vec::new();
    let mut p = res;
    while !p.is_null() {
        // SAFETY: `p` walks the list getaddrinfo returned, which stays valid
        // until freeaddrinfo.
        let ai = unsafe { &*p };
        // SAFETY: ai_addr points to ai_addrlen bytes of a sockaddr.
        if let Some(addr) = unsafe { crate::net::socket::sockaddr_to_std(ai.ai_addr, ai.ai_addrlen as usize) } {
            let canonname = (!ai.ai_canonname.is_null())
                // SAFETY: a non-null ai_canonname is a NUL-terminated string.
                .then(|| unsafe { CStr::from_ptr(ai.ai_canonname) }.to_string_lossy().into_owned());
            out.push(AddrInfo {
                family: family_of(&addr),
                socktype: ai.ai_socktype,
                proto: ai.ai_protocol,
                canonname,
                addr,
            });
        }
        p = ai.ai_next;
    }
    // SAFETY: `res` came from a successful getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    Ok(out)
}

#[cfg(unix)]
fn gai_error(rc: i32, host: Option<&str>) -> Error {
    if rc == libc::EAI_SYSTEM {
        return Error::from(std::io::Error::last_os_error()).context("getaddrinfo failed");
    }
    // SAFETY: gai_strerror returns a static NUL-terminated string.
    let msg = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(rc)) }.to_string_lossy().into_owned();
    let kind = match rc {
        libc::EAI_NONAME => ErrorKind::NotFound,
        libc::EAI_FAMILY | libc::EAI_SERVICE | libc::EAI_SOCKTYPE | libc::EAI_BADFLAGS => ErrorKind::InvalidInput,
        _ => ErrorKind::Other,
    };
    Error::new(kind, format!("getaddrinfo({}) failed: [gai error {rc}] {msg}", host.unwrap_or("None")))
}

/// `getaddrinfo` through std's resolver (Windows).
#[cfg(not(unix))]
pub(crate) fn getaddrinfo_blocking(
    host: Option<&str>,
    port: Option<&str>,
    hints: AddrInfoHints,
) -> Result<Vec<AddrInfo>, Error> {
    use std::net::ToSocketAddrs;
    let port: u16 = match port {
        None => 0,
        Some(p) => p.parse().map_err(|_| Error::new(ErrorKind::InvalidInput, format!("not a port number: {p}")))?,
    };
    let host = host.unwrap_or(if hints.flags & AI_PASSIVE != 0 { "0.0.0.0" } else { "localhost" });
    let socktype = if hints.socktype == 0 { SOCK_STREAM } else { hints.socktype };
    Ok((host, port)
        .to_socket_addrs()?
        .filter(|a| family_matches(hints.family, a))
        .map(|addr| AddrInfo { family: family_of(&addr), socktype, proto: hints.proto, canonname: None, addr })
        .collect())
}

/// `getnameinfo` on the calling thread (the executor's).
#[cfg(unix)]
pub(crate) fn getnameinfo_blocking(addr: SocketAddr, flags: i32) -> Result<(String, String), Error> {
    let sa = socket2::SockAddr::from(addr);
    let mut host = [0 as libc::c_char; 1025];
    let mut serv = [0 as libc::c_char; 32];
    // SAFETY: `sa` is a valid sockaddr of `sa.len()` bytes; the buffers are
    // writable for the lengths passed.
    let rc = unsafe {
        libc::getnameinfo(
            sa.as_ptr().cast(),
            sa.len(),
            host.as_mut_ptr(),
            host.len() as _,
            serv.as_mut_ptr(),
            serv.len() as _,
            flags,
        )
    };
    if rc != 0 {
        return Err(gai_error(rc, Some(&addr.to_string())));
    }
    // SAFETY: on success both buffers hold NUL-terminated strings.
    let s = |b: &[libc::c_char]| unsafe { std::ffi::CStr::from_ptr(b.as_ptr()) }.to_string_lossy().into_owned();
    Ok((s(&host), s(&serv)))
}

/// `getnameinfo` needs the C resolver (not wired up on Windows).
#[cfg(not(unix))]
pub(crate) fn getnameinfo_blocking(_addr: SocketAddr, _flags: i32) -> Result<(String, String), Error> {
    Err(Error::unsupported("getnameinfo", "the native host has no reverse resolver on this platform"))
}

/// asyncio's `_interleave_addrinfos`: the first `first_family_count`
/// addresses of the first family, then the families alternating.
pub(crate) fn interleave(addrs: Vec<SocketAddr>, first_family_count: usize) -> Vec<SocketAddr> {
    let mut lists: Vec<(Family, std::collections::VecDeque<SocketAddr>)> = Vec::new();
    for a in addrs {
        let f = family_of(&a);
        match lists.iter_mut().find(|(g, _)| *g == f) {
            Some((_, l)) => l.push_back(a),
            None => lists.push((f, std::collections::VecDeque::from([a]))),
        }
    }
    let mut out = Vec::new();
    if first_family_count > 1
        && let Some((_, first)) = lists.first_mut()
    {
        for _ in 0..first_family_count - 1 {
            match first.pop_front() {
                Some(a) => out.push(a),
                None => break,
            }
        }
    }
    loop {
        let mut any = false;
        for (_, l) in lists.iter_mut() {
            if let Some(a) = l.pop_front() {
                out.push(a);
                any = true;
            }
        }
        if !any {
            return out;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleave_like_asyncio() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let v = vec![a("[::1]:1"), a("[::2]:1"), a("[::3]:1"), a("127.0.0.1:1"), a("127.0.0.2:1")];
        let one = interleave(v.clone(), 1);
        assert_eq!(one, vec![a("[::1]:1"), a("127.0.0.1:1"), a("[::2]:1"), a("127.0.0.2:1"), a("[::3]:1")]);
        let two = interleave(v, 2);
        assert_eq!(two, vec![a("[::1]:1"), a("[::2]:1"), a("127.0.0.1:1"), a("[::3]:1"), a("127.0.0.2:1")]);
    }

    #[test]
    fn literals_skip_the_resolver() {
        assert_eq!(
            literal(Some("127.0.0.1"), 80, Family::Unspec).unwrap().unwrap(),
            vec!["127.0.0.1:80".parse().unwrap()]
        );
        assert_eq!(literal(Some("::1"), 80, Family::Inet).unwrap().unwrap_err().kind(), ErrorKind::InvalidInput);
        assert!(literal(Some("localhost"), 80, Family::Unspec).is_none());
    }
}
