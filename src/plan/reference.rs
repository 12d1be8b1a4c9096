//! Image names as users write them, `[host[:port]/]path[:tag][@digest]`: the one parser for
//! specs, `run`, the image store's commands and the registry client, so every front door
//! accepts the same names. Parsed once; the digest is a [`Digest`], never a string.

use std::fmt;

use serde::{Serialize, Serializer};

use super::digest::Digest;

/// The tag of a name that gives none.
pub const DEFAULT_TAG: &str = "latest";

/// A parsed image name, as written: no registry is implied here (see `oci::Reference`
/// for Docker Hub's short-name rules).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageName {
    name: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Which part of an image name is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// Nothing was given.
    Empty,
    /// The repository name (or the whole text, when it is too long).
    Name,
    /// The `host[:port]` before the first `/`.
    Registry,
    Tag,
    Digest,
}

/// Why a text is not an image name: the part that is wrong, its text, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image name {input:?}: {why}")]
pub struct NameError {
    pub input: String,
    pub part: Part,
    /// The text of the part that is wrong (the whole name for [`Part::Registry`]).
    pub text: String,
    pub why: String,
}

impl ImageName {
    /// Parse `[host[:port]/]path[:tag][@alg:hex]`. Path components are lowercase letters and
    /// digits separated by `.`, `_`, `__` or dashes (the OCI distribution grammar); a tag is
    /// 1-128 of `[A-Za-z0-9_.-]` not starting with `.` or `-`; a `:` before the last `/` is a
    /// registry port, not a tag.
    pub fn parse(input: &str) -> Result<ImageName, NameError> {
        let err = |part, text: &str, why: String| NameError {
            input: input.to_string(),
            part,
            text: text.to_string(),
            why,
        };
        if input.is_empty() {
            return Err(err(Part::Empty, "", "the name is empty".into()));
        }
        if input.len() > 4096 {
            return Err(err(Part::Name, input, "too long".into()));
        }
        let (rest, digest) = match input.split_once('@') {
            Some((r, d)) => match d.parse::<Digest>() {
                Ok(d) => (r, Some(d)),
                Err(e) => return Err(err(Part::Digest, d, e.to_string())),
            },
            None => (input, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(err(
                    Part::Tag,
                    t,
                    format!(
                        "tag {t:?} must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
                    ),
                ));
            }
        }
        if name.is_empty() {
            return Err(err(Part::Name, name, "the name is empty".into()));
        }
        if name.len() > 255 {
            return Err(err(
                Part::Name,
                name,
                "the name is longer than 255 characters".into(),
            ));
        }
        let path = match registry_of(name) {
            Some((host, path)) => {
                if !valid_registry(host) {
                    return Err(err(
                        Part::Registry,
                        name,
                        format!("registry {host:?} is not a host[:port]"),
                    ));
                }
                path
            }
            None => name,
        };
        if !path.split('/').all(valid_component) {
            return Err(err(
                Part::Name,
                name,
                "repository path components must be lowercase letters and digits, \
                 separated by '.', '_', '__' or dashes"
                    .into(),
            ));
        }
        Ok(ImageName {
            name: name.to_string(),
            tag: tag.map(str::to_string),
            digest,
        })
    }

    /// The repository name, with its registry host when it names one.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tag; [`DEFAULT_TAG`] when none was written.
    pub fn tag(&self) -> &str {
        self.tag.as_deref().unwrap_or(DEFAULT_TAG)
    }

    /// The tag as written.
    pub fn written_tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest it is pinned to.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `name:tag`, the form the image store's index keeps.
    pub fn full(&self) -> String {
        format!("{}:{}", self.name, self.tag())
    }

    /// The registry host it names, and the repository path after it (`None`: a short name).
    pub fn registry(&self) -> Option<(&str, &str)> {
        registry_of(&self.name)
    }
}

/// `name@digest` when pinned, else `name:tag`.
impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.digest {
            Some(d) => write!(f, "{}@{d}", self.name),
            None => write!(f, "{}:{}", self.name, self.tag()),
        }
    }
}

/// In a plan: `name`, `tag` (defaulted) and `digest` (or null).
impl Serialize for ImageName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ImageName", 3)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("tag", self.tag())?;
        st.serialize_field("digest", &self.digest)?;
        st.end()
    }
}

/// The first component when it is a registry host (it has a `.` or a `:`, or is `localhost`,
/// and more follows), and the rest.
pub fn registry_of(name: &str) -> Option<(&str, &str)> {
    let (first, rest) = name.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some((first, rest))
}

pub fn valid_tag(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= 128
        && !t.starts_with(['.', '-'])
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// `host[:port]`, or `[ipv6][:port]`.
pub fn valid_registry(r: &str) -> bool {
    let (host, port) = if let Some(rest) = r.strip_prefix('[') {
        match rest.split_once(']') {
            Some((h, p)) => (h, p.strip_prefix(':')),
            None => return false,
        }
    } else {
        match r.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (r, None),
        }
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    host_ok && port_ok
}

/// `[a-z0-9]+` runs separated by `.`, `_`, `__` or one or more `-`.
pub fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tags_digests() {
        let r = ImageName::parse("busybox").unwrap();
        assert_eq!((r.name(), r.tag(), r.digest()), ("busybox", "latest", None));
        assert_eq!(r.written_tag(), None);
        let r = ImageName::parse("localhost:5000/ns/app:v1.2").unwrap();
        assert_eq!((r.name(), r.tag()), ("localhost:5000/ns/app", "v1.2"));
        assert_eq!(r.registry(), Some(("localhost:5000", "ns/app")));
        let hex = "ab".repeat(32);
        let r = ImageName::parse(&format!("app@sha256:{hex}")).unwrap();
        assert_eq!(
            r.digest().map(|d| d.to_string()),
            Some(format!("sha256:{hex}"))
        );
        assert_eq!(r.full(), "app:latest");
        assert_eq!(r.to_string(), format!("app@sha256:{hex}"));
        assert!(ImageName::parse("[::1]:5000/x").is_ok());
    }

    #[test]
    fn bad_names_say_which_part() {
        for (bad, part) in [
            ("", Part::Empty),
            ("Busybox", Part::Name),
            ("a//b", Part::Name),
            ("a/../b", Part::Name),
            ("-a", Part::Name),
            ("a--", Part::Name),
            ("a___b", Part::Name),
            ("a b", Part::Name),
            ("a:b:c", Part::Name),
            ("a:", Part::Tag),
            ("a:-x", Part::Tag),
            ("a@sha256:12", Part::Digest),
            ("a@md5:00", Part::Digest),
            ("host:99999/x", Part::Registry),
        ] {
            let e = ImageName::parse(bad).expect_err(bad);
            assert_eq!(e.part, part, "{bad:?}: {e}");
        }
        assert!(ImageName::parse("a--b").is_ok());
        assert!(ImageName::parse("a__b.c_d").is_ok());
    }
}
