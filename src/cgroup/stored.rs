//! A box's cgroup node as its state stores it: which version, and where. It names both
//! versions, so it sits above them; they build on `node` alone.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::detect::Version;
use super::node::CgroupNode;
use super::{v1::V1Node, v2::V2Node};

/// A box's cgroup in one hierarchy, as stored in the box's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version", rename_all = "lowercase")]
pub enum Node {
    V1(V1Node),
    V2(V2Node),
}

impl Node {
    pub fn new(version: Version, path: PathBuf) -> Node {
        match version {
            Version::V1 => Node::V1(V1Node { path }),
            Version::V2 => Node::V2(V2Node { path }),
        }
    }

    pub fn ops(&self) -> &dyn CgroupNode {
        match self {
            Node::V1(n) => n,
            Node::V2(n) => n,
        }
    }
}
