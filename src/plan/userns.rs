//! A box's user-namespace mode: foxbox's own (the default) or podman's `keep-id`.
//!
//! By default a rootless box's root is the caller and its other ids come from the caller's
//! subordinate range (1.. onto the range's start..); root's boxes get the identity map.
//! `keep-id` keeps the caller's uid (or the one `uid=` names) as the same number in the box,
//! as podman does: box ids below it come from the start of the range, the ones above it
//! from the rest, and the box's process runs as it unless a user is given. As root the
//! maps stay the identity and the process runs as `uid=` (default 0), as podman's.

use serde::Serialize;

/// How a box's user namespace maps ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(tag = "mode", rename_all = "kebab-case")]
pub enum Userns {
    #[default]
    Default,
    /// `keep-id[:uid=N,gid=N]`: the caller's ids as `uid`/`gid` in the box (`None`: the
    /// caller's own numbers).
    KeepId {
        #[serde(skip_serializing_if = "Option::is_none")]
        uid: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        gid: Option<u32>,
    },
}

/// Why a `--userns` / `security.userns` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernsError {
    /// A podman mode foxbox does not have (`auto`, `host`, `nomap`, `ns:...`, ...).
    #[error("user-namespace mode `{0}` is not supported")]
    Mode(String),
    /// A `keep-id` option that is not `uid=N` or `gid=N`.
    #[error("`{0}` is not a keep-id option")]
    Option(String),
    /// `uid=`/`gid=` with something that is not an id.
    #[error("`{0}` is not a valid id (0 to 4294967294)")]
    Id(String),
}

impl UsernsError {
    /// What to write instead.
    pub fn help(&self) -> &'static str {
        match self {
            UsernsError::Mode(_) => {
                "foxbox knows `keep-id` (and `keep-id:uid=N,gid=N`); without it each box gets a \
                 user namespace of its own (rootless: you as its root and your subordinate \
                 range; root: the identity map)"
            }
            UsernsError::Option(_) | UsernsError::Id(_) => {
                "write `keep-id`, or `keep-id:uid=N,gid=N` with the ids you get in the box"
            }
        }
    }
}

impl Userns {
    /// podman's `--userns` text. The empty text is refused with the other modes: podman reads
    /// it as `host`, which foxbox does not have.
    pub fn parse(s: &str) -> Result<Userns, UsernsError> {
        let (mode, opts) = match s.split_once(':') {
            Some((m, o)) => (m, Some(o)),
            None => (s, None),
        };
        if mode != "keep-id" {
            return Err(UsernsError::Mode(s.to_string()));
        }
        let (mut uid, mut gid) = (None, None);
        for o in opts.into_iter().flat_map(|o| o.split(',')) {
            let slot = match o.split_once('=') {
                Some(("uid", v)) => (&mut uid, v),
                Some(("gid", v)) => (&mut gid, v),
                _ => return Err(UsernsError::Option(o.to_string())),
            };
            let id = slot
                .1
                .parse::<u32>()
                .ok()
                .filter(|n| *n != u32::MAX)
                .ok_or_else(|| UsernsError::Id(slot.1.to_string()))?;
            *slot.0 = Some(id);
        }
        Ok(Userns::KeepId { uid, gid })
    }

    pub fn is_default(&self) -> bool {
        *self == Userns::Default
    }

    /// The box's uid and gid that the caller (`caller` = its uid and gid, 0 for root) becomes:
    /// `None` for the default mode.
    pub fn kept_ids(&self, caller: (u32, u32)) -> Option<(u32, u32)> {
        match *self {
            Userns::Default => None,
            Userns::KeepId { uid, gid } => Some((uid.unwrap_or(caller.0), gid.unwrap_or(caller.1))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_id_and_its_options_as_podman_spells_them() {
        assert_eq!(
            Userns::parse("keep-id"),
            Ok(Userns::KeepId {
                uid: None,
                gid: None
            })
        );
        assert_eq!(
            Userns::parse("keep-id:uid=200,gid=210"),
            Ok(Userns::KeepId {
                uid: Some(200),
                gid: Some(210)
            })
        );
        assert_eq!(
            Userns::parse("keep-id:gid=7")
                .unwrap()
                .kept_ids((1001, 1001)),
            Some((1001, 7))
        );
        assert!(matches!(Userns::parse("auto"), Err(UsernsError::Mode(_))));
        assert!(matches!(Userns::parse(""), Err(UsernsError::Mode(_))));
        assert!(matches!(
            Userns::parse("keep-id:size=10"),
            Err(UsernsError::Option(_))
        ));
        assert!(matches!(
            Userns::parse("keep-id:uid=-1"),
            Err(UsernsError::Id(_))
        ));
        assert_eq!(Userns::Default.kept_ids((5, 5)), None);
    }
}
