//! A box's root filesystem: the image's read-only layers under an overlay, with an upper and a
//! work directory of the box's own; a full copy where overlayfs is unavailable.
//!
//! Preparing one creates two empty directories, whatever the image's size, and describes them
//! as [`Layers`] (the one description of a box's root directories, `crate::plan::box_rootfs`).
//! The executor mounts the overlay inside the box's user and mount namespaces.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use super::store::{Image, Store};
use super::ImageError;
use crate::plan::box_rootfs::{Layers, UpperDirs};
use crate::sys::idmap::{IdMaps, IdRange};
use crate::sys::userns;

/// The `-o` data for `mount -t overlay` (with `userxattr`, as every box's overlay is mounted
/// in a user namespace): `lower` bottom first, as [`Layers`] lists them.
fn overlay_options(lower: &[PathBuf], upper: &Path, work: &Path) -> String {
    let lower: Vec<String> = lower.iter().rev().map(|p| escape_overlay_path(p)).collect();
    format!(
        "lowerdir={},upperdir={},workdir={},userxattr",
        lower.join(":"),
        escape_overlay_path(upper),
        escape_overlay_path(work)
    )
}

/// overlayfs splits its options on `,` and lower dirs on `:`; both are escaped with `\`.
fn escape_overlay_path(p: &Path) -> String {
    let s = p.to_string_lossy();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, ',' | ':' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Set to 1 to take the copy fallback even where overlayfs works (debugging, tests).
pub const NO_OVERLAY_ENV: &str = "FOXBOX_NO_OVERLAY";

/// Whether overlayfs can be mounted here the way boxes mount it (inside a user namespace for an
/// unprivileged user). Tried once per process, for real: a child makes a private mount
/// namespace, mounts an overlay of two scratch directories under `scratch` (a directory on the
/// filesystem that will hold upper dirs, e.g. `<root>/boxes`), and checks it. `Err` says why
/// not; `check --host` can show it. Forks: call while single-threaded.
pub fn overlay_supported(maps: &IdMaps, scratch: &Path) -> Result<(), String> {
    if std::env::var_os(NO_OVERLAY_ENV).is_some_and(|v| v == "1") {
        return Err(format!("{NO_OVERLAY_ENV}=1"));
    }
    static CACHE: OnceLock<Result<(), String>> = OnceLock::new();
    CACHE.get_or_init(|| probe_overlay(maps, scratch)).clone()
}

/// The file in the store's image directory that records a successful overlay probe.
const OVERLAY_STAMP: &str = "overlay-ok";

/// What a successful probe was valid for: the running kernel and the id maps boxes get.
fn overlay_stamp_key(maps: &IdMaps) -> Option<String> {
    let uts = nix::sys::utsname::uname().ok()?;
    let maps = serde_json::to_string(maps).ok()?;
    Some(format!(
        "kernel {}\nmaps {maps}\n",
        uts.release().to_string_lossy()
    ))
}

fn probe_overlay(maps: &IdMaps, scratch: &Path) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("overlay-probe-")
        .tempdir_in(scratch)
        .map_err(|e| {
            format!(
                "cannot create a scratch directory in {}: {e}",
                scratch.display()
            )
        })?;
    for d in ["lower", "upper", "work", "merged"] {
        fs::create_dir(dir.path().join(d)).map_err(|e| format!("cannot create {d}: {e}"))?;
    }
    fs::write(dir.path().join("lower/probe"), b"lower")
        .map_err(|e| format!("cannot write the probe file: {e}"))?;
    let root = dir.path().to_path_buf();
    // As boxes mount it: inside a user namespace, with userxattr, for every user.
    let result = userns::run_in_child_as_root(maps, move || -> Result<(), String> {
        use nix::mount::{mount, MsFlags};
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
            .map_err(|e| format!("cannot create a mount namespace: {e}"))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| format!("cannot make mounts private: {e}"))?;
        let opts = overlay_options(
            &[root.join("lower")],
            &root.join("upper"),
            &root.join("work"),
        );
        let merged = root.join("merged");
        mount(
            Some("overlay"),
            &merged,
            Some("overlay"),
            MsFlags::empty(),
            Some(opts.as_str()),
        )
        .map_err(|e| format!("mount -t overlay failed: {e}"))?;
        fs::write(merged.join("probe2"), b"upper")
            .map_err(|e| format!("cannot write through the overlay: {e}"))?;
        let seen = fs::read(merged.join("probe"))
            .map_err(|e| format!("cannot read through the overlay: {e}"))?;
        let _ = nix::mount::umount2(&merged, nix::mount::MntFlags::MNT_DETACH);
        if seen != b"lower" {
            return Err("the overlay does not show its lower layer".into());
        }
        Ok(())
    });
    let result = result.map_err(|e| e.to_string());
    // The child's files (work/work, upper/probe2) belong to the namespace's root: remove them
    // there, or a plain delete cannot.
    let p = dir.keep();
    let _ = userns::run_as_root(maps, move || {
        super::inroot::remove_tree(&p).map_err(|e| e.to_string())
    });
    result
}

impl Store {
    /// Make `box_dir/rootfs/{upper,work}` for a box of `image` and say how to mount it (an
    /// overlay of the image's layers with that upper, not volatile). The cost does not depend
    /// on the image's size: nothing of the image is copied, unless overlayfs is unavailable
    /// here (then the layers are copied into `upper`, with a warning, and it is the root).
    pub fn prepare_box_rootfs(&self, image: &Image, box_dir: &Path) -> Result<Layers, ImageError> {
        let base = box_dir.join("rootfs");
        let upper = base.join("upper");
        let work = base.join("work");
        let mut b = fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        b.create(&base).map_err(|source| ImageError::Io {
            what: "cannot create",
            path: base.clone(),
            source,
        })?;
        match self.overlay_usable(&base) {
            Ok(()) => {
                for d in [&upper, &work] {
                    b.create(d).map_err(|source| ImageError::Io {
                        what: "cannot create",
                        path: d.clone(),
                        source,
                    })?;
                }
                // The overlay's root takes the upper dir's mode and owner: give it the image's.
                if let Some(top) = image.layers.last() {
                    copy_root_attrs(top, &upper);
                }
                Ok(Layers::Overlay {
                    lower: image.layers.clone(),
                    upper: Some(UpperDirs {
                        upper,
                        work,
                        volatile: false,
                    }),
                })
            }
            Err(why) => {
                tracing::warn!("overlayfs is unavailable ({why}): copying the image for this box");
                let layers = image.layers.clone();
                let dest = upper.clone();
                self.with_root(move || copy_layers(&layers, &dest))?;
                Ok(Layers::Dir(upper))
            }
        }
    }

    /// The root of a box whose ids are not the store's (podman's `keep-id`): a copy of the
    /// image in `box_dir/rootfs/upper` with every owner moved by `moves` (box id to the id
    /// that keeps it in the box's maps: a uid's in `.0`, a gid's in `.1`; an id no move takes
    /// stays), then `etc` lines added (each to its /etc file, unless a line there has its
    /// name or id). Podman makes the same moved copy for such a box; it costs the image's
    /// size, once per box, and goes with the box.
    pub fn prepare_moved_rootfs(
        &self,
        image: &Image,
        box_dir: &Path,
        moves: &(Vec<IdRange>, Vec<IdRange>),
        etc: &[EtcEntry],
    ) -> Result<Layers, ImageError> {
        let base = box_dir.join("rootfs");
        let upper = base.join("upper");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&base)
            .map_err(|source| ImageError::Io {
                what: "cannot create",
                path: base.clone(),
                source,
            })?;
        let layers = image.layers.clone();
        let dest = upper.clone();
        let moves = moves.clone();
        let etc = etc.to_vec();
        self.with_root(move || {
            copy_layers(&layers, &dest)?;
            move_owners(&dest, &moves).map_err(|e| format!("cannot move the owners: {e}"))?;
            add_etc_entries(&dest, &etc).map_err(|e| format!("cannot add to /etc: {e}"))
        })?;
        Ok(Layers::Dir(upper))
    }

    /// [`overlay_supported`], remembered in the store once it said yes: without this every box
    /// start paid for the probe (a forked child in a new user namespace, newuidmap/newgidmap
    /// when rootless, an overlay mount and its removal: tens of milliseconds). The stamp names
    /// the kernel release and the id maps it was made for, so a new kernel or a new
    /// subordinate range probes again; a failure is not kept, so a host that gains overlay
    /// support uses it at the next start.
    fn overlay_usable(&self, scratch: &Path) -> Result<(), String> {
        if std::env::var_os(NO_OVERLAY_ENV).is_some_and(|v| v == "1") {
            return Err(format!("{NO_OVERLAY_ENV}=1"));
        }
        let stamp = self.dir().join(OVERLAY_STAMP);
        let key = overlay_stamp_key(self.id_maps());
        if key.is_some() && fs::read_to_string(&stamp).ok() == key {
            return Ok(());
        }
        overlay_supported(self.id_maps(), scratch)?;
        if let Some(key) = key {
            // Best effort: a store that cannot keep the stamp just probes again next time. A
            // temporary file a kill leaves is swept with the index's.
            let _ = crate::store::atomic::write_file(&stamp, key.as_bytes());
        }
        Ok(())
    }

    /// A plain copy of `image`'s root filesystem at `dest` (made here; it must not exist),
    /// owners kept as the store holds them: an OCI bundle's `rootfs` (`foxbox export`).
    pub fn copy_rootfs(&self, image: &Image, dest: &Path) -> Result<(), ImageError> {
        let layers = image.layers.clone();
        let dest = dest.to_path_buf();
        self.with_root(move || copy_layers(&layers, &dest))
    }

    /// Remove what [`Store::prepare_box_rootfs`] made (the box's upper dir holds files owned by
    /// the box's ids: this runs as root of the store's user namespace).
    pub fn remove_box_rootfs(&self, box_dir: &Path) -> Result<(), ImageError> {
        self.remove_tree(&box_dir.join("rootfs"))
    }

    fn with_root<F>(&self, f: F) -> Result<(), ImageError>
    where
        F: FnOnce() -> Result<(), String>,
    {
        userns::run_as_root(self.id_maps(), f).map_err(ImageError::from)
    }
}

fn copy_root_attrs(from: &Path, to: &Path) {
    if let Ok(m) = fs::metadata(from) {
        let _ = fs::set_permissions(to, fs::Permissions::from_mode(m.mode() & 0o7777));
        if nix::unistd::geteuid().is_root() {
            let _ = std::os::unix::fs::chown(to, Some(m.uid()), Some(m.gid()));
        }
    }
}

/// Copy the layers bottom first into `dest`, keeping owners, modes, symlinks and hard links;
/// overlay whiteouts and opaque directories in a layer remove what lies below, as the overlay
/// would show it.
fn copy_layers(layers: &[PathBuf], dest: &Path) -> Result<(), String> {
    fs::create_dir_all(dest).map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
    for layer in layers {
        let mut links = std::collections::HashMap::new();
        copy_tree(layer, dest, &mut links)
            .map_err(|e| format!("cannot copy {}: {e}", layer.display()))?;
    }
    Ok(())
}

fn copy_tree(
    src: &Path,
    dst: &Path,
    links: &mut std::collections::HashMap<(u64, u64), PathBuf>,
) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    copy_meta(&meta, dst)?;
    let mut stack = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((s, d)) = stack.pop() {
        for e in fs::read_dir(&s)? {
            let e = e?;
            let sp = e.path();
            let dp = d.join(e.file_name());
            let m = fs::symlink_metadata(&sp)?;
            let ft = m.file_type();
            // An overlay whiteout: what the layers below put here goes.
            if std::os::unix::fs::FileTypeExt::is_char_device(&ft) && m.rdev() == 0 {
                match fs::symlink_metadata(&dp) {
                    Ok(x) if x.is_dir() => fs::remove_dir_all(&dp)?,
                    Ok(_) => fs::remove_file(&dp)?,
                    Err(_) => {}
                }
                continue;
            }
            if ft.is_dir() {
                // An opaque directory hides everything below it.
                if super::xattr::is_opaque(&sp)
                    && fs::symlink_metadata(&dp).is_ok_and(|x| x.is_dir())
                {
                    fs::remove_dir_all(&dp)?;
                }
                match fs::symlink_metadata(&dp) {
                    Ok(x) if x.is_dir() => {}
                    Ok(_) => {
                        fs::remove_file(&dp)?;
                        fs::create_dir(&dp)?;
                    }
                    Err(_) => fs::create_dir(&dp)?,
                }
                copy_meta(&m, &dp)?;
                stack.push((sp, dp));
                continue;
            }
            if let Ok(x) = fs::symlink_metadata(&dp) {
                if x.is_dir() {
                    fs::remove_dir_all(&dp)?;
                } else {
                    fs::remove_file(&dp)?;
                }
            }
            if m.nlink() > 1 {
                if let Some(first) = links.get(&(m.dev(), m.ino())) {
                    fs::hard_link(first, &dp)?;
                    continue;
                }
                links.insert((m.dev(), m.ino()), dp.clone());
            }
            if ft.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&sp)?, &dp)?;
                let _ = std::os::unix::fs::lchown(&dp, Some(m.uid()), Some(m.gid()));
            } else if ft.is_file() {
                fs::copy(&sp, &dp)?;
                copy_meta(&m, &dp)?;
            }
            // Whiteouts, fifos: nothing for a box to read; a whiteout's target is already gone.
        }
    }
    Ok(())
}

fn copy_meta(m: &fs::Metadata, dst: &Path) -> io::Result<()> {
    let _ = std::os::unix::fs::chown(dst, Some(m.uid()), Some(m.gid()));
    fs::set_permissions(dst, fs::Permissions::from_mode(m.mode() & 0o7777))
}

/// A line for a box's /etc/passwd or /etc/group ([`Store::prepare_moved_rootfs`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcEntry {
    /// `passwd` or `group`.
    pub file: &'static str,
    pub name: String,
    pub id: u32,
    /// The whole line, without its newline.
    pub line: String,
}

/// Move every owner under `root` (not following symlinks; a hard-linked file once).
fn move_owners(root: &Path, moves: &(Vec<IdRange>, Vec<IdRange>)) -> io::Result<()> {
    let to = |ranges: &[IdRange], id: u32| {
        ranges.iter().find_map(|r| {
            let off = id.checked_sub(r.inside)?;
            (off < r.count).then(|| r.outside + off)
        })
    };
    let mut seen = std::collections::HashSet::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(p) = todo.pop() {
        let m = fs::symlink_metadata(&p)?;
        if m.is_dir() {
            for e in fs::read_dir(&p)? {
                todo.push(e?.path());
            }
        }
        if m.nlink() > 1 && !m.is_dir() && !seen.insert((m.dev(), m.ino())) {
            continue;
        }
        let (uid, gid) = (to(&moves.0, m.uid()), to(&moves.1, m.gid()));
        if (uid, gid) == (Some(m.uid()), Some(m.gid())) || (uid.is_none() && gid.is_none()) {
            continue;
        }
        std::os::unix::fs::lchown(&p, uid, gid)?;
        // A chown clears the set-id bits: give them back.
        if !m.file_type().is_symlink() && m.mode() & 0o6000 != 0 {
            fs::set_permissions(&p, fs::Permissions::from_mode(m.mode() & 0o7777))?;
        }
    }
    Ok(())
}

/// Append each entry to its file under `root/etc` unless a line there has its name or id.
fn add_etc_entries(root: &Path, entries: &[EtcEntry]) -> io::Result<()> {
    use std::io::Write;
    for e in entries {
        let path = root.join("etc").join(e.file);
        // Only a regular file: a symlink in the image could lead anywhere.
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {}
            _ => continue,
        }
        let text = fs::read_to_string(&path)?;
        let id = e.id.to_string();
        let known = text.lines().any(|l| {
            let f: Vec<&str> = l.split(':').collect();
            f.first() == Some(&e.name.as_str()) || f.get(2) == Some(&id.as_str())
        });
        if known {
            continue;
        }
        let mut f = fs::OpenOptions::new().append(true).open(&path)?;
        let sep = if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        writeln!(f, "{sep}{}", e.line)?;
    }
    Ok(())
}

/// Whether the image has a `/bin/sh` (or, merged-usr, `/usr/bin/sh`) in some layer: the
/// command a box runs when neither the spec nor the image names one, as the original tool did.
/// Each layer is looked at confined to itself (a symlink never leads out of it), top first.
pub fn has_shell(image: &Image) -> bool {
    use super::inroot::{kind_at, Root};
    image.layers.iter().rev().any(|layer| {
        let Ok(root) = Root::open(layer) else {
            return false;
        };
        [&[b"bin".as_slice()][..], &[b"usr", b"bin"]]
            .iter()
            .any(|dir| {
                root.open_dir(dir).ok().is_some_and(|d| {
                    matches!(kind_at(std::os::fd::AsFd::as_fd(&d), b"sh"), Ok(Some(_)))
                })
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_escape_and_order() {
        assert_eq!(
            overlay_options(
                &["/s/l:1".into(), "/s/l2".into()],
                Path::new("/b/u,x"),
                Path::new("/b/w")
            ),
            "lowerdir=/s/l2:/s/l\\:1,upperdir=/b/u\\,x,workdir=/b/w,userxattr"
        );
    }
}
