//! The fallback sensor: the kernel's netlink process connector, which reports forks, execs
//! and exits of every process by pid on any kernel, BTF or not. It needs CAP_NET_ADMIN and
//! nothing else. The rest of a process is read from /proc when the message arrives, so a
//! process that is already gone by then is missed, and nothing but exec, fork and exit is
//! seen: the agent reports which rules that leaves uncovered.

use std::os::fd::OwnedFd;

use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketType};

use crate::error::Error;

const NLMSG_HDRLEN: usize = 16;
const CN_MSG_LEN: usize = 20;
const NLMSG_DONE: u16 = 3;
const CN_IDX_PROC: u32 = 1;
const CN_VAL_PROC: u32 = 1;
const PROC_CN_MCAST_LISTEN: u32 = 1;

const PROC_EVENT_FORK: u32 = 0x1;
const PROC_EVENT_EXEC: u32 = 0x2;
const PROC_EVENT_EXIT: u32 = 0x8000_0000;

/// One process event, by pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcEvent {
    Fork {
        parent_tgid: u32,
        child_pid: u32,
        child_tgid: u32,
    },
    Exec {
        pid: u32,
        tgid: u32,
    },
    Exit {
        pid: u32,
        tgid: u32,
    },
}

/// The process events in one datagram (which may hold several netlink messages).
pub fn parse(datagram: &[u8]) -> Vec<ProcEvent> {
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let mut events = Vec::new();
    let mut rest = datagram;
    while rest.len() >= NLMSG_HDRLEN {
        let Some(len) = u32_at(rest, 0).map(|l| l as usize) else {
            break;
        };
        if len < NLMSG_HDRLEN || len > rest.len() {
            break;
        }
        let message = &rest[NLMSG_HDRLEN..len];
        // cn_msg, then proc_event: what, cpu, timestamp, then the event's data.
        if message.len() >= CN_MSG_LEN + 16 && u32_at(message, 0) == Some(CN_IDX_PROC) {
            let event = &message[CN_MSG_LEN..];
            let data = |i: usize| u32_at(event, 16 + 4 * i);
            let parsed = match u32_at(event, 0) {
                Some(PROC_EVENT_FORK) => (|| {
                    Some(ProcEvent::Fork {
                        parent_tgid: data(1)?,
                        child_pid: data(2)?,
                        child_tgid: data(3)?,
                    })
                })(),
                Some(PROC_EVENT_EXEC) => (|| {
                    Some(ProcEvent::Exec {
                        pid: data(0)?,
                        tgid: data(1)?,
                    })
                })(),
                Some(PROC_EVENT_EXIT) => (|| {
                    Some(ProcEvent::Exit {
                        pid: data(0)?,
                        tgid: data(1)?,
                    })
                })(),
                _ => None,
            };
            events.extend(parsed);
        }
        // Messages are 4-byte aligned.
        let next = (len + 3) & !3;
        rest = rest.get(next..).unwrap_or_default();
    }
    events
}

/// The subscription request: one netlink message carrying the listen operation.
fn listen_message(pid: u32) -> Vec<u8> {
    let total = NLMSG_HDRLEN + CN_MSG_LEN + 4;
    let mut m = Vec::with_capacity(total);
    m.extend((total as u32).to_ne_bytes());
    m.extend(NLMSG_DONE.to_ne_bytes());
    m.extend(0u16.to_ne_bytes()); // flags
    m.extend(0u32.to_ne_bytes()); // seq
    m.extend(pid.to_ne_bytes());
    m.extend(CN_IDX_PROC.to_ne_bytes());
    m.extend(CN_VAL_PROC.to_ne_bytes());
    m.extend(0u32.to_ne_bytes()); // seq
    m.extend(0u32.to_ne_bytes()); // ack
    m.extend(4u16.to_ne_bytes()); // len
    m.extend(0u16.to_ne_bytes()); // flags
    m.extend(PROC_CN_MCAST_LISTEN.to_ne_bytes());
    m
}

/// A subscribed process connector socket.
pub struct ProcConnector {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl ProcConnector {
    pub fn open() -> Result<ProcConnector, Error> {
        let io = |e: rustix::io::Errno| Error::Connector(e.into());
        let fd = rustix::net::socket(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            Some(netlink::CONNECTOR),
        )
        .map_err(io)?;
        let pid = std::process::id();
        rustix::net::bind(&fd, &SocketAddrNetlink::new(pid, CN_IDX_PROC)).map_err(io)?;
        rustix::net::send(&fd, &listen_message(pid), SendFlags::empty()).map_err(io)?;
        // A receive timeout lets the caller look at its stop flag now and then.
        rustix::net::sockopt::set_socket_timeout(
            &fd,
            rustix::net::sockopt::Timeout::Recv,
            Some(std::time::Duration::from_millis(200)),
        )
        .map_err(io)?;
        Ok(ProcConnector {
            fd,
            buf: vec![0; 64 * 1024],
        })
    }

    /// The next events; empty after the receive timeout.
    pub fn recv(&mut self) -> Result<Vec<ProcEvent>, Error> {
        match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
            Ok((n, _)) => Ok(parse(&self.buf[..n.min(self.buf.len())])),
            Err(rustix::io::Errno::AGAIN) | Err(rustix::io::Errno::INTR) => Ok(Vec::new()),
            // The socket's buffer overflowed: events were lost, and the socket goes on.
            Err(rustix::io::Errno::NOBUFS) => Ok(Vec::new()),
            Err(e) => Err(Error::Connector(e.into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(what: u32, data: &[u32]) -> Vec<u8> {
        let mut event = Vec::new();
        event.extend(what.to_ne_bytes());
        event.extend(0u32.to_ne_bytes());
        event.extend(0u64.to_ne_bytes());
        for d in data {
            event.extend(d.to_ne_bytes());
        }
        let mut cn = Vec::new();
        cn.extend(CN_IDX_PROC.to_ne_bytes());
        cn.extend(CN_VAL_PROC.to_ne_bytes());
        cn.extend([0u8; 8]);
        cn.extend((event.len() as u16).to_ne_bytes());
        cn.extend(0u16.to_ne_bytes());
        cn.extend(event);
        let len = NLMSG_HDRLEN + cn.len();
        let mut m = Vec::new();
        m.extend((len as u32).to_ne_bytes());
        m.extend(NLMSG_DONE.to_ne_bytes());
        m.extend([0u8; 10]);
        m.extend(cn);
        while m.len() % 4 != 0 {
            m.push(0);
        }
        m
    }

    #[test]
    fn datagrams_of_one_or_more_messages() {
        let mut d = message(PROC_EVENT_FORK, &[10, 10, 11, 11]);
        d.extend(message(PROC_EVENT_EXEC, &[11, 11]));
        d.extend(message(PROC_EVENT_EXIT, &[11, 11, 0, 17, 10, 10]));
        d.extend(message(0x4, &[1, 1, 0, 0])); // a uid change: not wanted
        assert_eq!(
            parse(&d),
            [
                ProcEvent::Fork {
                    parent_tgid: 10,
                    child_pid: 11,
                    child_tgid: 11
                },
                ProcEvent::Exec { pid: 11, tgid: 11 },
                ProcEvent::Exit { pid: 11, tgid: 11 },
            ]
        );
    }

    #[test]
    fn truncated_or_foreign_datagrams_give_what_is_whole() {
        let whole = message(PROC_EVENT_EXEC, &[5, 5]);
        assert_eq!(parse(&whole[..whole.len() - 6]), []);
        assert_eq!(parse(&[]), []);
        let mut d = whole.clone();
        d.extend([0xff; 7]);
        assert_eq!(parse(&d), [ProcEvent::Exec { pid: 5, tgid: 5 }]);
        let mut bad_len = whole;
        bad_len[0..4].copy_from_slice(&3u32.to_ne_bytes());
        assert_eq!(parse(&bad_len), []);
    }

    #[test]
    fn the_listen_request_is_one_message() {
        let m = listen_message(77);
        assert_eq!(m.len(), 40);
        assert_eq!(u32::from_ne_bytes([m[0], m[1], m[2], m[3]]), 40);
        assert_eq!(
            u32::from_ne_bytes([m[36], m[37], m[38], m[39]]),
            PROC_CN_MCAST_LISTEN
        );
    }
}
