//! Repair guidance: the knowledge base of repair procedures (data in `models/knowledge/`,
//! loaded into the database with versions), step cards pushed in a live session, and the
//! expert's annotations with their anchoring on the customer's video.

pub mod procedures;
pub mod tracking;
