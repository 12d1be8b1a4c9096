//! The content-addressed image store and safe archive unpacking.
