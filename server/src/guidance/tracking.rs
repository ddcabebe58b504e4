//! Anchor tracking across decoded frames (being written).
