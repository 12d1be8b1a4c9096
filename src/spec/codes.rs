//! Stable diagnostic codes of the spec. Tools match on these; never rename one, only add. They
//! are registered with every other code in [`crate::diag::codes`].

pub use crate::diag::codes::spec::*;
