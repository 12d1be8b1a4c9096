//! The user a box's process runs as, and the one parser of `uid[:gid]` / `name[:group]`
//! text: `box.user` and `run -u` (through the spec resolver), `exec -u`, an image's `User`,
//! and a build recipe's `chown`.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum User {
    /// Numeric ids; a missing gid means the user's primary group from /etc/passwd, or the uid.
    Id { uid: u32, gid: Option<u32> },
    /// Looked up in the box's /etc/passwd (and /etc/group for the group) at start.
    Name { user: String, group: Option<String> },
}

/// Why a user text is refused. The message quotes the text; [`UserError::help`] says what to
/// write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// A lone uid beyond the id space.
    #[error("uid `{0}` is out of range")]
    UidRange(String),
    /// `uid:gid` with a number beyond the id space.
    #[error("`{0}` is out of range")]
    Range(String),
    /// `uid:name` or `name:gid`.
    #[error("`{0}` mixes a number and a name")]
    Mixed(String),
    /// Empty, or a name with `/`, NUL, `:` or white space in it.
    #[error("`{0}` is not a valid user")]
    Invalid(String),
}

impl UserError {
    pub fn help(&self) -> &'static str {
        match self {
            UserError::UidRange(_) | UserError::Range(_) => "ids go from 0 to 4294967294",
            UserError::Mixed(_) => {
                "write `uid:gid` with two numbers or `user:group` with two names"
            }
            UserError::Invalid(_) => {
                "write `uid[:gid]` (e.g. `1000:1000`) or `name[:group]` from the box's /etc/passwd"
            }
        }
    }
}

fn numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && !s
            .bytes()
            .any(|b| b == b'/' || b == b'\0' || b == b':' || b.is_ascii_whitespace())
}

/// A valid id: u32::MAX is "-1", no id.
fn id(s: &str) -> Option<u32> {
    s.parse::<u32>().ok().filter(|n| *n != u32::MAX)
}

impl User {
    /// `uid[:gid]` with two numbers, or `name[:group]` with two names.
    pub fn parse(s: &str) -> Result<User, UserError> {
        let (user, group) = match s.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (s, None),
        };
        match group {
            None if numeric(user) => match id(user) {
                Some(uid) => Ok(User::Id { uid, gid: None }),
                None => Err(UserError::UidRange(user.to_string())),
            },
            Some(g) if numeric(user) && numeric(g) => match (id(user), id(g)) {
                (Some(uid), Some(gid)) => Ok(User::Id {
                    uid,
                    gid: Some(gid),
                }),
                _ => Err(UserError::Range(s.to_string())),
            },
            Some(g) if numeric(user) != numeric(g) => Err(UserError::Mixed(s.to_string())),
            _ if !name_ok(user) || group.is_some_and(|g| !name_ok(g)) => {
                Err(UserError::Invalid(s.to_string()))
            }
            _ => Ok(User::Name {
                user: user.to_string(),
                group: group.map(str::to_string),
            }),
        }
    }

    /// An image config's `User`, taken as it is: what [`User::parse`] refuses is looked up
    /// by name at start (and reported there), as the image says it; `None` when it names no
    /// user.
    pub fn parse_image(s: &str) -> Option<User> {
        if let Ok(u) = User::parse(s) {
            return Some(u);
        }
        let (u, g) = match s.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s, None),
        };
        (!u.is_empty()).then(|| User::Name {
            user: u.to_string(),
            group: g.map(str::to_string),
        })
    }

    /// An owner in numbers, `uid[:gid]` (a build's `chown`): the gid defaults to the uid.
    pub fn parse_ids(s: &str) -> Option<(u32, u32)> {
        match User::parse(s).ok()? {
            User::Id { uid, gid } => Some((uid, gid.unwrap_or(uid))),
            User::Name { .. } => None,
        }
    }
}

impl std::fmt::Display for User {
    /// As it is written: `uid[:gid]` or `name[:group]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            User::Id { uid, gid: Some(g) } => write!(f, "{uid}:{g}"),
            User::Id { uid, gid: None } => write!(f, "{uid}"),
            User::Name {
                user,
                group: Some(g),
            } => write!(f, "{user}:{g}"),
            User::Name { user, group: None } => write!(f, "{user}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_as_the_spec_run_and_exec_take_them() {
        let id = |uid, gid| User::Id { uid, gid };
        assert_eq!(User::parse("1000"), Ok(id(1000, None)));
        assert_eq!(User::parse("1:2"), Ok(id(1, Some(2))));
        assert_eq!(
            User::parse("fox:wheel"),
            Ok(User::Name {
                user: "fox".into(),
                group: Some("wheel".into())
            })
        );
        for (bad, want) in [
            ("", UserError::Invalid(String::new())),
            ("1:", UserError::Mixed("1:".into())),
            ("1:wheel", UserError::Mixed("1:wheel".into())),
            ("fox:1", UserError::Mixed("fox:1".into())),
            ("99999999999", UserError::UidRange("99999999999".into())),
            ("4294967295", UserError::UidRange("4294967295".into())),
            ("1:4294967295", UserError::Range("1:4294967295".into())),
            ("a b", UserError::Invalid("a b".into())),
            ("fox:", UserError::Invalid("fox:".into())),
        ] {
            assert_eq!(User::parse(bad), Err(want), "{bad:?}");
        }
        for s in ["0", "1:2", "fox", "fox:wheel"] {
            assert_eq!(User::parse(s).unwrap().to_string(), s);
        }
    }

    #[test]
    fn images_and_build_owners() {
        assert_eq!(User::parse_image(""), None);
        assert_eq!(
            User::parse_image("1000:wheel"),
            Some(User::Name {
                user: "1000".into(),
                group: Some("wheel".into())
            })
        );
        assert_eq!(
            User::parse_image("7:8"),
            Some(User::Id {
                uid: 7,
                gid: Some(8)
            })
        );
        assert_eq!(User::parse_ids("5"), Some((5, 5)));
        assert_eq!(User::parse_ids("5:6"), Some((5, 6)));
        assert_eq!(User::parse_ids("fox"), None);
        assert_eq!(User::parse_ids("5:"), None);
    }
}
