//! The staged executor: a flat, ordered list of named steps, parent side and child side.
pub mod steps;
