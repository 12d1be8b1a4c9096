//! Local registries for the registry tests: Debian's `docker-registry` (distribution 2.8) on
//! 127.0.0.1 with random free ports, one plain HTTP, one TLS + Basic (htpasswd, bcrypt), one
//! TLS + Bearer tokens from [`tokenserver`]; a self-signed CA made with openssl; seeded with
//! skopeo from OCI layouts built by [`images`]. Started once per test binary; the registries
//! die with the test process (they are spawned with a parent-death signal from a thread that
//! lives as long as the process).
#![allow(dead_code)]

pub mod images;
pub mod relay;
pub mod tokenserver;

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use images::{tar, Layer, Layout};

pub const USER: &str = "fox";
pub const PASS: &str = "foxpass";

/// Digests the tests check against.
#[derive(Debug, Clone, Default)]
pub struct Seeded {
    pub busybox_manifest: String,
    pub busybox_layer: String,
    pub layered_layers: Vec<String>,
    pub multi_index: String,
    pub multi_amd64: String,
    pub multi_arm64: String,
    pub share_base: String,
    pub share_a_top: String,
    pub share_b_top: String,
    pub corrupt_layer: String,
    pub big_layer: String,
    pub zstd_layer: String,
    pub plain_layer: String,
    /// `withcfg:1`: busybox with Entrypoint, Cmd, Env, WorkingDir and User set.
    pub withcfg_config: String,
    /// `baddiff:1`: a layer whose config names another diff id.
    pub baddiff_layer: String,
}

pub struct Registries {
    pub dir: PathBuf,
    pub plain: u16,
    pub basic: u16,
    pub token: u16,
    pub toksrv: u16,
    /// The CA certificate (PEM) of the TLS registries and the token server.
    pub ca: PathBuf,
    pub seeded: Seeded,
}

impl Registries {
    pub fn plain_host(&self) -> String {
        format!("127.0.0.1:{}", self.plain)
    }
    pub fn basic_host(&self) -> String {
        format!("127.0.0.1:{}", self.basic)
    }
    pub fn token_host(&self) -> String {
        format!("127.0.0.1:{}", self.token)
    }
    /// Where a registry keeps a blob's bytes.
    pub fn blob_file(&self, which: &str, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.join(which).join(format!(
            "storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
            &hex[..2]
        ))
    }
}

/// The registries of this test process, started and seeded on first use.
pub fn registries() -> &'static Registries {
    static R: OnceLock<Registries> = OnceLock::new();
    R.get_or_init(|| {
        let (tx, rx) = mpsc::channel();
        // The registries' parent-death signal fires when the thread that spawned them ends:
        // this one never does.
        std::thread::spawn(move || {
            let (r, _children) = start_and_seed();
            tx.send(r).unwrap();
            loop {
                std::thread::park();
            }
        });
        rx.recv()
            .expect("registry set-up failed (see the panic above)")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn openssl(dir: &Path, args: &[&str]) {
    run(Command::new("openssl").args(args).current_dir(dir));
}

fn make_certs(d: &Path) {
    fs::create_dir_all(d).unwrap();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=foxbox test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    fs::write(
        d.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    );
    let chain = [
        fs::read(d.join("server.crt")).unwrap(),
        fs::read(d.join("ca.crt")).unwrap(),
    ]
    .concat();
    fs::write(d.join("server-chain.crt"), chain).unwrap();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=foxbox token signer",
            "-keyout",
            "token.key",
            "-out",
            "token.crt",
        ],
    );
    // skopeo's --cert-dir takes a directory whose *.crt are CAs.
    fs::create_dir_all(d.join("certdir")).unwrap();
    fs::copy(d.join("ca.crt"), d.join("certdir/ca.crt")).unwrap();
}

fn write_config(dir: &Path, name: &str, port: u16, extra: &str) -> PathBuf {
    let base = dir.join(name);
    fs::create_dir_all(base.join("storage")).unwrap();
    let cfg = format!(
        "version: 0.1\nlog:\n  level: info\n  formatter: text\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: foxbox-test\n{extra}",
        base.join("storage").display()
    );
    let p = base.join("config.yml");
    fs::write(&p, cfg).unwrap();
    p
}

fn spawn_registry(dir: &Path, name: &str, config: &Path) -> Child {
    let log = fs::File::create(dir.join(name).join("log")).unwrap();
    Command::new("setpriv")
        .args(["--pdeathsig", "KILL", "--"])
        .arg(registry_bin())
        .arg("serve")
        .arg(config)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start docker-registry (apt-get install docker-registry)")
}

fn registry_bin() -> PathBuf {
    std::env::var_os("FOXBOX_TEST_REGISTRY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/docker-registry"))
}

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn start_and_seed() -> (Registries, Vec<Child>) {
    // A process's registries die with it; their files are swept by the next run.
    let tmp = std::env::temp_dir();
    if let Ok(entries) = fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let pid = name
                .strip_prefix("foxbox-registries-")
                .and_then(|r| r.split('-').next())
                .and_then(|p| p.parse::<u32>().ok());
            if let Some(pid) = pid {
                if !Path::new(&format!("/proc/{pid}")).exists() {
                    let _ = fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let dir = tempfile::Builder::new()
        .prefix(&format!("foxbox-registries-{}-", std::process::id()))
        .tempdir_in(&tmp)
        .unwrap()
        .keep();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let certs = dir.join("certs");
    make_certs(&certs);
    let hash = bcrypt::hash(PASS, 5).unwrap();
    fs::write(dir.join("htpasswd"), format!("{USER}:{hash}\n")).unwrap();

    let (plain, basic, token) = (free_port(), free_port(), free_port());
    let toksrv = tokenserver::TokenServer::start(
        &certs.join("server-chain.crt"),
        &certs.join("server.key"),
        &certs.join("token.key"),
        "foxreg",
        "foxreg-issuer",
        vec![(USER.into(), PASS.into())],
    );
    let tls = format!(
        "  tls:\n    certificate: {}\n    key: {}\n",
        certs.join("server-chain.crt").display(),
        certs.join("server.key").display()
    );
    let mut children = Vec::new();
    let c = write_config(&dir, "plain", plain, "");
    children.push(spawn_registry(&dir, "plain", &c));
    let c = write_config(
        &dir,
        "basic",
        basic,
        &format!(
            "{tls}auth:\n  htpasswd:\n    realm: foxreg-basic\n    path: {}\n",
            dir.join("htpasswd").display()
        ),
    );
    children.push(spawn_registry(&dir, "basic", &c));
    let c = write_config(
        &dir,
        "token",
        token,
        &format!(
            "{tls}auth:\n  token:\n    realm: https://127.0.0.1:{}/token\n    service: foxreg\n    issuer: foxreg-issuer\n    rootcertbundle: {}\n",
            toksrv.port,
            certs.join("token.crt").display()
        ),
    );
    children.push(spawn_registry(&dir, "token", &c));
    for p in [plain, basic, token] {
        wait_port(p);
    }
    let seeded = seed(&dir, plain, basic, token);
    let r = Registries {
        ca: certs.join("ca.crt"),
        dir,
        plain,
        basic,
        token,
        toksrv: toksrv.port,
        seeded,
    };
    (r, children)
}

fn skopeo(args: &[&str]) {
    run(Command::new("skopeo").args(["copy", "-q"]).args(args));
}

fn seed(dir: &Path, plain: u16, basic: u16, token: u16) -> Seeded {
    let oci = dir.join("oci");
    let mut l = Layout::new(&oci);
    let mut s = Seeded::default();

    let bb = Layer::from_gzip_file(&super::common::busybox_tarball());
    s.busybox_layer = bb.digest();
    let m = l.image("amd64", None, std::slice::from_ref(&bb), &["/bin/sh"]);
    s.busybox_manifest = m.digest.clone();
    l.tag("busybox", &m);

    let l2 = Layer::gzip(&tar(&[
        ("data/", b""),
        ("data/b", b"b from layer2\n"),
        ("data/opq/", b""),
        ("data/opq/z", b"z from layer2\n"),
        ("etc/", b""),
        ("etc/hostname", b"layer2\n"),
        ("etc/removeme", b"removed by layer 3\n"),
    ]));
    let l3 = Layer::gzip(&tar(&[
        ("etc/", b""),
        ("etc/.wh.removeme", b""),
        ("data/opq/", b""),
        ("data/opq/.wh..wh..opq", b""),
        ("data/opq/new", b"new from layer3\n"),
    ]));
    s.layered_layers = vec![bb.digest(), l2.digest(), l3.digest()];
    let m = l.image("amd64", None, &[bb.clone(), l2, l3], &["/bin/sh"]);
    l.tag("layered", &m);

    let arm = Layer::gzip(&tar(&[("etc/", b""), ("etc/arch", b"arm64\n")]));
    let amd = l.image("amd64", None, std::slice::from_ref(&bb), &["/bin/sh"]);
    let armm = l.image("arm64", Some("v8"), &[arm], &["/bin/sh"]);
    s.multi_amd64 = amd.digest.clone();
    s.multi_arm64 = armm.digest.clone();
    let idx = l.index(&[
        (amd, "linux", "amd64", None),
        (armm, "linux", "arm64", Some("v8")),
    ]);
    s.multi_index = idx.digest.clone();
    l.tag("multi", &idx);

    let bb_tar = {
        use std::io::Read;
        let mut t = Vec::new();
        flate2::read::MultiGzDecoder::new(&bb.blob[..])
            .read_to_end(&mut t)
            .unwrap();
        t
    };
    let z = Layer::zstd(&bb_tar);
    s.zstd_layer = z.digest();
    let m = l.image("amd64", None, &[z], &["/bin/sh"]);
    l.tag("zstd", &m);
    let p = Layer::plain(&tar(&[("hello/", b""), ("hello/world", b"uncompressed\n")]));
    s.plain_layer = p.digest();
    let m = l.image("amd64", None, &[p], &["/bin/sh"]);
    l.tag("plain", &m);

    let base_data = images::noise(1 << 20, 7);
    let base = Layer::gzip(&tar(&[("base/", b""), ("base/blob", &base_data)]));
    let a = Layer::gzip(&tar(&[("a", b"A\n")]));
    let b = Layer::gzip(&tar(&[("b", b"B\n")]));
    s.share_base = base.digest();
    s.share_a_top = a.digest();
    s.share_b_top = b.digest();
    let m = l.image("amd64", None, &[base.clone(), a], &["/bin/sh"]);
    l.tag("sharea", &m);
    let m = l.image("amd64", None, &[base, b], &["/bin/sh"]);
    l.tag("shareb", &m);

    let c = Layer::gzip(&tar(&[("c", &images::noise(64 * 1024, 11))]));
    s.corrupt_layer = c.digest();
    let m = l.image("amd64", None, &[c], &["/bin/sh"]);
    l.tag("corrupt", &m);

    let big = Layer::plain(&tar(&[("big", &images::noise(24 << 20, 13))]));
    s.big_layer = big.digest();
    let m = l.image("amd64", None, &[big], &["/bin/sh"]);
    l.tag("big", &m);

    let cfg = serde_json::json!({
        "Entrypoint": ["/bin/echo"],
        "Cmd": ["hello", "world"],
        "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "FOO=bar baz"],
        "WorkingDir": "/tmp",
        "User": "1000:1000",
    });
    let m = l.image_with(
        "amd64",
        None,
        std::slice::from_ref(&bb),
        cfg.clone(),
        std::slice::from_ref(&bb.diff_id),
    );
    s.withcfg_config = l
        .config_blob("amd64", None, cfg, std::slice::from_ref(&bb.diff_id))
        .digest;
    l.tag("withcfg", &m);

    let bd = Layer::gzip(&tar(&[
        ("bad/", b""),
        ("bad/file", b"not what the config says\n"),
    ]));
    s.baddiff_layer = bd.digest();
    let wrong = images::sha256(b"another layer");
    let m = l.image_with(
        "amd64",
        None,
        std::slice::from_ref(&bd),
        serde_json::json!({"Cmd": ["/bin/sh"]}),
        &[wrong],
    );
    l.tag("baddiff", &m);

    let oci_s = oci.display().to_string();
    let src = |name: &str| format!("oci:{oci_s}:{name}");
    let ph = format!("docker://127.0.0.1:{plain}");
    for name in [
        "busybox", "layered", "zstd", "plain", "sharea", "shareb", "corrupt", "big", "withcfg",
        "baddiff",
    ] {
        // As built: skopeo would otherwise compress the uncompressed layers.
        skopeo(&[
            "--preserve-digests",
            "--dest-tls-verify=false",
            &src(name),
            &format!("{ph}/{name}:1"),
        ]);
    }
    skopeo(&[
        "--all",
        "--dest-tls-verify=false",
        &src("multi"),
        &format!("{ph}/multi:1"),
    ]);
    skopeo(&[
        "--format",
        "v2s2",
        "--dest-tls-verify=false",
        &src("busybox"),
        &format!("{ph}/busybox:1-docker"),
    ]);
    let certdir = dir.join("certs/certdir").display().to_string();
    let creds = format!("{USER}:{PASS}");
    let secure = [
        "--dest-cert-dir",
        certdir.as_str(),
        "--dest-creds",
        creds.as_str(),
    ];
    let bh = format!("docker://127.0.0.1:{basic}");
    skopeo(&[&secure[..], &[&src("busybox"), &format!("{bh}/busybox:1")]].concat());
    let th = format!("docker://127.0.0.1:{token}");
    skopeo(&[&secure[..], &[&src("busybox"), &format!("{th}/busybox:1")]].concat());
    skopeo(
        &[
            &secure[..],
            &[&src("layered"), &format!("{th}/private/layered:1")],
        ]
        .concat(),
    );

    // Flip bytes of the corrupt image's layer in the plain registry's storage (same size, so
    // only the digest check can notice).
    let hex = s.corrupt_layer.trim_start_matches("sha256:");
    let f = dir.join(format!(
        "plain/storage/docker/registry/v2/blobs/sha256/{}/{hex}/data",
        &hex[..2]
    ));
    let mut bytes = fs::read(&f).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0xff;
    }
    fs::write(&f, bytes).unwrap();
    s
}

/// Trust the test CA for `port` in an env's certs.d, owned by the env's user.
pub fn trust_ca(env: &super::common::Env, port: u16) {
    let d = env
        .dir
        .join(format!("config/foxbox/certs.d/127.0.0.1:{port}"));
    fs::create_dir_all(&d).unwrap();
    fs::copy(&registries().ca, d.join("ca.crt")).unwrap();
    let (uid, gid) = env.ids();
    run(Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{gid}"))
        .arg(env.dir.join("config")));
}
