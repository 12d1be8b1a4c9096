//! Where foxbox keeps things, and how it writes them safely.
pub mod paths;
