//! Onsite dispatch: technicians, matching, assignment, onsite visits, spare parts.
//!
//! * [`schedule`] — working hours in a technician's time zone as UTC intervals (pure).
//! * [`matching`] — the transparent technician score and ranking (pure).
//! * [`technicians`] — technician profiles (skills, home base, region, hours, job limit).
//! * [`parts`] — catalogue, warehouses, stock, reservations, safety-stock alerts.
//! * [`flow`] — escalate, offer, accept/decline, visit, cancel: one transaction each.

pub mod matching;
pub mod schedule;
pub mod flow;
pub mod parts;
pub mod technicians;
