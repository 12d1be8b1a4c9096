//! Named volumes: directories in the store that outlive the boxes that use them.
//!
//! Layout: `<root>/volumes/<name>/{volume.json,_data/,users/<box id>}`. A volume is created whole
//! in a temporary directory and renamed into place, so a crash never leaves a half-made one and
//! two concurrent creations of one name end with one volume. A box that uses a volume leaves a
//! marker under `users/`; a marker whose box no longer exists does not count.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::atomic::sync_dir;
use crate::store::clock::now_secs as now;

const TMP_PREFIX: &str = ".tmp-";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("invalid volume name {name:?}: {why}")]
    BadName { name: String, why: &'static str },
    #[error("volume {0:?} already exists")]
    Exists(String),
    #[error("no such volume {0:?}")]
    NotFound(String),
    #[error("volume {name:?} is in use by {}", boxes.join(", "))]
    InUse { name: String, boxes: Vec<String> },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("volume {name:?} has unreadable metadata: {source}")]
    Meta {
        name: String,
        source: serde_json::Error,
    },
}

fn io_err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> VolumeError + 'a {
    move |source| VolumeError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// A volume as `volume ls` and `volume inspect` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    /// Seconds since the Unix epoch.
    pub created: u64,
    /// The host directory mounted into boxes.
    #[serde(skip_deserializing)]
    pub mountpoint: PathBuf,
    /// Boxes (ids) that currently use it.
    #[serde(skip_deserializing)]
    pub users: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Meta {
    name: String,
    created: u64,
}

/// The volume store of one foxbox root.
pub struct Volumes {
    dir: PathBuf,
    boxes_dir: PathBuf,
    /// Deletes what a plain delete could not: files a box made as one of its subordinate
    /// ids (see [`Volumes::open_with`]).
    deleter: Option<Deleter>,
}

/// A way to delete a directory tree with more privilege than the caller's own.
pub type Deleter = Box<dyn Fn(&Path) -> Result<(), String>>;

/// podman's rule, the same as for box names (see `boxes::names::validate_name`).
pub fn validate_name(name: &str) -> Result<(), VolumeError> {
    crate::boxes::names::validate_name(name).map_err(|why| VolumeError::BadName {
        name: name.to_string(),
        why,
    })
}

impl Volumes {
    /// `volumes_dir` is `<root>/volumes`; `boxes_dir` is `<root>/boxes`, consulted to tell a
    /// live user from a stale marker.
    pub fn open(volumes_dir: PathBuf, boxes_dir: PathBuf) -> Result<Volumes, VolumeError> {
        Self::open_with(volumes_dir, boxes_dir, None)
    }

    /// [`Volumes::open`] with a `deleter` for what a plain delete leaves: a volume a box
    /// wrote files into as another of its ids cannot be removed without it (rootless).
    pub fn open_with(
        volumes_dir: PathBuf,
        boxes_dir: PathBuf,
        deleter: Option<Deleter>,
    ) -> Result<Volumes, VolumeError> {
        crate::store::private::create_dir(&volumes_dir)
            .map_err(io_err("cannot create", &volumes_dir))?;
        let v = Volumes {
            dir: volumes_dir,
            boxes_dir,
            deleter,
        };
        v.clean_leftovers();
        Ok(v)
    }

    /// Open for reading only (`volume ls`, `inspect`): nothing is created or swept, so a
    /// read-only store lists; a store without volumes lists none.
    pub fn open_read(volumes_dir: PathBuf, boxes_dir: PathBuf) -> Volumes {
        Volumes {
            dir: volumes_dir,
            boxes_dir,
            deleter: None,
        }
    }

    /// [`Volumes::open`] without its sweep, to look at the store as it is (`system check`).
    pub fn open_unswept(volumes_dir: PathBuf, boxes_dir: PathBuf) -> Volumes {
        Volumes {
            dir: volumes_dir,
            boxes_dir,
            deleter: None,
        }
    }

    /// Delete a directory tree: plainly, then with the deleter for what is left.
    fn delete(&self, p: &Path) -> Result<(), VolumeError> {
        let plain = fs::remove_dir_all(p);
        match (&self.deleter, plain) {
            (_, Ok(())) => Ok(()),
            (Some(d), Err(e)) if p.exists() => d(p).map_err(|m| VolumeError::Io {
                what: "cannot delete",
                path: p.to_path_buf(),
                source: io::Error::other(format!("{e}; {m}")),
            }),
            (_, Err(e)) => Err(io_err("cannot delete", p)(e)),
        }
    }

    /// What is wrong with the volume store: leftovers of interrupted creations and removals,
    /// and use markers of boxes that do not exist.
    pub fn check(&self) -> Vec<crate::store::check::Finding> {
        use crate::store::check::Finding;
        let mut out: Vec<Finding> = self
            .leftovers()
            .into_iter()
            .map(|p| {
                Finding::new(
                    "volume-leftover",
                    p,
                    "left by a volume creation or removal that was interrupted",
                )
            })
            .collect();
        out.extend(self.stale_users().into_iter().map(|p| {
            Finding::new(
                "volume-user-orphan",
                p,
                "marks a volume as used by a box that does not exist",
            )
        }));
        out
    }

    /// Remove what [`Volumes::check`] finds.
    pub fn repair(&self) {
        self.clean_leftovers();
    }

    /// Use markers whose box directory is gone.
    fn stale_users(&self) -> Vec<PathBuf> {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .flat_map(|e| crate::store::check::gone_boxes(&e.path().join("users"), &self.boxes_dir))
            .collect()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Remove temporary directories of creations that were interrupted, and use markers of
    /// boxes that do not exist (a box's directory outlives its markers: such a marker was left
    /// by a start that was killed).
    fn clean_leftovers(&self) {
        for p in self.leftovers() {
            let _ = self.delete(&p);
        }
        for p in self.stale_users() {
            let _ = fs::remove_file(p);
        }
    }

    /// Temporary directories of creations and removals whose process is gone.
    fn leftovers(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return out;
        };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(pid) = name
                .strip_prefix(TMP_PREFIX)
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            // A creation still under way in a live process keeps its directory.
            if pid != std::process::id() as i32 && !Path::new(&format!("/proc/{pid}")).exists() {
                out.push(e.path());
            }
        }
        out
    }

    /// Create a volume; an error when it exists.
    pub fn create(&self, name: &str) -> Result<Volume, VolumeError> {
        validate_name(name)?;
        let dst = self.path(name);
        if dst.exists() {
            return Err(VolumeError::Exists(name.to_string()));
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{TMP_PREFIX}{}-", std::process::id()))
            .tempdir_in(&self.dir)
            .map_err(io_err("cannot create a temporary directory in", &self.dir))?;
        let data = tmp.path().join("_data");
        fs::create_dir(&data).map_err(io_err("cannot create", &data))?;
        fs::create_dir(tmp.path().join("users")).map_err(io_err("cannot create", tmp.path()))?;
        let meta = Meta {
            name: name.to_string(),
            created: now(),
        };
        write_json(&tmp.path().join("volume.json"), &meta)?;
        let tmp_path = tmp.keep();
        match fs::rename(&tmp_path, &dst) {
            Ok(()) => {
                sync_dir(&self.dir);
                self.get(name)
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&tmp_path);
                if dst.exists() {
                    Err(VolumeError::Exists(name.to_string()))
                } else {
                    Err(io_err("cannot rename into", &dst)(e))
                }
            }
        }
    }

    /// The volume, created when missing (first use by a box).
    pub fn ensure(&self, name: &str) -> Result<Volume, VolumeError> {
        match self.create(name) {
            Err(VolumeError::Exists(_)) => self.get(name),
            other => other,
        }
    }

    pub fn get(&self, name: &str) -> Result<Volume, VolumeError> {
        validate_name(name)?;
        let dir = self.path(name);
        let meta_path = dir.join("volume.json");
        let text = match fs::read(&meta_path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(VolumeError::NotFound(name.to_string()))
            }
            Err(e) => return Err(io_err("cannot read", &meta_path)(e)),
        };
        let meta: Meta = serde_json::from_slice(&text).map_err(|source| VolumeError::Meta {
            name: name.to_string(),
            source,
        })?;
        Ok(Volume {
            name: meta.name,
            created: meta.created,
            mountpoint: dir.join("_data"),
            users: self.users(name),
        })
    }

    /// Every volume, sorted by name.
    pub fn list(&self) -> Result<Vec<Volume>, VolumeError> {
        let mut out = Vec::new();
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io_err("cannot read", &self.dir)(e)),
        };
        for e in entries.flatten() {
            let Some(name) = e.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            match self.get(&name) {
                Ok(v) => out.push(v),
                Err(VolumeError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Boxes that use the volume and still exist.
    pub fn users(&self, name: &str) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.path(name).join("users")) else {
            return Vec::new();
        };
        let mut v: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|id| self.boxes_dir.join(id).exists())
            .collect();
        v.sort();
        v
    }

    /// Record that box `box_id` uses the volume.
    pub fn add_user(&self, name: &str, box_id: &str) -> Result<(), VolumeError> {
        let p = self.path(name).join("users").join(box_id);
        fs::write(&p, b"").map_err(io_err("cannot write", &p))
    }

    pub fn remove_user(&self, name: &str, box_id: &str) {
        let _ = fs::remove_file(self.path(name).join("users").join(box_id));
    }

    /// Remove a volume and its data; refused while a box uses it unless `force`.
    pub fn remove(&self, name: &str, force: bool) -> Result<(), VolumeError> {
        let v = self.get(name)?;
        if !v.users.is_empty() && !force {
            return Err(VolumeError::InUse {
                name: name.to_string(),
                boxes: v.users,
            });
        }
        // Rename first so the volume vanishes at once and a failed delete leaves only a
        // leftover that the next open sweeps, never a half-deleted volume under its name.
        let dir = self.path(name);
        let doomed = self
            .dir
            .join(format!("{TMP_PREFIX}{}-rm-{name}", std::process::id()));
        fs::rename(&dir, &doomed).map_err(io_err("cannot remove", &dir))?;
        sync_dir(&self.dir);
        crate::store::fault::point("volume-rm.renamed");
        self.delete(&doomed)
    }

    /// Remove every volume no box uses; returns their names.
    pub fn prune(&self) -> Result<Vec<String>, VolumeError> {
        let mut removed = Vec::new();
        for v in self.list()? {
            if v.users.is_empty() {
                self.remove(&v.name, false)?;
                removed.push(v.name);
            }
        }
        Ok(removed)
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), VolumeError> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::store::private::FILE_MODE)
        .open(path)
        .map_err(io_err("cannot create", path))?;
    let text =
        serde_json::to_vec_pretty(value).map_err(|e| io_err("cannot encode", path)(e.into()))?;
    f.write_all(&text)
        .and_then(|_| f.sync_all())
        .map_err(io_err("cannot write", path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Volumes) {
        let t = tempfile::tempdir().unwrap();
        let v = Volumes::open(t.path().join("volumes"), t.path().join("boxes")).unwrap();
        (t, v)
    }

    #[test]
    fn names_follow_podmans_rule() {
        assert!(validate_name("data-1.x_y").is_ok());
        for bad in ["", "-x", ".x", "a/b", "a b", "..", "a:b"] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn create_get_list_remove() {
        let (_t, v) = store();
        let a = v.create("a").unwrap();
        assert!(a.mountpoint.is_dir());
        assert!(matches!(v.create("a"), Err(VolumeError::Exists(_))));
        v.ensure("b").unwrap();
        v.ensure("b").unwrap();
        let names: Vec<_> = v.list().unwrap().into_iter().map(|x| x.name).collect();
        assert_eq!(names, ["a", "b"]);
        v.remove("a", false).unwrap();
        assert!(matches!(v.get("a"), Err(VolumeError::NotFound(_))));
        assert!(matches!(
            v.remove("a", false),
            Err(VolumeError::NotFound(_))
        ));
    }

    #[test]
    fn in_use_only_while_the_box_exists() {
        let (t, v) = store();
        v.create("data").unwrap();
        v.add_user("data", "box1").unwrap();
        assert!(v.users("data").is_empty(), "a marker without a box counts");
        fs::create_dir_all(t.path().join("boxes/box1")).unwrap();
        assert_eq!(v.users("data"), ["box1"]);
        assert!(matches!(
            v.remove("data", false),
            Err(VolumeError::InUse { .. })
        ));
        assert!(v.prune().unwrap().is_empty());
        v.remove_user("data", "box1");
        assert_eq!(v.prune().unwrap(), ["data"]);
    }

    #[test]
    fn leftovers_of_dead_creations_are_swept() {
        let (t, _v) = store();
        let stale = t.path().join("volumes/.tmp-999999999-abc");
        fs::create_dir_all(stale.join("_data")).unwrap();
        let v = Volumes::open(t.path().join("volumes"), t.path().join("boxes")).unwrap();
        assert!(!stale.exists());
        assert!(v.list().unwrap().is_empty());
    }
}
