//! Placeholder while being written.
