//! Networking: none, host, pasta, slirp4netns; port forwards.
