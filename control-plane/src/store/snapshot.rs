//! The state machine as bytes: the data of a raft snapshot.
//!
//! The encoding is the `rk.store.v1.StoreSnapshot` protobuf message. It is written
//! one key at a time (a repeated field is just its elements one after another on the
//! wire), so encoding never builds a second copy of the key space as messages.

use super::mvcc::{Mvcc, Revision, Version};
use super::{Lease, StateMachine, Voters};
use bytes::Bytes;
use imbl::OrdSet;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint};
use rk_proto::store::{KeyHistory, KeyVersion, LeaseRecord, StoreSnapshot};

/// A snapshot's bytes could not be turned back into a state machine.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("snapshot data is not a valid store snapshot")]
    Protobuf(#[source] prost::DecodeError),
    #[error("snapshot data is inconsistent: {0}")]
    Inconsistent(String),
}

// Field numbers of StoreSnapshot, for the streaming encoder.
const F_KEYS: u32 = 4;
const F_LEASES: u32 = 5;
const F_MEMBERS: u32 = 6;
const F_REMOVED: u32 = 7;

fn put_message(buf: &mut Vec<u8>, field: u32, msg: &impl Message) {
    encode_key(field, WireType::LengthDelimited, buf);
    encode_varint(msg.encoded_len() as u64, buf);
    msg.encode_raw(buf);
}

/// Encodes the state machine (not the raft metadata: that travels beside it).
pub fn encode(sm: &StateMachine) -> Bytes {
    let head = StoreSnapshot {
        cluster_id: sm.cluster_id,
        revision: sm.mvcc.current_revision(),
        compact_revision: sm.mvcc.compact_revision(),
        ..Default::default()
    };
    let mut buf = Vec::with_capacity(head.encoded_len() + sm.mvcc.approximate_size() + 1024);
    head.encode_raw(&mut buf);
    for (key, history) in sm.mvcc.histories() {
        let msg = KeyHistory {
            key: key.clone(),
            versions: history
                .iter()
                .map(|v| KeyVersion {
                    mod_revision: v.rev.main,
                    sub_revision: v.rev.sub,
                    create_revision: v.create_revision,
                    version: v.version,
                    value: v.value.clone(),
                    lease: v.lease,
                    tombstone: v.tombstone,
                })
                .collect(),
        };
        put_message(&mut buf, F_KEYS, &msg);
    }
    for (id, lease) in sm.leases.iter() {
        put_message(&mut buf, F_LEASES, &LeaseRecord { id: *id, ttl: lease.ttl });
    }
    for m in sm.members.values() {
        put_message(&mut buf, F_MEMBERS, m);
    }
    if !sm.removed.is_empty() {
        // A packed repeated uint64.
        let mut packed = Vec::new();
        for id in &sm.removed {
            encode_varint(*id, &mut packed);
        }
        encode_key(F_REMOVED, WireType::LengthDelimited, &mut buf);
        encode_varint(packed.len() as u64, &mut buf);
        buf.extend_from_slice(&packed);
    }
    Bytes::from(buf)
}

/// Rebuilds a state machine from [`encode`]d bytes. Raft metadata (applied index,
/// term, voters) is set by the caller from the snapshot's metadata.
pub fn decode(data: &[u8], voters: Voters) -> Result<StateMachine, DecodeError> {
    let snap = StoreSnapshot::decode(data).map_err(DecodeError::Protobuf)?;
    let mut histories = Vec::with_capacity(snap.keys.len());
    let mut leases: imbl::OrdMap<i64, Lease> =
        snap.leases.iter().map(|l| (l.id, Lease { ttl: l.ttl, keys: OrdSet::new() })).collect();
    for kh in snap.keys {
        let versions: Vec<Version> = kh
            .versions
            .into_iter()
            .map(|v| Version {
                rev: Revision::new(v.mod_revision, v.sub_revision),
                create_revision: v.create_revision,
                version: v.version,
                value: v.value,
                lease: v.lease,
                tombstone: v.tombstone,
            })
            .collect();
        if !versions.windows(2).all(|w| w[0].rev < w[1].rev) {
            return Err(DecodeError::Inconsistent(format!("versions of key {:?} are out of order", kh.key)));
        }
        if let Some(last) = versions.last() {
            if last.rev.main > snap.revision {
                return Err(DecodeError::Inconsistent("a key version is newer than the store revision".into()));
            }
            if !last.tombstone
                && last.lease != 0
                && let Some(l) = leases.get_mut(&last.lease)
            {
                l.keys.insert(kh.key.clone());
            }
        }
        histories.push((kh.key, versions));
    }
    let mvcc = Mvcc::from_parts(histories, snap.revision, snap.compact_revision);
    Ok(StateMachine {
        cluster_id: snap.cluster_id,
        mvcc,
        leases,
        members: snap.members.into_iter().map(|m| (m.id, m)).collect(),
        removed: snap.removed_members.into_iter().collect(),
        voters,
        applied_index: 0,
        applied_term: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::command;
    use rk_proto::etcdserverpb::{DeleteRangeRequest, LeaseGrantRequest, PutRequest};
    use rk_proto::store::{MemberInfo, internal_request::Op};

    #[test]
    fn round_trip_keeps_history_leases_and_members() {
        let mut sm = StateMachine::new(99);
        sm.members.insert(1, MemberInfo { id: 1, name: "one".into(), ..Default::default() });
        sm.removed.insert(4);
        sm.apply(&command(1, Op::LeaseGrant(LeaseGrantRequest { ttl: 30, id: 5 })), 0).0.unwrap();
        for (k, v, lease) in [("a", "1", 0), ("a", "2", 0), ("b", "x", 5)] {
            let put = PutRequest { key: k.into(), value: v.into(), lease, ..Default::default() };
            sm.apply(&command(1, Op::Put(put)), 0).0.unwrap();
        }
        sm.apply(&command(1, Op::DeleteRange(DeleteRangeRequest { key: "a".into(), ..Default::default() })), 0)
            .0
            .unwrap();
        sm.mvcc.compact(3).unwrap();
        let bytes = encode(&sm);
        let back = decode(&bytes, Voters::default()).unwrap();
        assert_eq!(back.cluster_id, 99);
        assert_eq!(back.mvcc.current_revision(), sm.mvcc.current_revision());
        assert_eq!(back.mvcc.compact_revision(), 3);
        assert_eq!(back.mvcc.histories().count(), sm.mvcc.histories().count());
        for ((k1, h1), (k2, h2)) in back.mvcc.histories().zip(sm.mvcc.histories()) {
            assert_eq!((k1, h1), (k2, h2));
        }
        assert_eq!(back.lease(5).unwrap().keys.len(), 1);
        assert_eq!(back.members[&1].name, "one");
        assert!(back.removed.contains(&4));
        let range = crate::store::mvcc::KeyRange::prefix(Bytes::new());
        assert_eq!(back.mvcc.events_since(&range, 3, 100, true), sm.mvcc.events_since(&range, 3, 100, true));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(decode(b"\xff\xff\xff\xff\x0f garbage", Voters::default()).is_err());
    }
}
