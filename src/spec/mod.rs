//! The Foxbox.toml spec: raw types with spans, validation, diagnostics, resolution into a Plan.
