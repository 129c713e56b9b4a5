//! Making sockets: non-blocking, close-on-exec (socket2 does that
//! atomically where the OS can), `SO_NOSIGPIPE` on Apple systems, and
//! wrapping descriptors the caller hands over.

use std::io;
use std::net::SocketAddr;

#[cfg(unix)]
use anyloop_core::ErrorKind;
use anyloop_core::{Error, RawFd};
use socket2::{Domain, Protocol, Socket, Type};

/// A new non-blocking socket for `addr`'s family.
pub(crate) fn new_socket(addr: &SocketAddr, ty: Type) -> io::Result<Socket> {
    let proto = if ty == Type::STREAM { Protocol::TCP } else { Protocol::UDP };
    let s = Socket::new(Domain::for_address(*addr), ty, Some(proto))?;
    prepare(&s)?;
    Ok(s)
}

/// Non-blocking, and no SIGPIPE where sends cannot say so per call.
pub(crate) fn prepare(s: &Socket) -> io::Result<()> {
    s.set_nonblocking(true)?;
    #[cfg(any(target_os = "macos", target_os = "ios"))]
    s.set_nosigpipe(true)?;
    Ok(())
}

/// Whether a connect error means "in progress".
pub(crate) fn in_progress(e: &io::Error) -> bool {
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        return true;
    }
    e.kind() == io::ErrorKind::WouldBlock
}

/// Takes ownership of a descriptor given to the loop (`sock=` options,
/// `connect_accepted_socket`). `InvalidInput` if it is not a socket.
#[cfg(unix)]
pub(crate) fn adopt(fd: RawFd) -> Result<Socket, Error> {
    use std::os::fd::{FromRawFd, OwnedFd};
    if fd < 0 {
        return Err(Error::new(ErrorKind::InvalidInput, format!("invalid file descriptor: {fd}")));
    }
    // Validate before taking ownership, so a bad fd is not closed by us.
    let borrowed = borrow(fd)?;
    let sr = socket2::SockRef::from(&borrowed);
    if let Err(e) = sr.r#type() {
        return Err(Error::from(e).context(format!("fd {fd} is not a socket")));
    }
    // SAFETY: the fd is open (getsockopt succeeded) and the API transfers
    // its ownership to the loop, which closes it exactly once.
    let s = Socket::from(unsafe { OwnedFd::from_raw_fd(fd) });
    prepare(&s).map_err(Error::from)?;
    Ok(s)
}

/// Windows descriptors are not `i32` file descriptors.
#[cfg(not(unix))]
pub(crate) fn adopt(_fd: RawFd) -> Result<Socket, Error> {
    Err(Error::unsupported("passing a socket by descriptor", "raw descriptors are Unix-only"))
}

/// Borrows a raw fd for the duration of one call.
#[cfg(unix)]
pub(crate) fn borrow(fd: RawFd) -> Result<std::os::fd::BorrowedFd<'static>, Error> {
    if fd < 0 {
        return Err(Error::new(ErrorKind::InvalidInput, format!("invalid file descriptor: {fd}")));
    }
    // SAFETY: the caller of the loop API lends `fd` for the operation and
    // keeps it open meanwhile (asyncio's contract for `sock_*`); it is not
    // -1. The borrow never outlives the operation that uses it.
    Ok(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })
}

/// Converts a C `sockaddr` of `len` bytes to an IP address, if it is one.
///
/// # Safety
/// `sa` must point to at least `len` readable bytes of a socket address.
#[cfg(unix)]
pub(crate) unsafe fn sockaddr_to_std(sa: *const libc::sockaddr, len: usize) -> Option<SocketAddr> {
    if sa.is_null() || len > std::mem::size_of::<libc::sockaddr_storage>() {
        return None;
    }
    let mut storage = socket2::SockAddrStorage::zeroed();
    // SAFETY: `len` bytes are readable at `sa` (the caller's promise) and fit
    // into the zeroed storage (checked above).
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.cast::<u8>(),
            (&mut storage as *mut socket2::SockAddrStorage).cast::<u8>(),
            len,
        );
        socket2::SockAddr::new(storage, len as libc::socklen_t)
    }
    .as_socket()
}

/// The `Addr` of a socket2 address: IP, Unix path / abstract name, unnamed.
pub(crate) fn to_addr(a: &socket2::SockAddr) -> anyloop_core::net::Addr {
    use anyloop_core::net::Addr;
    if let Some(ip) = a.as_socket() {
        return Addr::Ip(ip);
    }
    #[cfg(unix)]
    if let Some(u) = a.as_unix() {
        let s = crate::stream::unix_addr_string(&u);
        return if s.is_empty() { Addr::Unnamed } else { Addr::Unix(s) };
    }
    Addr::Unnamed
}

/// An error naming the address the operation was about.
pub(crate) fn with_addr(e: io::Error, what: &str, addr: impl std::fmt::Display) -> Error {
    Error::from(e).context(format!("{what} {addr}"))
}
