//! Assist sessions: the queue of customers waiting for an expert, and the rooms where a
//! customer and experts meet. Pure state machines in the str0m style: commands and the
//! current time go in, effects come out; no I/O, no clocks, no tasks. The signaling hub
//! owns one `Hub` and executes its effects (messages to sockets, work-order events).
//!
//! Invariants:
//! * A work order is either queued, in exactly one live room, or neither.
//! * The queue is ordered by SLA urgency: resolution deadline, then priority, then
//!   customer tier, then arrival.
//! * A participant who leaves does not end the room for the others; a room with nobody
//!   connected for `grace_ms` ends with outcome `abandoned`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::customers::Tier;
use crate::ids::{UserId, WorkOrderId};
use crate::string_enum;
use crate::work_orders::model::Priority;
use crate::UnixMillis;

/// A connection's identity inside the hub (one per WebSocket).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PeerId(pub u64);

string_enum!(/// How a session ended.
    Outcome {
        ResolvedRemote => "resolved_remote",
        NeedsEscalation => "needs_escalation",
        CustomerUnreachable => "customer_unreachable",
        Abandoned => "abandoned",
    });

string_enum!(/// A participant's part in a room.
    Part { Customer => "customer", Expert => "expert", Observer => "observer" });

/// What the queue orders by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    pub work_order: WorkOrderId,
    pub peer: PeerId,
    pub resolution_due: UnixMillis,
    pub priority: Priority,
    pub tier: Tier,
    pub since: UnixMillis,
}

impl Waiting {
    fn key(&self) -> (UnixMillis, Priority, u8, UnixMillis) {
        let tier = match self.tier {
            Tier::Strategic => 0,
            Tier::Key => 1,
            Tier::Standard => 2,
        };
        (self.resolution_due, self.priority, tier, self.since)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Participant {
    pub peer: PeerId,
    pub user: Option<UserId>,
    pub part: Part,
    pub joined_at: UnixMillis,
    pub connected: bool,
    pub reconnects: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    pub work_order: WorkOrderId,
    pub started_at: UnixMillis,
    pub participants: Vec<Participant>,
    /// When the last connected participant went away.
    pub empty_since: Option<UnixMillis>,
}

/// What the hub asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Tell every waiting customer their position and estimated wait.
    QueueChanged,
    /// A room opened with the customer and the accepting expert in it.
    RoomOpened { work_order: WorkOrderId, expert: PeerId, customer: PeerId },
    /// Someone joined or left: tell the others; record it on the work order.
    Joined { work_order: WorkOrderId, peer: PeerId, part: Part },
    Left { work_order: WorkOrderId, peer: PeerId, part: Part, connected_ms: i64 },
    /// The room ended: record the outcome and the timeline; close its media.
    Ended { work_order: WorkOrderId, outcome: Outcome, duration_ms: i64, participants: Vec<Participant> },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SessionError {
    #[error("the work order is already waiting or in a session")]
    Busy,
    #[error("nobody with that work order is waiting")]
    NotWaiting,
    #[error("no session runs for that work order")]
    NoRoom,
    #[error("you are not in this session")]
    NotInRoom,
    #[error("the session is full")]
    Full,
}

/// The queue and all rooms.
#[derive(Debug, Default)]
pub struct Hub {
    queue: Vec<Waiting>,
    rooms: BTreeMap<WorkOrderId, Room>,
    pub grace_ms: i64,
    pub max_participants: usize,
}

impl Hub {
    pub fn new(grace_ms: i64, max_participants: usize) -> Hub {
        Hub { queue: Vec::new(), rooms: BTreeMap::new(), grace_ms, max_participants }
    }

    /// The waiting customers, most urgent first.
    pub fn queue(&self) -> &[Waiting] {
        &self.queue
    }

    pub fn room(&self, wo: WorkOrderId) -> Option<&Room> {
        self.rooms.get(&wo)
    }

    /// 1-based queue position of a work order.
    pub fn position(&self, wo: WorkOrderId) -> Option<usize> {
        self.queue.iter().position(|w| w.work_order == wo).map(|i| i + 1)
    }

    pub fn enqueue(&mut self, w: Waiting) -> Result<Vec<Effect>, SessionError> {
        if self.position(w.work_order).is_some() || self.rooms.contains_key(&w.work_order) {
            return Err(SessionError::Busy);
        }
        let at = self.queue.partition_point(|q| q.key() <= w.key());
        self.queue.insert(at, w);
        Ok(vec![Effect::QueueChanged])
    }

    /// A waiting customer gave up (or disconnected before anyone accepted).
    pub fn dequeue(&mut self, peer: PeerId) -> Vec<Effect> {
        let before = self.queue.len();
        self.queue.retain(|w| w.peer != peer);
        if self.queue.len() != before {
            vec![Effect::QueueChanged]
        } else {
            Vec::new()
        }
    }

    /// An expert accepts a waiting work order: a room opens with both in it.
    pub fn accept(&mut self, wo: WorkOrderId, expert: PeerId, user: Option<UserId>, now: UnixMillis) -> Result<Vec<Effect>, SessionError> {
        let i = self.queue.iter().position(|w| w.work_order == wo).ok_or(SessionError::NotWaiting)?;
        let w = self.queue.remove(i);
        let p = |peer, user, part| Participant { peer, user, part, joined_at: now, connected: true, reconnects: 0 };
        let room = Room {
            work_order: wo,
            started_at: now,
            participants: vec![p(w.peer, None, Part::Customer), p(expert, user, Part::Expert)],
            empty_since: None,
        };
        self.rooms.insert(wo, room);
        Ok(vec![Effect::QueueChanged, Effect::RoomOpened { work_order: wo, expert, customer: w.peer }])
    }

    /// Another participant (a second expert, an observer, or the customer rejoining
    /// from a new connection) joins a running room.
    pub fn join(&mut self, wo: WorkOrderId, peer: PeerId, user: Option<UserId>, part: Part, now: UnixMillis) -> Result<Vec<Effect>, SessionError> {
        let max = self.max_participants;
        let room = self.rooms.get_mut(&wo).ok_or(SessionError::NoRoom)?;
        // The same user reconnecting replaces their old connection.
        let rejoining = |p: &Participant| (p.part == part && user.is_some() && p.user == user) || (part == Part::Customer && p.part == Part::Customer && !p.connected);
        if let Some(old) = room.participants.iter_mut().find(|p| rejoining(p)) {
            old.peer = peer;
            old.connected = true;
            old.reconnects += 1;
            room.empty_since = None;
            return Ok(vec![Effect::Joined { work_order: wo, peer, part }]);
        }
        if room.participants.iter().filter(|p| p.connected).count() >= max {
            return Err(SessionError::Full);
        }
        room.participants.push(Participant { peer, user, part, joined_at: now, connected: true, reconnects: 0 });
        room.empty_since = None;
        Ok(vec![Effect::Joined { work_order: wo, peer, part }])
    }

    /// A participant's connection went away (left, dropped, or network change). The
    /// room stays; they may reconnect within the grace period.
    pub fn left(&mut self, peer: PeerId, now: UnixMillis) -> Vec<Effect> {
        let mut out = self.dequeue(peer);
        for room in self.rooms.values_mut() {
            if let Some(p) = room.participants.iter_mut().find(|p| p.peer == peer && p.connected) {
                p.connected = false;
                out.push(Effect::Left { work_order: room.work_order, peer, part: p.part, connected_ms: now - p.joined_at });
                if room.participants.iter().all(|p| !p.connected) {
                    room.empty_since = Some(now);
                }
            }
        }
        out
    }

    /// Ends a room with an outcome (an expert closes it).
    pub fn end(&mut self, wo: WorkOrderId, peer: PeerId, outcome: Outcome, now: UnixMillis) -> Result<Vec<Effect>, SessionError> {
        let room = self.rooms.get(&wo).ok_or(SessionError::NoRoom)?;
        if !room.participants.iter().any(|p| p.peer == peer && p.connected && p.part == Part::Expert) {
            return Err(SessionError::NotInRoom);
        }
        let room = self.rooms.remove(&wo).expect("checked above");
        Ok(vec![Effect::Ended { work_order: wo, outcome, duration_ms: now - room.started_at, participants: room.participants }])
    }

    /// Ends rooms that have been empty for the grace period.
    pub fn tick(&mut self, now: UnixMillis) -> Vec<Effect> {
        let expired: Vec<WorkOrderId> =
            self.rooms.values().filter(|r| r.empty_since.is_some_and(|t| now - t >= self.grace_ms)).map(|r| r.work_order).collect();
        expired
            .into_iter()
            .filter_map(|wo| self.rooms.remove(&wo))
            .map(|room| Effect::Ended {
                work_order: room.work_order,
                outcome: Outcome::Abandoned,
                duration_ms: now - room.started_at,
                participants: room.participants,
            })
            .collect()
    }

    /// The room a connected peer is in.
    pub fn room_of(&self, peer: PeerId) -> Option<&Room> {
        self.rooms.values().find(|r| r.participants.iter().any(|p| p.peer == peer && p.connected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(due: i64, pr: Priority, tier: Tier, since: i64, peer: u64) -> Waiting {
        Waiting { work_order: WorkOrderId::new(), peer: PeerId(peer), resolution_due: due, priority: pr, tier, since }
    }

    #[test]
    fn the_queue_is_ordered_by_deadline_then_priority_then_tier_then_arrival() {
        let mut h = Hub::new(30_000, 4);
        let a = waiting(5_000, Priority::P3, Tier::Standard, 1, 1);
        let b = waiting(1_000, Priority::P2, Tier::Standard, 2, 2);
        let c = waiting(1_000, Priority::P2, Tier::Strategic, 3, 3);
        let d = waiting(1_000, Priority::P1, Tier::Standard, 4, 4);
        for w in [&a, &b, &c, &d] {
            h.enqueue(w.clone()).unwrap();
        }
        let order: Vec<u64> = h.queue().iter().map(|w| w.peer.0).collect();
        assert_eq!(order, [4, 3, 2, 1]);
        assert_eq!(h.enqueue(a.clone()), Err(SessionError::Busy));
        assert_eq!(h.position(a.work_order), Some(4));
    }

    #[test]
    fn a_room_survives_a_participant_leaving_and_ends_after_the_grace_period_when_empty() {
        let mut h = Hub::new(30_000, 4);
        let w = waiting(1_000, Priority::P2, Tier::Key, 0, 1);
        let wo = w.work_order;
        h.enqueue(w).unwrap();
        let eff = h.accept(wo, PeerId(10), None, 100).unwrap();
        assert!(eff.contains(&Effect::RoomOpened { work_order: wo, expert: PeerId(10), customer: PeerId(1) }));
        assert!(h.queue().is_empty());
        h.join(wo, PeerId(11), Some(UserId::new()), Part::Expert, 200).unwrap();
        // The first expert leaves: the room goes on.
        let eff = h.left(PeerId(10), 1_000);
        assert!(matches!(eff[0], Effect::Left { part: Part::Expert, .. }));
        assert!(h.tick(100_000).is_empty());
        // Everyone gone: ended as abandoned after the grace period, not before.
        h.left(PeerId(1), 2_000);
        h.left(PeerId(11), 3_000);
        assert!(h.tick(3_000 + 29_999).is_empty());
        // The customer reconnects just in time: the room is saved.
        h.join(wo, PeerId(12), None, Part::Customer, 32_000).unwrap();
        assert!(h.tick(100_000).is_empty());
        assert_eq!(h.room(wo).unwrap().participants[0].reconnects, 1);
        h.left(PeerId(12), 100_000);
        let ended = h.tick(130_000);
        assert!(matches!(&ended[0], Effect::Ended { outcome: Outcome::Abandoned, .. }));
        assert!(h.room(wo).is_none());
    }

    #[test]
    fn only_a_connected_expert_ends_a_session_and_rooms_have_a_size_limit() {
        let mut h = Hub::new(30_000, 3);
        let w = waiting(1_000, Priority::P2, Tier::Key, 0, 1);
        let wo = w.work_order;
        h.enqueue(w).unwrap();
        h.accept(wo, PeerId(10), None, 0).unwrap();
        h.join(wo, PeerId(11), None, Part::Observer, 0).unwrap();
        assert_eq!(h.join(wo, PeerId(12), None, Part::Expert, 0), Err(SessionError::Full));
        assert_eq!(h.end(wo, PeerId(1), Outcome::ResolvedRemote, 10), Err(SessionError::NotInRoom));
        let e = h.end(wo, PeerId(10), Outcome::ResolvedRemote, 10).unwrap();
        assert!(matches!(&e[0], Effect::Ended { outcome: Outcome::ResolvedRemote, duration_ms: 10, .. }));
    }
}
