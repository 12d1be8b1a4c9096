//! Removing a box and everything it holds: cgroup, rootfs upper dir (owned by the box's ids,
//! so deleted from inside its user namespace), image and volume use markers, runtime files and
//! the record itself.
//!
//! A removal has two halves. What others can see goes at once: the box's claims on images and
//! volumes, its name, and its record, renamed away in one step (`Boxes::retire`). Deleting
//! the files left in that trash comes second; for `run --rm` a [`Reaper`] does it once the
//! caller has gone, so the caller need not wait for the disk. Trash whose deleter died is
//! swept later.

use std::os::fd::{AsRawFd, IntoRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::boxes::exits::Exits;
use crate::boxes::{BoxEntry, BoxError, Boxes};
use crate::image::Store;
use crate::store::paths::Paths;
use crate::sys::process as p;
use crate::volume::Volumes;

/// Remove a box that no longer runs, and wait until its files are deleted.
pub fn remove(paths: &Paths, boxes: &Boxes, entry: &BoxEntry) -> Result<(), BoxError> {
    let trash = retire(paths, boxes, entry, std::process::id())?;
    delete_trash(paths, &trash);
    Ok(())
}

/// Remove a box that no longer runs as `run --rm` does: gone for everyone when this returns;
/// its files are deleted by this process's [`Reaper`] once it exits, or here if it has none.
pub fn remove_on_exit(paths: &Paths, boxes: &Boxes, entry: &BoxEntry) -> Result<(), BoxError> {
    // With a reaper, the trash is named after it from the start: were it named after this
    // process, it would look abandoned (and `system check` report it) between this process's
    // exit and the reaper's taking it over.
    let owner = REAPER.get().copied().unwrap_or_else(std::process::id);
    let trash = retire(paths, boxes, entry, owner)?;
    if REAPER.get().is_none() {
        delete_trash(paths, &trash);
    }
    Ok(())
}

/// This process's end of its reaper's pipe: never closed, so that the reaper wakes exactly
/// when this process is gone, however it ends.
static CALLER_END: OnceLock<RawFd> = OnceLock::new();

/// This process's reaper, once forked.
static REAPER: OnceLock<u32> = OnceLock::new();

/// Keep the exit code of a box removed on exit for a `wait` from elsewhere that asked for it
/// ([`Exits`]). With a reaper, the code goes down its pipe and the reaper looks once this
/// process is gone: nothing is looked up or written while the caller of `run --rm` waits.
pub fn keep_exit_code(paths: &Paths, id: &str, code: i32) {
    if let Some(&fd) = CALLER_END.get() {
        // `fd` is this process's end of the reaper's pipe, never closed (above). A pipe takes
        // writes this small whole.
        if matches!(crate::sys::fd::write_raw(fd, &code.to_le_bytes()), Ok(4)) {
            return;
        }
    }
    let exits = Exits::new(&paths.runtime);
    if exits.wanted(id) {
        let _ = exits.record(id, code);
    }
}

/// A process forked once a `--rm` box's fox runs, that outlives its caller (the CLI). Once the
/// caller is gone it deletes the box's trash ([`remove_on_exit`]), or, if the caller died
/// before removing the box, removes the whole box once nothing of it runs. Forked while the
/// fox runs, it takes the fork and the deletion off the box's exit.
pub struct Reaper;

impl Reaper {
    /// Fork the reaper for box `id` (at most one per process). The caller must be
    /// single-threaded.
    pub fn spawn(paths: &Paths, boxes: &Boxes, id: &str) -> bool {
        if CALLER_END.get().is_some() {
            return false;
        }
        let Ok((r, w)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
            return false;
        };
        match p::fork() {
            Ok(Some(pid)) => {
                drop(r);
                let _ = CALLER_END.set(w.into_raw_fd());
                let _ = REAPER.set(pid as u32);
                true
            }
            Ok(None) => {
                drop(w);
                // The fox is starting on the other CPU: take only what is needed now (off
                // the caller's terminal and pipes), and the rest once woken.
                p::lower_priority();
                let _ = nix::unistd::setsid();
                p::stdio_to_null();
                let _ = p::close_fds_from(3, Some(r.as_raw_fd()));
                // Until the caller is gone; it may send the box's exit code first.
                let mut got = Vec::with_capacity(4);
                let mut buf = [0u8; 8];
                loop {
                    match nix::unistd::read(&r, &mut buf) {
                        Ok(0) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(nix::errno::Errno::EINTR) => continue,
                        Err(_) => break,
                    }
                }
                // The caller blocked the signals it relays; the reaper takes them as any
                // process does.
                p::reset_signals();
                let exits = Exits::new(&paths.runtime);
                if let Ok(code) = <[u8; 4]>::try_from(got.as_slice()) {
                    if exits.wanted(id) && exits.record(id, i32::from_le_bytes(code)).is_ok() {
                        exits.sweep_now_and_then();
                    }
                }
                reap(paths, boxes, id);
                p::exit_now(0)
            }
            Err(_) => false,
        }
    }
}

/// How long the reaper waits for a box whose caller died to stop running.
const REAP_PATIENCE: Duration = Duration::from_secs(10);

/// In the reaper, once its caller is gone.
fn reap(paths: &Paths, boxes: &Boxes, id: &str) {
    let mine = boxes.trash_path(std::process::id(), id);
    if mine.exists() {
        delete_trash(paths, &mine);
        sweep_trash(paths, boxes);
        return;
    }
    // The caller died before removing the box (killed, say): its fox dies with it. A box
    // it had not recorded yet is an abandoned staging.
    if matches!(boxes.load(id), Err(BoxError::NotFound(_))) {
        if boxes.reap_abandoned(id) {
            // What it had claimed before it was recorded: its name and use markers.
            boxes.sweep_names();
            if let Ok(store) = Store::open_for_boxes(paths) {
                store.sweep_users();
            }
            // Opening the volume store sweeps its markers.
            let _ = Volumes::open(paths.volumes(), paths.boxes());
        }
        // Whatever only the box's user namespace could delete is left as trash.
        sweep_trash(paths, boxes);
        return;
    }
    let start = Instant::now();
    while let Ok(entry) = boxes.load(id) {
        if !entry.state.is_running() {
            let _ = remove(paths, boxes, &entry);
            return;
        }
        if start.elapsed() > REAP_PATIENCE {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Release everything others can see of the box; returns where its files now lie.
fn retire(paths: &Paths, boxes: &Boxes, entry: &BoxEntry, owner: u32) -> Result<PathBuf, BoxError> {
    let id = &entry.config.id;
    crate::store::fault::point("rm.before-retire");
    if let Ok(Some(cg)) = super::cgroup_record::recorded(entry) {
        let _ = cg.destroy();
    }
    if let Some(image) = &entry.config.image_id {
        if let Ok(store) = Store::open_for_boxes(paths) {
            store.remove_user(image, id);
        }
    }
    if !entry.config.volumes.is_empty() {
        if let Ok(vols) = Volumes::open(paths.volumes(), paths.boxes()) {
            for v in &entry.config.volumes {
                vols.remove_user(v, id);
            }
        }
    }
    let _ = std::fs::remove_dir_all(super::box_run_dir(paths, id));
    let trash = boxes.retire(entry, owner)?;
    crate::store::fault::point("rm.retired");
    Ok(trash)
}

/// The volume store, able to delete what boxes wrote into volumes as any of their ids (as
/// root of the store's user namespace, like a box's own files).
pub fn volumes(paths: &Paths) -> Result<Volumes, crate::volume::VolumeError> {
    let store_paths = paths.clone();
    Volumes::open_with(
        paths.volumes(),
        paths.boxes(),
        Some(Box::new(move |p: &Path| {
            Store::open_for_boxes(&store_paths)
                .and_then(|s| s.remove_tree(p))
                .map_err(|e| e.to_string())
        })),
    )
}

/// Delete a retired box's directory. Most boxes leave only files owned by the caller (the
/// box's root): those go directly, and the store's user namespace is entered only for what
/// that cannot remove.
fn delete_trash(paths: &Paths, trash: &Path) {
    crate::boxes::remove_box_tree(trash);
    if !trash.exists() {
        return;
    }
    if let Ok(store) = Store::open_for_boxes(paths) {
        if let Err(e) = store.remove_tree(trash) {
            tracing::warn!("cannot delete {}: {e}", trash.display());
        }
    }
}

/// Delete trash that earlier removals left (their deleter died, or lacked the namespace).
pub fn sweep_trash(paths: &Paths, boxes: &Boxes) {
    for t in boxes.trash() {
        delete_trash(paths, &t);
    }
}
