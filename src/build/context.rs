//! The build context: its ignore file (Docker's rules) and what a `copy` step's sources name,
//! checked to stay inside it, with a digest of their contents for the cache.
//!
//! Ignore rules, as Docker's `.dockerignore`: one pattern a line, `#` comments, blank lines
//! skipped; a pattern is cleaned (`./a//b/` is `a/b`, a leading `/` dropped); `*` and `?` stay
//! within one path component, `**` crosses any number; `!` re-includes; the last matching
//! line wins; a pattern that matches a directory excludes everything under it. `.foxignore`
//! is read first, else `.containerignore`, else `.dockerignore`.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use sha2::{Digest as _, Sha256};

use crate::image::store::CopyItem;

/// The ignore files, in the order they are looked for.
pub const IGNORE_FILES: &[&str] = &[".foxignore", ".containerignore", ".dockerignore"];

/// Why a `copy` source is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("`{0}` is outside the build context")]
    Outside(String),
    #[error("`{path}` is outside the build context: it is a symlink to {target}")]
    LinkOutside { path: String, target: String },
    #[error("`{0}` matches nothing in the build context")]
    Nothing(String),
    #[error("`{path}` is excluded by {file}")]
    Ignored { path: String, file: String },
    #[error("`{0}` is not a valid pattern: {1}")]
    Pattern(String, String),
    #[error("cannot read `{0}`: {1}")]
    Read(String, String),
}

/// The context's ignore rules.
#[derive(Debug, Default)]
pub struct Ignore {
    /// The file they came from (its name), if any.
    pub file: Option<String>,
    rules: Vec<(GlobMatcher, bool)>,
}

impl Ignore {
    /// Read the context's ignore file (none: nothing is ignored).
    pub fn load(context: &Path) -> Result<Ignore, String> {
        for name in IGNORE_FILES {
            let p = context.join(name);
            match fs::read_to_string(&p) {
                Ok(text) => return Ignore::parse(&text, name),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(format!("cannot read {}: {e}", p.display())),
            }
        }
        Ok(Ignore::default())
    }

    pub fn parse(text: &str, file: &str) -> Result<Ignore, String> {
        let mut rules = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, pat) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let pat = clean(pat);
            if pat.is_empty() {
                continue;
            }
            let m = glob(&pat).map_err(|e| format!("{file}:{}: {e}", n + 1))?;
            rules.push((m, include));
        }
        Ok(Ignore {
            file: Some(file.to_string()),
            rules,
        })
    }

    /// Whether a `!` line re-includes anything.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|(_, include)| *include)
    }

    /// Whether the context-relative path `rel` (`a/b/c`) is excluded: the last rule that
    /// matches it or one of its parent directories decides.
    pub fn excluded(&self, rel: &str) -> bool {
        let mut out = false;
        for (m, include) in &self.rules {
            let mut p = rel;
            let hit = loop {
                if m.is_match(p) {
                    break true;
                }
                match p.rfind('/') {
                    Some(i) => p = &p[..i],
                    None => break false,
                }
            };
            if hit {
                out = !include;
            }
        }
        out
    }
}

fn glob(pat: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pat)
        .literal_separator(true)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| e.to_string())
}

/// A pattern or path cleaned as Go's `filepath.Clean`, relative: no `.`, no empty components,
/// `..` resolved where it can be (a leading one stays).
pub fn clean(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." if out.last().is_some_and(|l| *l != "..") => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// What one `copy` step copies: every entry with its destination, and a digest of the names,
/// modes and contents (the step's cache key part; times are left out).
#[derive(Debug, Default)]
pub struct Copied {
    pub items: Vec<CopyItem>,
    pub digest: String,
    /// Indices of the items that are sources themselves (files named or matched), not the
    /// contents of a directory: those `ADD` unpacks when they are archives.
    pub named: Vec<usize>,
}

/// Digests of context files, remembered between builds by what `stat` says of them (device,
/// inode, size, change and modification times to the nanosecond): a no-op rebuild reads no
/// file's contents. A file whose `stat` changed is read again.
#[derive(Debug, Default)]
pub struct DigestCache {
    path: Option<PathBuf>,
    files: std::collections::BTreeMap<String, (String, String)>,
    dirty: bool,
}

impl DigestCache {
    /// The cache at `path` (missing or unreadable: empty).
    pub fn load(path: &Path) -> DigestCache {
        let files = fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        DigestCache {
            path: Some(path.to_path_buf()),
            files,
            dirty: false,
        }
    }

    /// Write it back, if it changed (a failure only costs the next build a read).
    pub fn save(&self) {
        if let (true, Some(p)) = (self.dirty, &self.path) {
            if let Err(e) = crate::store::atomic::write_json(p, &self.files) {
                tracing::debug!("cannot write {}: {e}", p.display());
            }
        }
    }

    fn file(&mut self, path: &Path, m: &fs::Metadata) -> io::Result<String> {
        let stat = format!(
            "{}:{}:{}:{}.{}:{}.{}",
            m.dev(),
            m.ino(),
            m.len(),
            m.mtime(),
            m.mtime_nsec(),
            m.ctime(),
            m.ctime_nsec()
        );
        let name = path.to_string_lossy().into_owned();
        if let Some((s, d)) = self.files.get(&name) {
            if *s == stat {
                return Ok(d.clone());
            }
        }
        let mut h = Sha256::new();
        let mut f = File::open(path)?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match io::Read::read(&mut f, &mut buf)? {
                0 => break,
                n => h.update(&buf[..n]),
            }
        }
        let d = hex::encode(h.finalize());
        self.files.insert(name, (stat, d.clone()));
        self.dirty = true;
        Ok(d)
    }
}

/// Expand a `copy` step's sources (relative to `context`, which is canonical) for `dest`.
/// A source that leaves the context, names nothing, or is ignored is refused with its index.
pub fn expand(
    context: &Path,
    ignore: &Ignore,
    sources: &[String],
    dest: &str,
    cache: &mut DigestCache,
) -> Result<Copied, (usize, SourceError)> {
    let many = sources.len() > 1 || sources.iter().any(|s| has_glob(s));
    let into_dir = many || dest.ends_with('/');
    let dest = format!("/{}", clean(dest));
    let mut items: Vec<CopyItem> = Vec::new();
    let mut named = Vec::new();
    // Beside each item, its `stat` when the walk took it.
    let mut stats: Vec<Option<fs::Metadata>> = Vec::new();
    for (i, src) in sources.iter().enumerate() {
        let fail = |e: SourceError| (i, e);
        if src.starts_with('/') {
            return Err(fail(SourceError::Outside(src.clone())));
        }
        let rel = clean(src);
        if rel == ".." || rel.starts_with("../") {
            return Err(fail(SourceError::Outside(src.clone())));
        }
        let matched: Vec<String> = if has_glob(&rel) {
            let m = glob(&rel).map_err(|e| fail(SourceError::Pattern(src.clone(), e)))?;
            let mut all = Vec::new();
            walk(context, "", ignore, &mut all, false).map_err(|e| fail(read_err(src, e)))?;
            let hits: Vec<String> = all
                .into_iter()
                .map(|(p, _)| p)
                .filter(|p| m.is_match(p))
                .collect();
            // A directory that matches brings its contents: its matching children are not
            // sources of their own.
            hits.iter()
                .filter(|p| {
                    !hits
                        .iter()
                        .any(|q| p.len() > q.len() && p.starts_with(&format!("{q}/")))
                })
                .cloned()
                .collect()
        } else {
            if !rel.is_empty() && ignore.excluded(&rel) {
                return Err(fail(SourceError::Ignored {
                    path: src.clone(),
                    file: ignore.file.clone().unwrap_or_default(),
                }));
            }
            vec![rel.clone()]
        };
        if matched.is_empty() {
            return Err(fail(SourceError::Nothing(src.clone())));
        }
        for m in matched {
            let host = context.join(&m);
            // The source itself is followed (as Docker's COPY does), and must stay inside.
            let real = match fs::canonicalize(&host) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    if fs::symlink_metadata(&host).is_ok() {
                        let target = fs::read_link(&host)
                            .map(|t| t.display().to_string())
                            .unwrap_or_default();
                        return Err(fail(SourceError::LinkOutside {
                            path: src.clone(),
                            target,
                        }));
                    }
                    return Err(fail(SourceError::Nothing(src.clone())));
                }
                Err(e) => return Err(fail(read_err(src, e))),
            };
            if !real.starts_with(context) {
                // The source is lexically inside: a symlink on the way leads out.
                return Err(fail(SourceError::LinkOutside {
                    path: src.clone(),
                    target: real.display().to_string(),
                }));
            }
            let meta = fs::metadata(&real).map_err(|e| fail(read_err(src, e)))?;
            if meta.is_dir() {
                let base = real
                    .strip_prefix(context)
                    .unwrap_or(Path::new(""))
                    .to_string_lossy()
                    .into_owned();
                let mut inner = Vec::new();
                walk(context, &base, ignore, &mut inner, true)
                    .map_err(|e| fail(read_err(src, e)))?;
                for (p, st) in inner {
                    let sub = p.strip_prefix(&base).unwrap_or(&p).trim_start_matches('/');
                    items.push(CopyItem {
                        src: context.join(&p),
                        dest: join(&dest, sub),
                    });
                    stats.push(st);
                }
            } else {
                let name = Path::new(&m)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let d = if into_dir {
                    join(&dest, &name)
                } else {
                    dest.clone()
                };
                named.push(items.len());
                items.push(CopyItem { src: real, dest: d });
                stats.push(None);
            }
        }
    }
    let digest = digest_items(&items, &stats, cache).map_err(|e| (0, read_err("", e)))?;
    Ok(Copied {
        items,
        digest,
        named,
    })
}

fn read_err(src: &str, e: io::Error) -> SourceError {
    SourceError::Read(src.to_string(), e.to_string())
}

fn join(dir: &str, name: &str) -> String {
    if name.is_empty() {
        dir.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// An entry a walk found: its context-relative path, and its `stat` (not followed) when asked
/// for and it is not a directory.
type Walked = (String, Option<fs::Metadata>);

/// Every entry under `context/base` that is not excluded, parents before children, in name
/// order. Symlinks are not followed. With `stat`, each entry's is taken relative to its open
/// directory: a lookup of one name rather than of the whole path (a no-op rebuild of a large
/// context is mostly these calls).
fn walk(
    context: &Path,
    base: &str,
    ignore: &Ignore,
    out: &mut Vec<Walked>,
    stat: bool,
) -> io::Result<()> {
    let mut names: Vec<(String, bool, Option<fs::Metadata>)> = Vec::new();
    for e in fs::read_dir(context.join(base))? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let is_dir = e.file_type()?.is_dir();
        let st = if stat && !is_dir {
            Some(e.metadata()?)
        } else {
            None
        };
        let rel = if base.is_empty() {
            name
        } else {
            format!("{base}/{name}")
        };
        names.push((rel, is_dir, st));
    }
    names.sort_by(|a, b| a.0.cmp(&b.0));
    for (rel, is_dir, st) in names {
        if ignore.excluded(&rel) {
            // As Docker: an excluded directory is still searched when a `!` line could
            // bring back something inside it.
            if is_dir && ignore.has_exceptions() {
                walk(context, &rel, ignore, out, stat)?;
            }
            continue;
        }
        out.push((rel.clone(), st));
        if is_dir {
            walk(context, &rel, ignore, out, stat)?;
        }
    }
    Ok(())
}

/// A digest of what the items put into the image: destination, type, mode and contents (or
/// link target). Contents are read streaming (a large context is never held in memory), and
/// only when `cache` does not know the file as it is. `stats`: beside each item, its `stat`
/// when the walk took it.
fn digest_items(
    items: &[CopyItem],
    stats: &[Option<fs::Metadata>],
    cache: &mut DigestCache,
) -> io::Result<String> {
    let mut h = Sha256::new();
    for (it, st) in items.iter().zip(stats) {
        let m = match st {
            Some(m) => m.clone(),
            None => fs::symlink_metadata(&it.src)?,
        };
        h.update(it.dest.as_bytes());
        h.update([0]);
        h.update(format!("{:o}", m.mode()).as_bytes());
        h.update([0]);
        if m.file_type().is_symlink() {
            h.update(fs::read_link(&it.src)?.as_os_str().as_encoded_bytes());
        } else if m.is_file() {
            h.update(cache.file(&it.src, &m)?.as_bytes());
        }
        h.update([0]);
    }
    Ok(hex::encode(h.finalize()))
}

/// The canonical context directory.
pub fn canonical(context: &Path) -> io::Result<PathBuf> {
    let c = fs::canonicalize(context)?;
    if !c.is_dir() {
        return Err(io::Error::other("not a directory"));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_ignore_rules() {
        let ig = Ignore::parse(
            "# comment\n*.log\n/build/\n!build/keep.txt\ndocs/**/*.md\n./tmp//\n",
            ".dockerignore",
        )
        .unwrap();
        assert!(ig.excluded("a.log"));
        assert!(!ig.excluded("sub/a.log"), "`*` stays in one component");
        assert!(ig.excluded("build"));
        assert!(
            ig.excluded("build/x/y"),
            "a directory's contents go with it"
        );
        assert!(!ig.excluded("build/keep.txt"), "the last match wins");
        assert!(ig.excluded("docs/a/b/c.md"));
        assert!(ig.excluded("docs/c.md"));
        assert!(ig.excluded("tmp/x"));
        assert!(!ig.excluded("src/main.c"));
    }

    #[test]
    fn clean_is_go_like() {
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("/x"), "x");
    }

    #[test]
    fn sources_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let ctx = canonical(t.path()).unwrap();
        fs::write(ctx.join("a.txt"), "a").unwrap();
        fs::create_dir(ctx.join("d")).unwrap();
        fs::write(ctx.join("d/b.txt"), "b").unwrap();
        std::os::unix::fs::symlink("/etc", ctx.join("out")).unwrap();
        std::os::unix::fs::symlink("a.txt", ctx.join("in")).unwrap();
        let ig = Ignore::default();
        let e = |s: &str| {
            expand(
                &ctx,
                &ig,
                &[s.to_string()],
                "/x/",
                &mut DigestCache::default(),
            )
            .unwrap_err()
            .1
        };
        assert_eq!(e("../a"), SourceError::Outside("../a".into()));
        assert_eq!(e("/etc/passwd"), SourceError::Outside("/etc/passwd".into()));
        assert!(matches!(e("out"), SourceError::LinkOutside { .. }));
        assert!(matches!(e("out/passwd"), SourceError::LinkOutside { .. }));
        assert_eq!(e("nope"), SourceError::Nothing("nope".into()));
        let c = expand(
            &ctx,
            &ig,
            &["in".into(), "d/".into()],
            "/x/",
            &mut DigestCache::default(),
        )
        .unwrap();
        let dests: Vec<&str> = c.items.iter().map(|i| i.dest.as_str()).collect();
        assert_eq!(dests, ["/x/in", "/x/b.txt"]);
        let g = expand(
            &ctx,
            &ig,
            &["*.txt".into()],
            "/y",
            &mut DigestCache::default(),
        )
        .unwrap();
        assert_eq!(g.items[0].dest, "/y/a.txt");
        let one = expand(
            &ctx,
            &ig,
            &["a.txt".into()],
            "/z/f",
            &mut DigestCache::default(),
        )
        .unwrap();
        assert_eq!(one.items[0].dest, "/z/f");
        let ig = Ignore::parse("d\n", ".foxignore").unwrap();
        assert!(matches!(
            expand(
                &ctx,
                &ig,
                &["d/b.txt".into()],
                "/x/",
                &mut DigestCache::default()
            )
            .unwrap_err()
            .1,
            SourceError::Ignored { .. }
        ));
    }
}
