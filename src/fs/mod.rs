//! The box's filesystem: rootfs overlay, mounts, /dev, masked and read-only paths.
