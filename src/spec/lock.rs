//! `Foxbox.lock`: the digest of every image a spec and its bases name, so the box CI checked
//! is the box that runs. `foxbox lock` writes it (resolving tags through the image store);
//! here is what needs no store: the file's format, the references of a spec, whether a lock
//! is stale, and pinning a plan's image to its locked digest.
//!
//! A lock sits beside its spec: `Foxbox.toml` → `Foxbox.lock` (`NAME.toml` → `NAME.lock`).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::compose::Merged;
use super::image;
use super::paths::{self, relative_to};
use crate::diag::{codes::compose as codes, Diagnostic};
use crate::plan::digest::{Algorithm, Hasher};
use crate::plan::reference::ImageName;
use crate::plan::{ImageRef, Plan, Span};

/// The lock file's format version.
pub const VERSION: u32 = 1;

/// A lock file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    /// One entry per reference, sorted by it.
    #[serde(rename = "image", default)]
    pub images: Vec<Entry>,
}

/// One locked image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// As the spec writes it (a tarball: its path relative to the lock's directory).
    pub reference: String,
    /// `image` (a stored or registry image) or `tarball`.
    pub kind: String,
    /// `sha256:<hex>`: a registry image's manifest digest, a local image's id, a tarball's
    /// file digest.
    pub digest: String,
    /// `os/arch`.
    pub platform: String,
}

/// An image reference of a spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The key in the lock.
    pub key: String,
    /// Its layered span ([`super::compose`]).
    pub span: Span,
    pub kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Image(ImageName),
    /// The absolute path.
    Tarball(PathBuf),
}

/// `NAME.lock` beside `NAME.toml` in `dir`.
pub fn lock_path(spec: &Path, dir: &Path) -> PathBuf {
    let stem = spec
        .file_stem()
        .map_or_else(|| "Foxbox".into(), |s| s.to_string_lossy().into_owned());
    dir.join(format!("{stem}.lock"))
}

/// The lock at `path`: `Ok(None)` when there is none.
pub fn read(path: &Path) -> Result<Option<Lock>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let lock: Lock =
        toml::from_str(&text).map_err(|e| format!("{} is not a lock file: {e}", path.display()))?;
    if lock.version != VERSION {
        return Err(format!(
            "{} is a version {} lock; this foxbox reads version {VERSION}",
            path.display(),
            lock.version
        ));
    }
    Ok(Some(lock))
}

/// The lock as its file's text (sorted, with a header).
pub fn render(lock: &Lock) -> String {
    let mut lock = lock.clone();
    lock.images.sort_by(|a, b| a.reference.cmp(&b.reference));
    lock.images.dedup();
    let body = toml::to_string(&lock).unwrap_or_default();
    format!("# Written by `foxbox lock`: the image digests this spec runs. Commit it.\n{body}")
}

/// Every image reference of a spec and its bases (one per key), from its merged files. A spec
/// with a `[build]` table runs the image it builds: its `box.image` is not locked (its
/// `build.from` is).
pub fn references(merged: &Merged<'_>, dir: &Path) -> Vec<Reference> {
    let builds = merged.tree.contains_key("build");
    let mut out: Vec<Reference> = Vec::new();
    for (section, text, span) in &merged.images {
        if builds && *section == "box" {
            continue;
        }
        if merged
            .failed
            .iter()
            .any(|f| f.start <= span.start && span.end <= f.end)
        {
            continue;
        }
        let r = if image::is_tarball(text) {
            let abs = paths::normalise(&dir.join(text));
            Reference {
                key: relative_to(&abs, dir).display().to_string(),
                span: *span,
                kind: Kind::Tarball(abs),
            }
        } else {
            let Ok(name) = ImageName::parse(text) else {
                continue;
            };
            if name.digest().is_some() {
                continue;
            }
            Reference {
                key: text.clone(),
                span: *span,
                kind: Kind::Image(name),
            }
        };
        if !out.iter().any(|o| o.key == r.key) {
            out.push(r);
        }
    }
    out
}

/// A file's `sha256:` digest (the one the image store gives a tarball).
pub fn file_digest(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Hasher::new(Algorithm::Sha256);
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish().to_string())
}

/// This machine's platform in OCI's words.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("linux/{arch}")
}

/// What is stale in `lock` for `refs`: a reference not in it, a tarball whose digest changed,
/// an entry no reference uses. Warnings, at the reference (the last at no line).
pub fn stale(refs: &[Reference], lock: &Lock, lock_name: &str) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for r in refs {
        let entry = lock.images.iter().find(|e| e.reference == r.key);
        let problem = match (&r.kind, entry) {
            (_, None) => Some((format!("`{}` is not in {lock_name}", r.key), "not locked")),
            (Kind::Tarball(p), Some(e)) => match file_digest(p) {
                Ok(d) if d == e.digest => None,
                Ok(d) => Some((
                    format!(
                        "the tarball {} changed since {lock_name} was written ({} there, {} now)",
                        r.key,
                        short(&e.digest),
                        short(&d)
                    ),
                    "changed",
                )),
                Err(err) => Some((
                    format!("cannot read the tarball {}: {err}", r.key),
                    "unreadable",
                )),
            },
            (Kind::Image(_), Some(_)) => None,
        };
        if let Some((message, label)) = problem {
            out.push(
                Diagnostic::warning(codes::LOCK_STALE, message)
                    .with_span(Some(r.span))
                    .with_label(label)
                    .with_help("run `foxbox lock` to update the lock"),
            );
        }
    }
    for e in &lock.images {
        if !refs.iter().any(|r| r.key == e.reference) {
            out.push(
                Diagnostic::warning(
                    codes::LOCK_STALE,
                    format!(
                        "{lock_name} locks `{}`, which the spec no longer names",
                        e.reference
                    ),
                )
                .with_help("run `foxbox lock` to update the lock"),
            );
        }
    }
    out
}

fn short(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    hex.get(..12).unwrap_or(hex)
}

/// Pin a recipe's `from` image (`foxbox build`) to its digest in the lock beside the recipe
/// file, when there is one and it locks that reference.
pub fn pin_build_from(from: &mut super::build::From, recipe: &Path) -> Result<(), String> {
    let super::build::From::Image(text) = from else {
        return Ok(());
    };
    let Some(lock) = read(&lock_path(recipe, &super::file::spec_dir(recipe)))? else {
        return Ok(());
    };
    if ImageName::parse(text).is_ok_and(|n| n.digest().is_none()) {
        if let Some(e) = lock
            .images
            .iter()
            .find(|e| e.reference == *text && e.kind == "image")
        {
            *text = format!("{text}@{}", e.digest);
        }
    }
    Ok(())
}

/// Pin the plan's image to its locked digest, when the spec names a stored image by tag and
/// the lock has it.
pub fn pin(plan: &mut Plan, refs: &[Reference], lock: &Lock) {
    let ImageRef::Stored(name) = &plan.image.value else {
        return;
    };
    if name.digest().is_some() {
        return;
    }
    let locked = refs.iter().find_map(|r| match &r.kind {
        Kind::Image(n) if n.full() == name.full() => lock
            .images
            .iter()
            .find(|e| e.reference == r.key && e.kind == "image"),
        _ => None,
    });
    let Some(e) = locked else { return };
    if let Ok(pinned) = ImageName::parse(&format!("{}@{}", name.full(), e.digest)) {
        plan.image.value = ImageRef::Stored(pinned);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_sorted() {
        let lock = Lock {
            version: VERSION,
            images: vec![
                Entry {
                    reference: "z".into(),
                    kind: "image".into(),
                    digest: "sha256:1".into(),
                    platform: "linux/amd64".into(),
                },
                Entry {
                    reference: "a.tar".into(),
                    kind: "tarball".into(),
                    digest: "sha256:2".into(),
                    platform: "linux/amd64".into(),
                },
            ],
        };
        let text = render(&lock);
        let back: Lock = toml::from_str(&text).unwrap();
        assert_eq!(back.images[0].reference, "a.tar");
        assert_eq!(back.images.len(), 2);
    }
}
