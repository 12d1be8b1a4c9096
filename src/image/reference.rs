//! Image names as users write them: `NAME[:TAG][@sha256:HEX]`, and image ids.

/// A parsed `NAME[:TAG][@sha256:HEX]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameRef {
    pub name: String,
    pub tag: String,
    /// `sha256:<hex>` when pinned.
    pub digest: Option<String>,
}

impl NameRef {
    /// `name:tag`, the form the index stores.
    pub fn full(&self) -> String {
        format!("{}:{}", self.name, self.tag)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid image name {input:?}: {why}")]
pub struct NameError {
    pub input: String,
    pub why: &'static str,
}

/// Parse `NAME[:TAG][@sha256:HEX]`; the tag defaults to `latest`.
///
/// Names follow the OCI distribution rule (lowercase letters, digits, and `.`, `_`, `-`
/// separators, path components joined by `/`, an optional `host[:port]/` first); tags are
/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn parse(input: &str) -> Result<NameRef, NameError> {
    let err = |why| NameError {
        input: input.to_string(),
        why,
    };
    let (rest, digest) = match input.split_once('@') {
        Some((r, d)) => {
            let hex = d
                .strip_prefix("sha256:")
                .ok_or_else(|| err("a digest must be sha256:<64 hex digits>"))?;
            if !is_full_hex(hex) {
                return Err(err("a digest must be sha256:<64 hex digits>"));
            }
            (r, Some(format!("sha256:{}", hex.to_ascii_lowercase())))
        }
        None => (input, None),
    };
    // A ':' after the last '/' starts the tag; one before it is a registry port.
    let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], &rest[last_slash + i + 1..]),
        None => (rest, "latest"),
    };
    validate_name(name).map_err(err)?;
    validate_tag(tag).map_err(err)?;
    Ok(NameRef {
        name: name.to_string(),
        tag: tag.to_string(),
        digest,
    })
}

fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > 255 {
        return Err("the name is longer than 255 characters");
    }
    let mut comps = name.split('/').peekable();
    let mut first = true;
    while let Some(c) = comps.next() {
        let is_host = first
            && comps.peek().is_some()
            && (c.contains('.') || c.contains(':') || c == "localhost");
        first = false;
        if is_host {
            let ok = c
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | ':'));
            if !ok || c.is_empty() {
                return Err("the registry host is not a valid host[:port]");
            }
            continue;
        }
        if c.is_empty() {
            return Err("a path component is empty");
        }
        let bytes = c.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
            return Err("each component must start and end with a lowercase letter or digit");
        }
        if !bytes
            .iter()
            .all(|b| alnum(*b) || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err("only lowercase letters, digits, '.', '_', '-' and '/' are allowed");
        }
    }
    Ok(())
}

fn validate_tag(tag: &str) -> Result<(), &'static str> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err("a tag is letters, digits, '_', '.', '-' (at most 128, not starting with '.' or '-')")
    }
}

fn is_full_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// If `s` looks like an image id or a prefix of one (`[sha256:]<hex>`), the lowercase hex part.
pub fn id_prefix(s: &str) -> Option<String> {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    let ok = !hex.is_empty() && hex.len() <= 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| hex.to_ascii_lowercase())
}

/// The default image name for a tarball: its file name less `.tar`, `.tar.gz` or `.tgz`.
pub fn name_from_file(path: &std::path::Path) -> Option<String> {
    let file = path.file_name()?.to_str()?;
    let stem = [".tar.gz", ".tgz", ".tar"]
        .iter()
        .find_map(|ext| file.strip_suffix(ext))
        .unwrap_or(file);
    Some(stem.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_tags_digests() {
        let r = parse("busybox").unwrap();
        assert_eq!(
            (r.name.as_str(), r.tag.as_str(), r.digest),
            ("busybox", "latest", None)
        );
        let r = parse("localhost:5000/ns/app:v1.2").unwrap();
        assert_eq!(
            (r.name.as_str(), r.tag.as_str()),
            ("localhost:5000/ns/app", "v1.2")
        );
        let hex = "ab".repeat(32);
        let r = parse(&format!("app@sha256:{hex}")).unwrap();
        assert_eq!(r.digest, Some(format!("sha256:{hex}")));
        assert_eq!(r.full(), "app:latest");
        for bad in [
            "",
            "Busybox",
            "a//b",
            "-a",
            "a:",
            "a:-x",
            "a@sha256:12",
            "a@md5:00",
            "a b",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ids_and_file_names() {
        assert_eq!(id_prefix("sha256:ABC1"), Some("abc1".into()));
        assert_eq!(id_prefix("busybox"), None);
        assert_eq!(
            name_from_file(std::path::Path::new("/x/debian.tar.gz")),
            Some("debian".into())
        );
        assert_eq!(
            name_from_file(std::path::Path::new("a.tar")),
            Some("a".into())
        );
    }
}
