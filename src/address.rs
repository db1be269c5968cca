//! Addresses in every form Pants accepted.
//!
//! | Pants | pants |
//! |---|---|
//! | `"/tmp/sock"` (a `str`) | a path: [`Address::Unix`] |
//! | `8080` (an `int`) | [`Address::Port`]: the local host to connect, every interface to listen |
//! | `("example.com", 80)` | [`Address::Host`], resolved off the event loop |
//! | `("127.0.0.1", 80)`, `("::1", 80, 0, 0)` | [`Address::Ip`], flow info and scope id included |
//! | — | `"host:port"`, `"[::1]:80"` strings |
//!
//! ```
//! use pants::Address;
//! use std::net::SocketAddr;
//!
//! assert_eq!(Address::from(8080), Address::Port(8080));
//! assert_eq!(Address::from("127.0.0.1:80"), Address::Ip("127.0.0.1:80".parse::<SocketAddr>()?));
//! assert_eq!(Address::from("[::1]:80"), Address::Ip("[::1]:80".parse::<SocketAddr>()?));
//! assert_eq!(Address::from("example.com:443"), Address::Host("example.com".into(), 443));
//! assert_eq!(Address::from("/run/app.sock"), Address::Unix("/run/app.sock".into()));
//! assert_eq!(Address::from(("localhost", 6379)), Address::Host("localhost".into(), 6379));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::path::{Path, PathBuf};

/// Where to connect or listen.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Address {
    /// A UNIX domain socket path.
    Unix(PathBuf),
    /// A bare port: `127.0.0.1:port` to connect (Pants connected to the local
    /// host), `[::]:port` (IPv6 and IPv4 on one socket) to listen.
    Port(u16),
    /// An IP socket address; for IPv6, flow info and scope id are kept.
    Ip(SocketAddr),
    /// A host name and port, resolved without blocking the event loop. Every
    /// resolved address is tried in turn until one connects.
    Host(String, u16),
}

impl Address {
    /// A UNIX socket path.
    ///
    /// ```
    /// assert_eq!(pants::Address::unix("a.sock"), pants::Address::Unix("a.sock".into()));
    /// ```
    pub fn unix(path: impl AsRef<Path>) -> Self {
        Address::Unix(path.as_ref().to_path_buf())
    }

    /// An IPv6 address with flow info and scope id: Pants' 4-tuple.
    ///
    /// ```
    /// use std::net::Ipv6Addr;
    /// let a = pants::Address::ipv6(Ipv6Addr::LOCALHOST, 80, 0, 3);
    /// assert_eq!(a.to_string(), "[::1%3]:80");
    /// ```
    pub fn ipv6(ip: Ipv6Addr, port: u16, flowinfo: u32, scope_id: u32) -> Self {
        Address::Ip(SocketAddr::V6(SocketAddrV6::new(ip, port, flowinfo, scope_id)))
    }

    /// The socket address to connect to, if no resolution is needed.
    pub(crate) fn connect_target(&self) -> Option<SocketAddr> {
        match self {
            Address::Port(port) => Some(SocketAddr::from((Ipv4Addr::LOCALHOST, *port))),
            Address::Ip(addr) => Some(*addr),
            Address::Unix(_) | Address::Host(..) => None,
        }
    }

    /// The socket address to listen on, if no resolution is needed.
    pub(crate) fn listen_target(&self) -> Option<SocketAddr> {
        match self {
            Address::Port(port) => Some(SocketAddr::from((Ipv6Addr::UNSPECIFIED, *port))),
            Address::Ip(addr) => Some(*addr),
            Address::Unix(_) | Address::Host(..) => None,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(path) => write!(f, "{}", path.display()),
            Address::Port(port) => write!(f, ":{port}"),
            Address::Ip(addr) => write!(f, "{addr}"),
            Address::Host(host, port) => write!(f, "{host}:{port}"),
        }
    }
}

impl From<u16> for Address {
    fn from(port: u16) -> Self {
        Address::Port(port)
    }
}

impl From<SocketAddr> for Address {
    fn from(addr: SocketAddr) -> Self {
        Address::Ip(addr)
    }
}

impl From<SocketAddrV4> for Address {
    fn from(addr: SocketAddrV4) -> Self {
        Address::Ip(addr.into())
    }
}

impl From<SocketAddrV6> for Address {
    fn from(addr: SocketAddrV6) -> Self {
        Address::Ip(addr.into())
    }
}

impl From<(IpAddr, u16)> for Address {
    fn from((ip, port): (IpAddr, u16)) -> Self {
        Address::Ip(SocketAddr::new(ip, port))
    }
}

impl From<(Ipv4Addr, u16)> for Address {
    fn from((ip, port): (Ipv4Addr, u16)) -> Self {
        Address::Ip(SocketAddr::new(ip.into(), port))
    }
}

impl From<(Ipv6Addr, u16)> for Address {
    fn from((ip, port): (Ipv6Addr, u16)) -> Self {
        Address::Ip(SocketAddr::new(ip.into(), port))
    }
}

impl From<(&str, u16)> for Address {
    /// A literal IP is used as it is; anything else is a host name.
    fn from((host, port): (&str, u16)) -> Self {
        match host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            Ok(ip) => Address::Ip(SocketAddr::new(ip, port)),
            Err(_) => Address::Host(host.to_string(), port),
        }
    }
}

impl From<(String, u16)> for Address {
    fn from((host, port): (String, u16)) -> Self {
        Address::from((host.as_str(), port))
    }
}

impl From<&Path> for Address {
    fn from(path: &Path) -> Self {
        Address::Unix(path.to_path_buf())
    }
}

impl From<PathBuf> for Address {
    fn from(path: PathBuf) -> Self {
        Address::Unix(path)
    }
}

impl From<&str> for Address {
    /// `"ip:port"`, `"[ipv6]:port"` and `"host:port"` are network addresses;
    /// any other string (no `:` followed by a port number, or containing a
    /// `/`) is a UNIX socket path, as in Pants.
    fn from(s: &str) -> Self {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            return Address::Ip(addr);
        }
        if !s.contains('/') {
            if let Some((host, port)) = s.rsplit_once(':') {
                if let Ok(port) = port.parse::<u16>() {
                    if !host.is_empty() && !host.contains(':') {
                        return Address::Host(host.to_string(), port);
                    }
                }
            }
        }
        Address::Unix(PathBuf::from(s))
    }
}

impl From<String> for Address {
    fn from(s: String) -> Self {
        Address::from(s.as_str())
    }
}

impl From<&Address> for Address {
    fn from(a: &Address) -> Self {
        a.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strings() {
        assert_eq!(Address::from("localhost:80"), Address::Host("localhost".into(), 80));
        assert_eq!(Address::from("./sock"), Address::Unix("./sock".into()));
        assert_eq!(Address::from("sock"), Address::Unix("sock".into()));
        assert_eq!(Address::from("dir/x:80"), Address::Unix("dir/x:80".into()));
        assert!(matches!(Address::from("[fe80::1%2]:80"), Address::Ip(SocketAddr::V6(a)) if a.scope_id() == 2));
    }

    #[test]
    fn port_targets() {
        assert_eq!(Address::Port(1).connect_target(), Some("127.0.0.1:1".parse().unwrap()));
        assert_eq!(Address::Port(1).listen_target(), Some("[::]:1".parse().unwrap()));
    }
}
