//! Vertical statistics.
