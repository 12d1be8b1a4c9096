//! Where foxbox keeps things, and how it writes them safely.
//!
//! - [`paths`]: the data root and the runtime directory.
//! - [`atomic`]: whole-file writes that a crash never leaves half done.
//! - [`clock`]: the time records are stamped with.
//! - [`lock`]: advisory file locks (flock) that guard an index or a box against a second writer.
//! - [`private`]: the store's modes: its owner's alone.
//! - [`check`]: what `foxbox system check` reports.
//! - [`space`]: a full disk, said the same way everywhere.
//! - [`fault`]: named fault points for crash tests, at their old path: [`crate::fault`].
pub mod atomic;
pub mod check;
pub mod clock;
pub mod lock;
pub mod paths;
pub mod private;
pub mod space;

/// Fault points sit beside the store, not in it: the executor, which uses no store, has one.
pub use crate::fault;
