//! The kubelet's port-forward protocol over a WebSocket, as the node agent serves it
//! and as rkctl and the API server speak it to the agent.
//!
//! Port `i` of a request gets two channels: `2i` carries the connection's bytes both
//! ways, `2i+1` an error message from the node. Every binary message starts with its
//! channel's byte. Before anything else, each channel carries the port number (two
//! bytes, little endian), so a client can tell the channels apart.

/// The subprotocols, binary first (`v4.base64.channel.k8s.io` sends text frames:
/// the channel as an ASCII digit, then base64).
pub const PROTOCOLS: [&str; 2] = ["v4.channel.k8s.io", "v4.base64.channel.k8s.io"];

/// What a message from the node carries, for a client of one port.
#[derive(Debug, PartialEq, Eq)]
pub enum Received<'a> {
    /// Bytes of the connection (the port header already taken off).
    Data(&'a [u8]),
    /// Part of the node's error message.
    Error(&'a [u8]),
    /// Nothing for the caller: a port header, or a channel of another port.
    Nothing,
}

/// A client's reader for a one-port request: strips the port headers off the data
/// and error channels (0 and 1), wherever the messages split them.
#[derive(Debug, Default)]
pub struct OnePort {
    /// Header bytes still expected on channels 0 and 1.
    header_left: [u8; 2],
    started: bool,
}

impl OnePort {
    /// What the binary message `msg` carries.
    pub fn receive<'a>(&mut self, msg: &'a [u8]) -> Received<'a> {
        if !self.started {
            self.header_left = [2, 2];
            self.started = true;
        }
        let Some((&ch, mut rest)) = msg.split_first() else { return Received::Nothing };
        if let Some(left) = self.header_left.get_mut(usize::from(ch)) {
            let n = usize::from(*left).min(rest.len());
            rest = &rest[n..];
            *left -= n as u8;
        }
        match ch {
            _ if rest.is_empty() => Received::Nothing,
            0 => Received::Data(rest),
            1 => Received::Error(rest),
            _ => Received::Nothing,
        }
    }
}

/// A binary message of `data` for the connection of port `i` (channel `2i`).
pub fn data_message(port_index: u8, data: &[u8]) -> Vec<u8> {
    crate::channel_frame(port_index * 2, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_headers_come_off_however_messages_split_them() {
        let mut p = OnePort::default();
        assert_eq!(p.receive(&[0, 0x90, 0x1f]), Received::Nothing);
        assert_eq!(p.receive(&[1, 0x90]), Received::Nothing);
        // The error channel's second header byte arrives with the message.
        assert_eq!(p.receive(&[1, 0x1f, b'n', b'o']), Received::Error(b"no"));
        assert_eq!(p.receive(&[0, b'h', b'i']), Received::Data(b"hi"));
        assert_eq!(p.receive(&[0]), Received::Nothing);
        assert_eq!(p.receive(&[]), Received::Nothing);
        assert_eq!(p.receive(&[2, b'x']), Received::Nothing, "another port's channel");
        // Header and data in one message.
        let mut p = OnePort::default();
        assert_eq!(p.receive(&[0, 80, 0, b'a']), Received::Data(b"a"));
        assert_eq!(data_message(1, b"x"), vec![2, b'x']);
    }
}
