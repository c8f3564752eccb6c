//! The gossip wire format: foca's headers and member updates in bincode, and the items census
//! spreads through foca's custom broadcasts (leave intents, user events, keyring changes).

use std::collections::{HashSet, VecDeque};

use bytes::{Buf, BufMut};
use foca::{Header, Invalidates, Member};
use serde::{Deserialize, Serialize};

use super::identity::Peer;

#[derive(Debug, Default, Clone, Copy)]
pub struct BincodeCodec;

impl foca::Codec<Peer> for BincodeCodec {
    type Error = bincode::Error;

    fn encode_header(&mut self, header: &Header<Peer>, buf: impl BufMut) -> Result<(), Self::Error> {
        bincode::serialize_into(buf.writer(), header)
    }

    fn decode_header(&mut self, buf: impl Buf) -> Result<Header<Peer>, Self::Error> {
        bincode::deserialize_from(buf.reader())
    }

    fn encode_member(&mut self, member: &Member<Peer>, buf: impl BufMut) -> Result<(), Self::Error> {
        bincode::serialize_into(buf.writer(), member)
    }

    fn decode_member(&mut self, buf: impl Buf) -> Result<Member<Peer>, Self::Error> {
        bincode::deserialize_from(buf.reader())
    }
}

/// What census spreads by gossip besides membership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Item {
    /// A member is leaving on purpose: when it goes down it has left, not failed.
    Leave { name: String, bump: u16 },
    /// A user event (`/v1/event/fire`), delivered to every agent once.
    Event { id: String, body: Vec<u8> },
    /// A keyring change asked of every member (`/v1/operator/keyring`).
    KeyOp { id: String, op: KeyOp, key: String },
    /// A member's installed keys, the primary first: sent after each change and when members
    /// join, so that every member can count who has which key.
    Keys { name: String, seq: u64, keys: Vec<String> },
    /// The leader asks a member's agent to sync its state to the catalog now (it came back
    /// after being marked failed, and its checks were marked critical meanwhile).
    Resync { node: String, id: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyOp {
    Install,
    Use,
    Remove,
}

impl Item {
    fn key(&self) -> ItemKey {
        match self {
            Item::Leave { name, bump } => ItemKey(format!("leave/{name}/{bump}")),
            Item::Event { id, .. } => ItemKey(format!("event/{id}")),
            Item::KeyOp { id, .. } => ItemKey(format!("keyop/{id}")),
            Item::Keys { name, seq, .. } => ItemKey(format!("keys/{name}/{seq}")),
            Item::Resync { node, id } => ItemKey(format!("resync/{node}/{id}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemKey(String);

impl Invalidates for ItemKey {
    fn invalidates(&self, other: &Self) -> bool {
        self == other
    }
}

/// How many item keys a member remembers, so that an item reaching it again is not delivered or
/// spread twice.
const REMEMBERED: usize = 4096;

/// Foca's broadcast handler: decodes items, drops the ones seen before, hands new ones over.
pub struct Items {
    seen: HashSet<ItemKey>,
    order: VecDeque<ItemKey>,
    deliver: tokio::sync::mpsc::UnboundedSender<Item>,
}

impl Items {
    pub fn new(deliver: tokio::sync::mpsc::UnboundedSender<Item>) -> Items {
        Items { seen: HashSet::new(), order: VecDeque::new(), deliver }
    }
}

impl foca::BroadcastHandler<Peer> for Items {
    type Key = ItemKey;
    type Error = bincode::Error;

    fn receive_item(&mut self, data: &[u8], _sender: Option<&Peer>) -> Result<Option<ItemKey>, Self::Error> {
        let item: Item = bincode::deserialize(data)?;
        let key = item.key();
        if !self.seen.insert(key.clone()) {
            return Ok(None);
        }
        self.order.push_back(key.clone());
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        // The receiver goes away only when the agent stops.
        let _ = self.deliver.send(item);
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use foca::{BroadcastHandler, Codec};

    use super::*;

    #[test]
    fn an_item_is_delivered_and_spread_once() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut items = Items::new(tx);
        let bytes =
            bincode::serialize(&Item::Event { id: "e1".into(), body: b"hi".to_vec() }).expect("encode");
        assert!(items.receive_item(&bytes, None).expect("decodes").is_some());
        assert!(items.receive_item(&bytes, None).expect("decodes").is_none(), "second copy");
        assert_eq!(rx.try_recv().ok(), Some(Item::Event { id: "e1".into(), body: b"hi".to_vec() }));
        assert!(rx.try_recv().is_err());
        assert!(items.receive_item(b"\xff", None).is_err(), "garbage is an error, not an item");
    }

    #[test]
    fn members_round_trip_through_a_buffer() {
        let peer = Peer::at("10.0.0.1:8301".parse().expect("addr"));
        let member = Member::alive(peer);
        let mut buf = Vec::new();
        BincodeCodec.encode_member(&member, &mut buf).expect("encode");
        buf.extend_from_slice(b"rest");
        let mut read = &buf[..];
        assert_eq!(BincodeCodec.decode_member(&mut read).expect("decode"), member);
        assert_eq!(read, b"rest", "decoding takes exactly one member");
    }
}
