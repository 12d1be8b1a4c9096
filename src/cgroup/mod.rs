//! cgroups: one interface, v2 and v1 behind it, delegation detection.
