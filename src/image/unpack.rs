//! Unpacking a tar stream into a directory, treating the archive as hostile.
//!
//! Rules (each has a test in tests/image_hostile.rs):
//! - Entry names are byte strings (non-UTF-8 is fine). A leading `/` is dropped (as GNU tar
//!   does); a `..` component refuses the archive. Every parent directory is resolved inside the
//!   layer ([`super::inroot`]): symlinks on the way, absolute or relative, chained or not, are
//!   followed as the box will see them, never on the host. The final component is never
//!   followed: an entry replaces a symlink at its name instead of writing through it.
//! - Hard links must name an earlier entry of the same layer (resolved the same way); a link to
//!   a directory or to nothing refuses the archive.
//! - Character and block devices are skipped with one warning (a box gets its own /dev);
//!   fifos are created; sockets cannot be stored in tar; any other type refuses the archive.
//! - GNU long names and links and PAX headers (path, linkpath, uid, gid, mtime, size) are read
//!   here with size caps, not by the tar crate, so a huge name cannot exhaust memory; a PAX
//!   size that disagrees with the header, and GNU sparse files, are refused.
//! - Duplicate entries: the last one wins (a directory over a directory keeps the contents).
//! - Ownership: kept ([`Owners::Keep`]), an id the user namespace does not map becoming the
//!   box's root with a warning, or ignored ([`Owners::Ignore`]).
//! - Modes are kept, setuid and setgid included; see src/image/mod.rs for why that is safe.
//! - Extended attributes are not restored.
//! - The whole stream (trailing data too) counts against `max_size`; past it the archive is
//!   refused as a decompression bomb.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fchmodat, futimens, mknodat, utimensat, FchmodatFlags, Mode, SFlag};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchown, fchownat, linkat, symlinkat, Gid, Uid};

use super::inroot::{self, LookupError, Root};

/// Caps on the metadata records read into memory.
const MAX_LONG_NAME: u64 = 64 * 1024;
const MAX_PAX: u64 = 1024 * 1024;

/// How whiteout entries (`.wh.NAME`, `.wh..wh..opq`) are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteouts {
    /// A single rootfs tarball: the marker is not created; `.wh.NAME` removes NAME if an
    /// earlier entry of this archive made it; the opaque marker has nothing below it to hide.
    Flatten,
    /// A layer applied onto a directory that holds the layers below it (registry pulls that
    /// flatten): `.wh.NAME` removes NAME from the directory, `.wh..wh..opq` removes everything
    /// in its directory that this layer did not create.
    Apply,
    /// One layer of an overlay (registry pulls that share layers): `.wh.NAME` becomes the
    /// overlayfs whiteout (a 0/0 character device), `.wh..wh..opq` the opaque mark on its
    /// directory (`user.overlay.opaque`: boxes mount their overlay with `userxattr`, root's
    /// too).
    Overlay,
}

/// What happens to the owners recorded in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owners {
    /// chown every entry to its recorded uid/gid (as root, or as root of a user namespace with a
    /// range; an id the namespace does not map falls back to 0 with a warning).
    Keep,
    /// Leave everything owned by the unpacking user (no subordinate range: all is the box's root).
    Ignore,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub whiteouts: Whiteouts,
    pub owners: Owners,
    /// Bytes of uncompressed archive past which it is refused.
    pub max_size: u64,
}

/// What an unpack did, for the record and for warnings.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub entries: u64,
    /// Bytes of file contents written.
    pub bytes: u64,
    /// Device nodes skipped, and the first one's name.
    pub devices_skipped: u64,
    pub first_device: Option<String>,
    /// Entries whose owner the user namespace cannot represent (given to the box's root).
    pub unmapped_owners: u64,
    pub first_unmapped: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("refused entry {entry:?}: {why}")]
    Refused { entry: String, why: String },
    #[error("the archive is corrupt: {0}")]
    Corrupt(String),
    #[error("the archive expands to more than {limit} bytes, the size limit (a decompression bomb?); raise FOXBOX_MAX_IMAGE_SIZE to allow it")]
    TooLarge { limit: u64 },
    #[error("cannot read the archive: {0}")]
    Read(io::Error),
    #[error("cannot open the destination {path}: {errno}")]
    Dest { path: String, errno: Errno },
}

fn refused(entry: &[u8], why: impl Into<String>) -> UnpackError {
    UnpackError::Refused {
        entry: String::from_utf8_lossy(entry).into_owned(),
        why: why.into(),
    }
}

/// The marker error a [`Limited`] reader raises, told apart from real I/O errors.
#[derive(Debug)]
struct LimitExceeded;
impl std::fmt::Display for LimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("size limit exceeded")
    }
}
impl std::error::Error for LimitExceeded {}

/// Counts bytes read and fails past a limit.
pub struct Limited<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Limited<R> {
    pub fn new(inner: R, limit: u64) -> Self {
        Limited {
            inner,
            read: 0,
            limit,
        }
    }
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(io::Error::other(LimitExceeded));
        }
        Ok(n)
    }
}

/// Turn a read error into the unpack error it stands for.
fn read_error(e: io::Error, limit: u64) -> UnpackError {
    if e.get_ref().is_some_and(|i| i.is::<LimitExceeded>()) {
        return UnpackError::TooLarge { limit };
    }
    match e.kind() {
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
            UnpackError::Corrupt(e.to_string())
        }
        io::ErrorKind::Other => UnpackError::Corrupt(e.to_string()),
        _ => UnpackError::Read(e),
    }
}

/// The metadata of one entry after GNU and PAX extensions are applied.
struct Meta {
    path: Vec<u8>,
    link: Option<Vec<u8>>,
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: i64,
    size: u64,
}

#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Option<Vec<u8>>,
}

struct DirMeta {
    uid: u64,
    gid: u64,
    mode: u32,
    mtime: i64,
}

/// Split an archive path into its components; `..` refuses it, `.` and empty ones vanish (so a
/// leading `/` is dropped).
fn components(path: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    let mut v = Vec::new();
    for c in path.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err("the path contains a `..` component"),
            c => v.push(c),
        }
    }
    Ok(v)
}

/// Unpack the tar stream `archive` into `dest` (an existing, empty or lower-layer directory).
///
/// Reads the stream to its end, trailing data included, so that a gzip trailer is verified.
pub fn unpack<R: Read>(archive: R, dest: &Path, opts: &Options) -> Result<Stats, UnpackError> {
    let root = Root::open(dest).map_err(|errno| UnpackError::Dest {
        path: dest.display().to_string(),
        errno,
    })?;
    let mut u = Unpacker {
        root,
        opts: *opts,
        stats: Stats::default(),
        dirs: HashMap::new(),
        created: HashSet::new(),
        cache: None,
        buf: vec![0u8; 256 * 1024],
    };
    let limited = Limited::new(archive, opts.max_size);
    let mut ar = tar::Archive::new(limited);
    let limit = opts.max_size;
    {
        let entries = ar.entries().map_err(|e| read_error(e, limit))?;
        let mut pending = Pending::default();
        for entry in entries.raw(true) {
            let entry = entry.map_err(|e| read_error(e, limit))?;
            u.entry(entry, &mut pending)?;
        }
        if pending.long_name.is_some() || pending.long_link.is_some() || pending.pax.is_some() {
            return Err(UnpackError::Corrupt(
                "the archive ends with an extended header that describes no entry".into(),
            ));
        }
    }
    u.finish_dirs()?;
    let mut rest = ar.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(|e| read_error(e, limit))?;
    Ok(u.stats)
}

struct Unpacker {
    root: Root,
    opts: Options,
    stats: Stats,
    /// Directories seen, with the metadata applied once all their contents are in.
    dirs: HashMap<Vec<u8>, DirMeta>,
    /// Paths this layer created (only kept for [`Whiteouts::Apply`]'s opaque directories).
    created: HashSet<Vec<u8>>,
    /// The last parent directory opened: most entries share their parent with the previous one.
    cache: Option<(Vec<u8>, OwnedFd)>,
    buf: Vec<u8>,
}

fn read_capped<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    cap: u64,
    what: &str,
    limit: u64,
) -> Result<Vec<u8>, UnpackError> {
    let size = entry.size();
    if size > cap {
        return Err(UnpackError::Corrupt(format!(
            "a {what} of {size} bytes (at most {cap} allowed)"
        )));
    }
    let mut v = Vec::with_capacity(size as usize);
    entry
        .read_to_end(&mut v)
        .map_err(|e| read_error(e, limit))?;
    if (v.len() as u64) < size {
        return Err(UnpackError::Corrupt(format!("a truncated {what}")));
    }
    Ok(v)
}

fn trim_nul(mut v: Vec<u8>) -> Vec<u8> {
    if let Some(p) = v.iter().position(|b| *b == 0) {
        v.truncate(p);
    }
    v
}

impl Unpacker {
    fn entry<R: Read>(
        &mut self,
        mut entry: tar::Entry<'_, R>,
        pending: &mut Pending,
    ) -> Result<(), UnpackError> {
        let limit = self.opts.max_size;
        let ty = entry.header().entry_type();
        let ty_byte = ty.as_byte();
        match ty_byte {
            b'L' => {
                let v = read_capped(&mut entry, MAX_LONG_NAME, "GNU long name", limit)?;
                pending.long_name = Some(trim_nul(v));
                return Ok(());
            }
            b'K' => {
                let v = read_capped(&mut entry, MAX_LONG_NAME, "GNU long link name", limit)?;
                pending.long_link = Some(trim_nul(v));
                return Ok(());
            }
            b'x' => {
                pending.pax = Some(read_capped(&mut entry, MAX_PAX, "PAX header", limit)?);
                return Ok(());
            }
            b'g' => {
                read_capped(&mut entry, MAX_PAX, "PAX global header", limit)?;
                return Ok(());
            }
            _ => {}
        }
        let pending = std::mem::take(pending);
        let meta = self.meta(&entry, pending)?;
        // Old (V7) archives mark a directory only by a trailing slash on a regular entry.
        let ty_byte = match ty_byte {
            b'0' | b'\0' if meta.path.ends_with(b"/") => b'5',
            t => t,
        };
        self.stats.entries += 1;
        let comps = components(&meta.path).map_err(|why| refused(&meta.path, why))?;
        match ty_byte {
            b'0' | b'\0' | b'7' | b'5' | b'2' | b'1' | b'3' | b'4' | b'6' => {}
            b'S' => return Err(refused(&meta.path, "GNU sparse files are not supported")),
            other => {
                return Err(refused(
                    &meta.path,
                    format!("unsupported entry type {:?}", other as char),
                ))
            }
        }
        // A directory entry may carry a trailing slash; other types may not name the root.
        let Some((&name, parents)) = comps.split_last() else {
            if ty_byte == b'5' {
                self.dirs.insert(Vec::new(), dir_meta(&meta));
                return Ok(());
            }
            return Err(refused(&meta.path, "the entry names the layer's root"));
        };
        if let Some(target) = name.strip_prefix(b".wh.") {
            return self.whiteout(&meta.path, parents, target);
        }
        let parent = self.parent(&meta.path, parents)?;
        let path = inroot::join(&comps);
        match ty_byte {
            b'5' => self.dir(parent.as_fd(), name, &meta, path.clone())?,
            b'0' | b'\0' | b'7' => self.file(parent.as_fd(), name, &meta, &mut entry)?,
            b'2' => self.symlink(parent.as_fd(), name, &meta)?,
            b'1' => self.hardlink(parent.as_fd(), name, &meta, &comps)?,
            b'6' => self.fifo(parent.as_fd(), name, &meta)?,
            // b'3' | b'4': character and block devices.
            _ => {
                self.stats.devices_skipped += 1;
                if self.stats.first_device.is_none() {
                    self.stats.first_device = Some(String::from_utf8_lossy(&meta.path).into());
                }
                return Ok(());
            }
        }
        if ty_byte != b'5' {
            self.forget_cache_under(&path);
        }
        if self.opts.whiteouts == Whiteouts::Apply {
            self.created.insert(path);
        }
        self.cache = Some((inroot::join(parents), parent));
        Ok(())
    }

    fn meta<R: Read>(&self, entry: &tar::Entry<'_, R>, p: Pending) -> Result<Meta, UnpackError> {
        let h = entry.header();
        let raw_path = h.path_bytes().into_owned();
        let bad = |why: &str| refused(&raw_path, why.to_string());
        let mut m = Meta {
            path: p.long_name.unwrap_or_else(|| raw_path.clone()),
            link: p
                .long_link
                .or_else(|| h.link_name_bytes().map(|c| c.into_owned())),
            uid: h.uid().map_err(|_| bad("an unreadable uid"))?,
            gid: h.gid().map_err(|_| bad("an unreadable gid"))?,
            mode: h.mode().map_err(|_| bad("an unreadable mode"))?,
            mtime: h
                .mtime()
                .map(|t| t.min(i64::MAX as u64) as i64)
                .unwrap_or(0),
            size: entry.size(),
        };
        if let Some(pax) = p.pax {
            for ext in tar::PaxExtensions::new(&pax) {
                let ext = ext.map_err(|_| bad("a malformed PAX header"))?;
                let num = || {
                    ext.value()
                        .ok()
                        .and_then(|v| v.parse::<u64>().ok())
                        .ok_or_else(|| bad("a PAX number that does not parse"))
                };
                match ext.key_bytes() {
                    b"path" => m.path = ext.value_bytes().to_vec(),
                    b"linkpath" => m.link = Some(ext.value_bytes().to_vec()),
                    b"uid" => m.uid = num()?,
                    b"gid" => m.gid = num()?,
                    b"mtime" => {
                        let v = ext.value().unwrap_or("0");
                        let secs = v.split('.').next().unwrap_or("0");
                        m.mtime = secs.parse::<i64>().unwrap_or(0);
                    }
                    b"size" if num()? != m.size => {
                        return Err(bad("the PAX size disagrees with the header's size"));
                    }
                    k if k.starts_with(b"GNU.sparse.") => {
                        return Err(bad("GNU sparse files are not supported"))
                    }
                    _ => {}
                }
            }
        }
        if m.path.contains(&0) || m.link.as_ref().is_some_and(|l| l.contains(&0)) {
            return Err(bad("a name with a NUL byte"));
        }
        Ok(m)
    }

    /// The parent directory of an entry, created as needed, resolved inside the layer.
    fn parent(&mut self, path: &[u8], parents: &[&[u8]]) -> Result<OwnedFd, UnpackError> {
        let key = inroot::join(parents);
        if let Some((p, fd)) = self.cache.take() {
            if p == key {
                return Ok(fd);
            }
        }
        self.root
            .make_dir(parents)
            .map_err(|e| lookup_refused(path, e))
    }

    /// Drop the cached parent when this entry replaced it or one of its ancestors.
    fn forget_cache_under(&mut self, path: &[u8]) {
        if let Some((p, _)) = &self.cache {
            let under = p == path || (p.starts_with(path) && p.get(path.len()) == Some(&b'/'));
            if under {
                self.cache = None;
            }
        }
    }

    /// Make room for a new entry at `name`: a directory over a directory stays; anything else
    /// there goes.
    fn clear(
        &self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        entry: &[u8],
        keep_dir: bool,
    ) -> Result<bool, UnpackError> {
        let sys = |e: Errno| {
            refused(
                entry,
                format!("cannot replace the existing entry: {}", e.desc()),
            )
        };
        match inroot::kind_at(parent, name).map_err(sys)? {
            None => Ok(false),
            Some(SFlag::S_IFDIR) if keep_dir => Ok(true),
            Some(_) => {
                inroot::remove_at(parent, name).map_err(sys)?;
                Ok(false)
            }
        }
    }

    /// Run `op` to create `name`; when something is already there (a duplicate entry), remove
    /// it and try once more. Trying first saves a stat per entry on the common path.
    fn create<T>(
        &self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        entry: &[u8],
        what: &str,
        mut op: impl FnMut() -> Result<T, Errno>,
    ) -> Result<T, UnpackError> {
        let fail = |e: Errno| refused(entry, format!("cannot create the {what}: {}", e.desc()));
        match op() {
            Err(Errno::EEXIST) => {
                self.clear(parent, name, entry, false)?;
                op().map_err(fail)
            }
            r => r.map_err(fail),
        }
    }

    fn dir(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        m: &Meta,
        path: Vec<u8>,
    ) -> Result<(), UnpackError> {
        // Owner-only until the end: the contents still have to go in.
        let mkdir = || nix::sys::stat::mkdirat(parent, name, Mode::from_bits_truncate(0o700));
        let fail = |e: Errno| {
            refused(
                &m.path,
                format!("cannot create the directory: {}", e.desc()),
            )
        };
        match mkdir() {
            Ok(()) => {}
            // A directory over a directory keeps it (and its contents); anything else goes.
            Err(Errno::EEXIST) => {
                if !self.clear(parent, name, &m.path, true)? {
                    mkdir().map_err(fail)?;
                }
            }
            Err(e) => return Err(fail(e)),
        }
        self.forget_cache_under(&path);
        self.dirs.insert(path, dir_meta(m));
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        m: &Meta,
        data: &mut R,
    ) -> Result<(), UnpackError> {
        let fd = self.create(parent, name, &m.path, "file", || {
            openat(
                parent,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                Mode::from_bits_truncate(0o600),
            )
        })?;
        let mut file = std::fs::File::from(fd);
        let mut left = m.size;
        while left > 0 {
            let want = left.min(self.buf.len() as u64) as usize;
            let n = data
                .read(&mut self.buf[..want])
                .map_err(|e| read_error(e, self.opts.max_size))?;
            if n == 0 {
                return Err(UnpackError::Corrupt(format!(
                    "the data of {:?} is truncated",
                    String::from_utf8_lossy(&m.path)
                )));
            }
            file.write_all(&self.buf[..n])
                .map_err(|e| refused(&m.path, format!("cannot write: {e}")))?;
            left -= n as u64;
        }
        self.stats.bytes += m.size;
        self.own_fd(file.as_fd(), m)?;
        fchmod(file.as_fd(), Mode::from_bits_truncate(m.mode & 0o7777))
            .map_err(|e| refused(&m.path, format!("cannot set the mode: {}", e.desc())))?;
        let t = TimeSpec::new(m.mtime, 0);
        futimens(file.as_fd(), &t, &t)
            .map_err(|e| refused(&m.path, format!("cannot set the time: {}", e.desc())))?;
        Ok(())
    }

    fn symlink(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        m: &Meta,
    ) -> Result<(), UnpackError> {
        let target = match &m.link {
            Some(t) if !t.is_empty() => t.as_slice(),
            _ => return Err(refused(&m.path, "a symlink without a target")),
        };
        self.create(parent, name, &m.path, "symlink", || {
            symlinkat(target, parent, name)
        })?;
        self.own_at(parent, name, m)?;
        let t = TimeSpec::new(m.mtime, 0);
        // Best effort: a symlink's time matters to nobody but `ls -l`.
        let _ = utimensat(
            parent,
            name,
            &t,
            &t,
            nix::sys::stat::UtimensatFlags::NoFollowSymlink,
        );
        Ok(())
    }

    fn hardlink(
        &mut self,
        parent: BorrowedFd<'_>,
        name: &[u8],
        m: &Meta,
        comps: &[&[u8]],
    ) -> Result<(), UnpackError> {
        let target = m.link.as_deref().unwrap_or_default();
        let tcomps = components(target).map_err(|why| {
            refused(
                &m.path,
                format!(
                    "the hard link's target {:?}: {why}",
                    String::from_utf8_lossy(target)
                ),
            )
        })?;
        let Some((&tname, tparents)) = tcomps.split_last() else {
            return Err(refused(&m.path, "a hard link to the layer's root"));
        };
        if tcomps == comps {
            return match inroot::kind_at(parent, name) {
                Ok(Some(_)) => Ok(()),
                _ => Err(refused(&m.path, "a hard link to itself")),
            };
        }
        let missing = || {
            refused(
                &m.path,
                format!(
                    "the hard link's target {:?} is not an earlier entry of this archive",
                    String::from_utf8_lossy(target)
                ),
            )
        };
        let tparent = match self.root.open_dir(tparents) {
            Ok(fd) => fd,
            Err(LookupError::Sys(Errno::ENOENT)) | Err(LookupError::NotDir) => {
                return Err(missing())
            }
            Err(e) => return Err(lookup_refused(&m.path, e)),
        };
        match inroot::kind_at(tparent.as_fd(), tname) {
            Ok(Some(SFlag::S_IFDIR)) => return Err(refused(&m.path, "a hard link to a directory")),
            Ok(Some(_)) => {}
            _ => return Err(missing()),
        }
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
        self.create(parent, name, &m.path, "hard link", || {
            linkat(tparent.as_fd(), tname, parent, name, AtFlags::empty())
        })
    }

    fn fifo(&mut self, parent: BorrowedFd<'_>, name: &[u8], m: &Meta) -> Result<(), UnpackError> {
        self.create(parent, name, &m.path, "fifo", || {
            mknodat(
                parent,
                name,
                SFlag::S_IFIFO,
                Mode::from_bits_truncate(0o600),
                0,
            )
        })?;
        self.own_at(parent, name, m)?;
        // The fifo was made by this call, under a real directory: following it cannot escape.
        fchmodat(
            parent,
            name,
            Mode::from_bits_truncate(m.mode & 0o777),
            FchmodatFlags::NoFollowSymlink,
        )
        .or_else(|_| {
            fchmodat(
                parent,
                name,
                Mode::from_bits_truncate(m.mode & 0o777),
                FchmodatFlags::FollowSymlink,
            )
        })
        .map_err(|e| refused(&m.path, format!("cannot set the mode: {}", e.desc())))
    }

    fn whiteout(
        &mut self,
        path: &[u8],
        parents: &[&[u8]],
        target: &[u8],
    ) -> Result<(), UnpackError> {
        let lookup = if self.opts.whiteouts == Whiteouts::Overlay {
            // The marks live in this layer's own copy of the directory.
            self.root.make_dir(parents)
        } else {
            self.root.open_dir(parents)
        };
        let parent = match lookup {
            Ok(fd) => fd,
            // Nothing there to hide.
            Err(LookupError::Sys(Errno::ENOENT)) | Err(LookupError::NotDir) => return Ok(()),
            Err(e) => return Err(lookup_refused(path, e)),
        };
        self.cache = None;
        if self.opts.whiteouts == Whiteouts::Overlay {
            return self.overlay_whiteout(path, parent, target);
        }
        if target == b".wh..opq" {
            if self.opts.whiteouts == Whiteouts::Apply {
                let dir = inroot::join(parents);
                let names = inroot::list_dir(parent.as_fd()).map_err(|e| {
                    refused(path, format!("cannot list the directory: {}", e.desc()))
                })?;
                for (name, _) in names {
                    let mut child = dir.clone();
                    if !child.is_empty() {
                        child.push(b'/');
                    }
                    child.extend_from_slice(&name);
                    if !self.created.contains(&child) {
                        inroot::remove_at(parent.as_fd(), &name).map_err(|e| {
                            refused(
                                path,
                                format!("cannot apply the opaque whiteout: {}", e.desc()),
                            )
                        })?;
                    }
                }
            }
            return Ok(());
        }
        if target.starts_with(b".wh.") {
            // Other AUFS metadata (.wh..wh.plnk, .wh..wh.aufs): not content.
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(refused(path, "a whiteout that names no file"));
        }
        inroot::remove_at(parent.as_fd(), target)
            .map_err(|e| refused(path, format!("cannot apply the whiteout: {}", e.desc())))?;
        let mut p = inroot::join(parents);
        if !p.is_empty() {
            p.push(b'/');
        }
        p.extend_from_slice(target);
        self.dirs
            .retain(|d, _| !(d == &p || (d.starts_with(&p) && d.get(p.len()) == Some(&b'/'))));
        Ok(())
    }

    fn overlay_whiteout(
        &mut self,
        path: &[u8],
        parent: OwnedFd,
        target: &[u8],
    ) -> Result<(), UnpackError> {
        if target == b".wh..opq" {
            // An O_PATH fd takes no xattrs: reopen the directory for reading.
            return openat(
                parent.as_fd(),
                ".",
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .and_then(|fd| super::xattr::set_opaque(fd.as_fd()))
            .map_err(|e| {
                refused(
                    path,
                    format!("cannot mark the directory opaque: {}", e.desc()),
                )
            });
        }
        if target.starts_with(b".wh.") {
            return Ok(());
        }
        if target.is_empty() || target == b"." || target == b".." {
            return Err(refused(path, "a whiteout that names no file"));
        }
        self.create(parent.as_fd(), target, path, "whiteout", || {
            mknodat(parent.as_fd(), target, SFlag::S_IFCHR, Mode::empty(), 0)
        })
    }

    fn owner(&mut self, m: &Meta) -> Option<(u32, u32)> {
        if self.opts.owners == Owners::Ignore {
            return None;
        }
        let fit = |id: u64| u32::try_from(id).ok().filter(|v| *v != u32::MAX);
        match (fit(m.uid), fit(m.gid)) {
            (Some(u), Some(g)) => Some((u, g)),
            _ => {
                self.note_unmapped(m);
                Some((0, 0))
            }
        }
    }

    fn note_unmapped(&mut self, m: &Meta) {
        self.stats.unmapped_owners += 1;
        if self.stats.first_unmapped.is_none() {
            self.stats.first_unmapped = Some(String::from_utf8_lossy(&m.path).into());
        }
    }

    fn own_fd(&mut self, fd: BorrowedFd<'_>, m: &Meta) -> Result<(), UnpackError> {
        let Some((u, g)) = self.owner(m) else {
            return Ok(());
        };
        match fchown(fd, Some(Uid::from_raw(u)), Some(Gid::from_raw(g))) {
            Ok(()) => Ok(()),
            Err(Errno::EINVAL) => {
                self.note_unmapped(m);
                fchown(fd, Some(Uid::from_raw(0)), Some(Gid::from_raw(0)))
                    .map_err(|e| refused(&m.path, format!("cannot set the owner: {}", e.desc())))
            }
            Err(e) => Err(refused(
                &m.path,
                format!("cannot set the owner: {}", e.desc()),
            )),
        }
    }

    fn own_at(&mut self, parent: BorrowedFd<'_>, name: &[u8], m: &Meta) -> Result<(), UnpackError> {
        let Some((u, g)) = self.owner(m) else {
            return Ok(());
        };
        let set = |u, g| {
            fchownat(
                parent,
                name,
                Some(Uid::from_raw(u)),
                Some(Gid::from_raw(g)),
                AtFlags::AT_SYMLINK_NOFOLLOW,
            )
        };
        match set(u, g) {
            Ok(()) => Ok(()),
            Err(Errno::EINVAL) => {
                self.note_unmapped(m);
                set(0, 0)
                    .map_err(|e| refused(&m.path, format!("cannot set the owner: {}", e.desc())))
            }
            Err(e) => Err(refused(
                &m.path,
                format!("cannot set the owner: {}", e.desc()),
            )),
        }
    }

    /// Give directories their modes, owners and times, deepest first, once nothing more goes in.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        let mut dirs: Vec<(Vec<u8>, DirMeta)> =
            std::mem::take(&mut self.dirs).into_iter().collect();
        dirs.sort_by_key(|(p, _)| {
            std::cmp::Reverse(p.iter().filter(|b| **b == b'/').count() + usize::from(!p.is_empty()))
        });
        self.cache = None;
        for (path, d) in dirs {
            let comps: Vec<&[u8]> = if path.is_empty() {
                Vec::new()
            } else {
                path.split(|b| *b == b'/').collect()
            };
            // The directory may have been replaced by a later entry: only a real directory at
            // exactly that path (no symlink at its end) gets the metadata.
            let fd = match self.root.open_in_root(
                &comps,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            ) {
                Ok(fd) => fd,
                Err(_) => continue,
            };
            let m = Meta {
                path: path.clone(),
                link: None,
                uid: d.uid,
                gid: d.gid,
                mode: d.mode,
                mtime: d.mtime,
                size: 0,
            };
            self.own_fd(fd.as_fd(), &m)?;
            fchmod(fd.as_fd(), Mode::from_bits_truncate(d.mode & 0o7777))
                .map_err(|e| refused(&path, format!("cannot set the mode: {}", e.desc())))?;
            let t = TimeSpec::new(d.mtime, 0);
            let _ = futimens(fd.as_fd(), &t, &t);
        }
        Ok(())
    }
}

fn dir_meta(m: &Meta) -> DirMeta {
    DirMeta {
        uid: m.uid,
        gid: m.gid,
        mode: m.mode,
        mtime: m.mtime,
    }
}

fn lookup_refused(path: &[u8], e: LookupError) -> UnpackError {
    refused(
        path,
        format!("cannot resolve its directory inside the layer: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_drop_dots_and_leading_slash_and_refuse_dotdot() {
        assert_eq!(
            components(b"/a/./b//c/").unwrap(),
            vec![&b"a"[..], b"b", b"c"]
        );
        assert!(components(b"a/../b").is_err());
        assert!(components(b"..").is_err());
        assert!(components(b"./").unwrap().is_empty());
    }

    #[test]
    fn limited_reader_fails_past_the_limit() {
        let mut r = Limited::new(&[0u8; 100][..], 50);
        let e = io::copy(&mut r, &mut io::sink()).unwrap_err();
        assert!(matches!(
            read_error(e, 50),
            UnpackError::TooLarge { limit: 50 }
        ));
    }
}
