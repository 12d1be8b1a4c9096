//! Hand-made archives for the image tests: raw tar headers, so that names the tar crate's
//! builder refuses (`..`, absolute, non-UTF-8, long) can be written as a hostile tool would.
#![allow(dead_code)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::common::Env;

/// One entry to write.
pub struct E {
    pub path: Vec<u8>,
    pub kind: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub link: Vec<u8>,
    pub data: Vec<u8>,
    /// Write the path as a PAX `path` record (instead of a GNU long name when it is long).
    pub pax: bool,
}

impl E {
    fn new(path: impl AsRef<[u8]>, kind: u8) -> E {
        E {
            path: path.as_ref().to_vec(),
            kind,
            mode: if kind == b'5' { 0o755 } else { 0o644 },
            uid: 0,
            gid: 0,
            link: Vec::new(),
            data: Vec::new(),
            pax: false,
        }
    }
    pub fn file(path: impl AsRef<[u8]>, data: impl AsRef<[u8]>) -> E {
        let mut e = E::new(path, b'0');
        e.data = data.as_ref().to_vec();
        e
    }
    pub fn dir(path: impl AsRef<[u8]>) -> E {
        E::new(path, b'5')
    }
    pub fn symlink(path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> E {
        let mut e = E::new(path, b'2');
        e.link = target.as_ref().to_vec();
        e.mode = 0o777;
        e
    }
    pub fn hardlink(path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> E {
        let mut e = E::new(path, b'1');
        e.link = target.as_ref().to_vec();
        e
    }
    pub fn chardev(path: impl AsRef<[u8]>) -> E {
        E::new(path, b'3')
    }
    pub fn blockdev(path: impl AsRef<[u8]>) -> E {
        E::new(path, b'4')
    }
    pub fn fifo(path: impl AsRef<[u8]>) -> E {
        E::new(path, b'6')
    }
    pub fn kind(path: impl AsRef<[u8]>, kind: u8) -> E {
        E::new(path, kind)
    }
    pub fn mode(mut self, mode: u32) -> E {
        self.mode = mode;
        self
    }
    pub fn owner(mut self, uid: u64, gid: u64) -> E {
        self.uid = uid;
        self.gid = gid;
        self
    }
    pub fn pax(mut self) -> E {
        self.pax = true;
        self
    }
}

fn raw_header(name: &[u8], kind: u8, size: u64, e: &E, link: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    {
        let old = h.as_old_mut();
        let n = name.len().min(100);
        old.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(100);
        old.linkname[..l].copy_from_slice(&link[..l]);
    }
    h.set_size(size);
    h.set_mode(e.mode);
    h.set_uid(e.uid);
    h.set_gid(e.gid);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::new(kind));
    if kind == b'3' || kind == b'4' {
        let _ = h.set_device_major(1);
        let _ = h.set_device_minor(3);
    }
    h.set_cksum();
    h
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    // "<len> key=value\n" where len counts itself.
    let body_len = 1 + key.len() + 1 + value.len() + 1;
    let mut len = body_len + 1;
    while len.to_string().len() + body_len != len {
        len = len.to_string().len() + body_len;
    }
    let mut v = format!("{len} {key}=").into_bytes();
    v.extend_from_slice(value);
    v.push(b'\n');
    v
}

/// The bytes of an uncompressed tar with these entries.
pub fn tar(entries: &[E]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let long_name = e.path.len() > 100;
        let long_link = e.link.len() > 100;
        if e.pax && (long_name || long_link) {
            let mut recs = Vec::new();
            if long_name {
                recs.extend(pax_record("path", &e.path));
            }
            if long_link {
                recs.extend(pax_record("linkpath", &e.link));
            }
            let h = raw_header(b"././@PaxHeader", b'x', recs.len() as u64, e, b"");
            b.append(&h, recs.as_slice()).expect("pax");
        } else {
            if long_name {
                let mut n = e.path.clone();
                n.push(0);
                let h = raw_header(b"././@LongLink", b'L', n.len() as u64, e, b"");
                b.append(&h, n.as_slice()).expect("long name");
            }
            if long_link {
                let mut n = e.link.clone();
                n.push(0);
                let h = raw_header(b"././@LongLink", b'K', n.len() as u64, e, b"");
                b.append(&h, n.as_slice()).expect("long link");
            }
        }
        let h = raw_header(&e.path, e.kind, e.data.len() as u64, e, &e.link);
        b.append(&h, e.data.as_slice()).expect("entry");
    }
    b.into_inner().expect("finish tar")
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

/// A place outside every store whose contents must never change: `canary/victim` ("canary"),
/// world-writable so that a write through an escape would succeed as any user.
pub struct Canary {
    pub dir: PathBuf,
}

impl Canary {
    pub fn new(env: &Env) -> Canary {
        use std::os::unix::fs::PermissionsExt;
        let dir = env.dir.join("canary");
        fs::create_dir_all(&dir).expect("canary dir");
        fs::write(dir.join("victim"), b"canary").expect("canary");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).expect("chmod");
        fs::set_permissions(dir.join("victim"), fs::Permissions::from_mode(0o666)).expect("chmod");
        Canary { dir }
    }

    /// The absolute path of the canary dir without its leading `/` (where an absolute path
    /// lands inside a layer).
    pub fn in_layer(&self, layer: &Path) -> PathBuf {
        layer.join(self.dir.strip_prefix("/").expect("absolute"))
    }

    #[track_caller]
    pub fn assert_untouched(&self) {
        let names: Vec<String> = fs::read_dir(&self.dir)
            .expect("read canary dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["victim"], "something appeared in the canary dir");
        let v = self.dir.join("victim");
        let m = fs::symlink_metadata(&v).expect("victim");
        assert!(m.file_type().is_file(), "victim replaced");
        assert_eq!(m.nlink(), 1, "victim got a hard link");
        assert_eq!(fs::read(&v).expect("read victim"), b"canary");
    }
}

/// Everything under a directory (paths, kinds, sizes, and index.json's text), to show a store
/// is exactly as it was.
pub fn snapshot(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let m = fs::symlink_metadata(&p).expect("meta");
            let rel = p.strip_prefix(dir).expect("prefix").display().to_string();
            if rel == "images/.lock" {
                continue;
            }
            if m.is_dir() {
                out.push(format!("{rel}/"));
                stack.push(p);
            } else if rel == "images/index.json" {
                out.push(format!("{rel}: {}", fs::read_to_string(&p).expect("index")));
            } else {
                out.push(format!("{rel} {}", m.len()));
            }
        }
    }
    out.sort();
    out
}

/// Write `bytes` as `name` into the env's work dir (owned by its user) and return the path.
pub fn archive(env: &Env, name: &str, bytes: &[u8]) -> PathBuf {
    env.write(name, bytes)
}

/// Import `file` as `name` and return the unpacked layer's path (asserting success).
#[track_caller]
pub fn import_ok(env: &Env, file: &Path, name: &str) -> (PathBuf, String) {
    let r = env.run([
        "image".as_ref(),
        "import".as_ref(),
        "--name".as_ref(),
        name.as_ref(),
        file.as_os_str(),
    ]);
    r.ok();
    let hex = r.stdout.trim().to_string();
    assert_eq!(hex.len(), 64, "import printed {:?}", r.stdout);
    (
        env.store().join("images/layers").join(&hex),
        r.stderr.clone(),
    )
}
