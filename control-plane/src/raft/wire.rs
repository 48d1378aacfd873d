//! A structural check of raft message bytes before rust-protobuf parses them.
//!
//! rust-protobuf 2 recurses without a bound when it skips unknown *group* fields,
//! so crafted bytes can overflow the stack (RUSTSEC-2024-0437). eraftpb uses no
//! groups, so this walks the bytes with eraftpb's schema, refuses any group or
//! malformed field, and only descends into the fields the schema says are
//! messages. Bytes that pass parse with bounded recursion. (Peer authentication
//! is the other half of the defence: only cluster members may send at all.)

/// Why raft message bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed raft message: {0}")]
pub struct WireError(&'static str);

/// Which fields of a message type are themselves messages (and of which type).
#[derive(Clone, Copy)]
enum Schema {
    Message,
    Entry,
    Snapshot,
    SnapshotMetadata,
    ConfState,
}

impl Schema {
    fn nested(self, field: u64) -> Option<Schema> {
        match (self, field) {
            (Schema::Message, 7) => Some(Schema::Entry),
            (Schema::Message, 9) => Some(Schema::Snapshot),
            (Schema::Snapshot, 2) => Some(Schema::SnapshotMetadata),
            (Schema::SnapshotMetadata, 1) => Some(Schema::ConfState),
            _ => None,
        }
    }
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, WireError> {
    let mut value = 0u64;
    for shift in 0..10 {
        let byte = *buf.get(*at).ok_or(WireError("truncated varint"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << (7 * shift);
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(WireError("varint too long"))
}

fn check(buf: &[u8], schema: Schema) -> Result<(), WireError> {
    let mut at = 0;
    while at < buf.len() {
        let key = varint(buf, &mut at)?;
        let (field, wire_type) = (key >> 3, key & 7);
        if field == 0 {
            return Err(WireError("field number 0"));
        }
        match wire_type {
            0 => {
                varint(buf, &mut at)?;
            }
            1 => at = at.checked_add(8).filter(|&e| e <= buf.len()).ok_or(WireError("truncated fixed64"))?,
            5 => at = at.checked_add(4).filter(|&e| e <= buf.len()).ok_or(WireError("truncated fixed32"))?,
            2 => {
                let len = usize::try_from(varint(buf, &mut at)?).map_err(|_| WireError("length overflow"))?;
                let end = at.checked_add(len).filter(|&e| e <= buf.len()).ok_or(WireError("length past the end"))?;
                if let Some(inner) = schema.nested(field) {
                    check(&buf[at..end], inner)?;
                }
                at = end;
            }
            3 | 4 => return Err(WireError("group fields are not allowed")),
            _ => return Err(WireError("unknown wire type")),
        }
    }
    Ok(())
}

/// Checks bytes meant to be an `eraftpb.Message`.
pub fn check_message(buf: &[u8]) -> Result<(), WireError> {
    check(buf, Schema::Message)
}

/// Checks and parses an `eraftpb.Message`.
pub fn parse_message(buf: &[u8]) -> Result<raft::eraftpb::Message, WireError> {
    use protobuf::Message as _;
    check_message(buf)?;
    let mut msg = raft::eraftpb::Message::default();
    msg.merge_from_bytes(buf).map_err(|_| WireError("undecodable"))?;
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protobuf::Message as _;
    use raft::eraftpb::{Entry, Message, MessageType};

    #[test]
    fn real_messages_pass() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.to = 2;
        m.from = 1;
        m.entries.push(Entry { index: 7, data: bytes::Bytes::from_static(b"payload"), ..Default::default() });
        m.mut_snapshot().mut_metadata().mut_conf_state().voters = vec![1, 2, 3];
        let bytes = m.write_to_bytes().unwrap();
        assert_eq!(parse_message(&bytes).unwrap(), m);
    }

    #[test]
    fn nested_groups_are_refused_without_recursing() {
        // Field 20, wire type 3 (start group), nested 100k deep: the classic
        // stack-overflow input for rust-protobuf 2.
        let mut evil = Vec::new();
        for _ in 0..100_000 {
            evil.extend_from_slice(&[0xa3, 0x01]);
        }
        assert!(parse_message(&evil).is_err());
        // The same hidden inside an entry's bytes is refused too.
        let mut wrapped = vec![0x3a];
        let mut len = Vec::new();
        let mut n = evil.len();
        while n >= 0x80 {
            len.push((n as u8) | 0x80);
            n >>= 7;
        }
        len.push(n as u8);
        wrapped.extend(len);
        wrapped.extend(evil);
        assert!(parse_message(&wrapped).is_err());
    }

    #[test]
    fn garbage_is_refused_not_panicking() {
        for sample in [&b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"[..], b"\x3a\xff\x01", b"\x0f", b"\x08"] {
            assert!(parse_message(sample).is_err(), "{sample:?}");
        }
        // Arbitrary bytes never panic, whatever the verdict.
        let mut seed = 0x9e3779b97f4a7c15u64;
        for _ in 0..2000 {
            let len = (seed % 64) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = parse_message(&bytes);
        }
    }
}
