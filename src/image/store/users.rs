//! Which boxes use an image (an image in use is not removed), and deleting trees as root of
//! the store's user namespace.

use super::{hex_of, io_err, Store};
use crate::image::{inroot, ImageError};
use crate::store::lock::{Lock, Mode};
use std::fs;
use std::path::Path;

impl Store {
    /// Record that box `box_id` uses image `image_id` (`image rm` refuses it then), and
    /// confirm that the image is still stored.
    ///
    /// The image was resolved before this record existed, so an `image rm` may have read the
    /// users in between and be removing it. `remove` holds the exclusive lock from reading the
    /// users until its layers are gone: under the shared lock, the image is either still in the
    /// index (and any later `image rm` sees this box), or gone, and the box must not start.
    pub fn add_user(&self, image_id: &str, box_id: &str) -> Result<(), ImageError> {
        let dir = self.users_dir().join(hex_of(image_id));
        fs::create_dir_all(&dir).map_err(io_err("cannot create", &dir))?;
        let p = dir.join(box_id);
        fs::write(&p, b"").map_err(io_err("cannot write", &p))?;
        let still_there = Lock::acquire(&self.lock_path(), Mode::Shared)
            .map_err(ImageError::Lock)
            .and_then(|_shared| self.read_index())
            .map(|index| index.images.iter().any(|i| i.id == image_id));
        match still_there {
            Ok(true) => Ok(()),
            Ok(false) => {
                self.remove_user(image_id, box_id);
                Err(ImageError::RemovedWhileStarting(image_id.to_string()))
            }
            Err(e) => {
                self.remove_user(image_id, box_id);
                Err(e)
            }
        }
    }

    /// Forget that box `box_id` uses image `image_id`.
    pub fn remove_user(&self, image_id: &str, box_id: &str) {
        // The image's directory stays (until `image rm`) for its next box.
        let _ = fs::remove_file(self.users_dir().join(hex_of(image_id)).join(box_id));
    }

    /// Boxes that use the image and still exist (`<root>/boxes/<id>`).
    pub fn users(&self, image_id: &str) -> Vec<String> {
        let Ok(entries) = fs::read_dir(self.users_dir().join(hex_of(image_id))) else {
            return Vec::new();
        };
        let mut v: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|id| self.boxes.join(id).exists())
            .collect();
        v.sort();
        v
    }

    /// Remove a directory tree written by a box or the store (owned by the box's ids), as root
    /// of the store's user namespace.
    pub fn remove_tree(&self, path: &Path) -> Result<(), ImageError> {
        if fs::symlink_metadata(path).is_err() {
            return Ok(());
        }
        let p = path.to_path_buf();
        self.as_root(move || -> Result<(), String> {
            inroot::remove_tree(&p).map_err(|e| format!("cannot delete {}: {e}", p.display()))
        })
    }
}
