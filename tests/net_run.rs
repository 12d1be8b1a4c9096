//! Networking through the real binary: `foxbox run --network ... -p ...` and `foxbox up` with a
//! spec's `[network]`, as root and as the unprivileged user, with the real pasta and slirp4netns.
//!
//! Loopback addresses only. pasta without `allow_host_loopback` routes the gateway address to
//! this machine's real default gateway, so the gateway is probed there only when it is mapped to
//! the host's loopback.
//!
//! Box-side probes busybox cannot do (UDP, abstract unix sockets) are this (statically linked)
//! test binary, staged in a directory bound into the box (see [`Probe`]).

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{busybox_tarball, Env, Run, Who};

// ------------------------------------------------------------------------------------------
// The box-side probe: this binary re-run inside a box with `FOXNET_ROLE` set.

const ROLE: &str = "FOXNET_ROLE";

#[test]
#[ignore = "not a test: the entry point of the box-side probe"]
fn role() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    match role.as_str() {
        "udp-echo" => role_udp_echo(),
        "reach" => role_reach(),
        other => panic!("unknown role {other}"),
    }
    std::io::stdout().flush().unwrap();
    std::process::exit(0);
}

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// Echo UDP datagrams on `FOXNET_PORT` until one says `quit`.
fn role_udp_echo() {
    let port: u16 = var("FOXNET_PORT").parse().unwrap();
    let sock = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    println!("READY");
    std::io::stdout().flush().unwrap();
    let mut buf = [0u8; 512];
    let mut seen: Vec<Vec<u8>> = Vec::new();
    while let Ok((n, from)) = sock.recv_from(&mut buf) {
        if &buf[..n] == b"quit" {
            break;
        }
        if !seen.contains(&buf[..n].to_vec()) {
            println!("GOT {}", String::from_utf8_lossy(&buf[..n]));
            std::io::stdout().flush().unwrap();
            seen.push(buf[..n].to_vec());
        }
        let mut reply = b"echo:".to_vec();
        reply.extend_from_slice(&buf[..n]);
        sock.send_to(&reply, from).unwrap();
    }
}

/// Try each target of `FOXNET_TARGETS` (`tcp:ADDR`, `udp:ADDR`, `abstract:NAME`, `self:tcp`,
/// `ifaces:NAMES`, comma separated) and print `REACH <target> ok|err <why>` for each.
fn role_reach() {
    let token = var("FOXNET_TOKEN");
    for t in var("FOXNET_TARGETS").split(',').filter(|t| !t.is_empty()) {
        let (kind, what) = t.split_once(':').unwrap();
        let r = match kind {
            "tcp" => reach_tcp(what, &token),
            "udp" => reach_udp(what, &token),
            "abstract" => reach_abstract(what, &token),
            "self" => reach_self(&token),
            "ifaces" => only_ifaces(what),
            k => Err(format!("unknown kind {k}")),
        };
        match r {
            Ok(()) => println!("REACH {t} ok"),
            Err(e) => println!("REACH {t} err {e}"),
        }
    }
}

/// Reached: connected and read the host listener's token.
fn reach_tcp(addr: &str, token: &str) -> Result<(), String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
    let mut s =
        TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    read_token(&mut s, token)
}

fn read_token(s: &mut impl Read, token: &str) -> Result<(), String> {
    let mut got = String::new();
    s.read_to_string(&mut got).map_err(|e| e.to_string())?;
    if got.trim() == token {
        Ok(())
    } else {
        Err(format!("read {got:?}"))
    }
}

/// Reached: the host listener answered our datagram with the token.
fn reach_udp(addr: &str, token: &str) -> Result<(), String> {
    let s = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_millis(700)))
        .map_err(|e| e.to_string())?;
    s.send_to(b"hello", addr).map_err(|e| e.to_string())?;
    let mut buf = [0u8; 256];
    let (n, _) = s.recv_from(&mut buf).map_err(|e| e.to_string())?;
    let got = String::from_utf8_lossy(&buf[..n]).to_string();
    if got == token {
        Ok(())
    } else {
        Err(format!("read {got:?}"))
    }
}

/// Reached: a listener on the box's own 127.0.0.1 answered, so `lo` is up and usable.
fn reach_self(token: &str) -> Result<(), String> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = l.local_addr().map_err(|e| e.to_string())?;
    let t = token.to_string();
    let server = std::thread::spawn(move || {
        if let Ok((mut c, _)) = l.accept() {
            let _ = c.write_all(t.as_bytes());
        }
    });
    let r = reach_tcp(&addr.to_string(), token);
    let _ = server.join();
    r
}

/// Reached: the box's interfaces are exactly `names` (`+` separated), each of them up.
fn only_ifaces(names: &str) -> Result<(), String> {
    let mut want: Vec<&str> = names.split('+').collect();
    want.sort_unstable();
    let mut got: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map_err(|e| e.to_string())?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    got.sort_unstable();
    if got != want {
        return Err(format!("interfaces {got:?}"));
    }
    for n in &got {
        let flags = std::fs::read_to_string(format!("/sys/class/net/{n}/flags"))
            .map_err(|e| e.to_string())?;
        let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16)
            .map_err(|e| e.to_string())?;
        if flags & 1 == 0 {
            return Err(format!("{n} is down"));
        }
    }
    Ok(())
}

fn reach_abstract(name: &str, token: &str) -> Result<(), String> {
    let addr =
        std::os::unix::net::SocketAddr::from_abstract_name(name).map_err(|e| e.to_string())?;
    let mut s = UnixStream::connect_addr(&addr).map_err(|e| e.to_string())?;
    read_token(&mut s, token)
}

// ------------------------------------------------------------------------------------------
// The host side.

/// A copy of this test binary, in a directory every test user can read,
/// to be bound into a busybox box at /probe.
struct Probe {
    dir: PathBuf,
}

impl Probe {
    fn get() -> &'static Probe {
        static P: OnceLock<Probe> = OnceLock::new();
        P.get_or_init(|| {
            // One per test process; those of processes that are gone are swept.
            let tmp = std::env::temp_dir();
            for e in std::fs::read_dir(&tmp).unwrap().flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("foxbox-netprobe-") {
                    if !Path::new(&format!("/proc/{pid}")).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
            let dir = tmp.join(format!("foxbox-netprobe-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            // The test binary is statically linked (.cargo/config.toml), so it runs in busybox as is.
            let dst = dir.join("t");
            std::fs::copy(std::env::current_exe().unwrap(), &dst).unwrap();
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
            Probe { dir }
        })
    }

    /// `run` arguments that bind the probe in and run it in `role` with `envs`.
    fn args(&self, role: &str, envs: &[(&str, String)]) -> Vec<String> {
        let mut v = vec![
            "-v".to_string(),
            format!("{}:/probe:ro", self.dir.display()),
        ];
        v.extend(["-e".into(), format!("{ROLE}={role}")]);
        for (k, val) in envs {
            v.extend(["-e".into(), format!("{k}={val}")]);
        }
        v.push(busybox_tarball().display().to_string());
        v.extend(
            [
                "/probe/t",
                "--exact",
                "role",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
                "--quiet",
            ]
            .map(String::from),
        );
        v
    }
}

/// A host port free for both TCP and UDP on 127.0.0.1, never handed out twice by this process.
fn free_port() -> u16 {
    static GIVEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_err() {
            continue;
        }
        let mut given = GIVEN.lock().unwrap();
        if given.get_or_insert_with(HashSet::new).insert(port) {
            return port;
        }
    }
}

fn token() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "fox-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

fn unique_name(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{what}-{}", N.fetch_add(1, Ordering::SeqCst))
}

/// Whether a process is gone (or a zombie: dead, waiting for a reaper that is not us).
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Live pasta/slirp4netns processes whose command line names the box's runtime dir.
fn helpers_of(box_id: &str) -> Vec<u32> {
    let needle = format!("/{}/", &box_id[..12]);
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let prog = args.first().map(|a| a.rsplit('/').next().unwrap_or(a));
        if matches!(prog, Some("pasta") | Some("slirp4netns"))
            && args.iter().any(|a| a.contains(&needle))
            && !dead(pid)
        {
            v.push(pid);
        }
    }
    v
}

fn inspect(env: &Env, name: &str) -> serde_json::Value {
    let r = env.run(["inspect", name]);
    r.ok();
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v[0].clone()
}

/// `inspect` of a box once its state says it runs: the CLI records the start just after the
/// command is exec'd, which can be after the box has printed its first line.
fn inspect_running(env: &Env, name: &str) -> serde_json::Value {
    let mut info = inspect(env, name);
    let running = wait_until(Duration::from_secs(5), || {
        info = inspect(env, name);
        info["State"]["Status"] == "running" && info["State"]["Pid"].is_u64()
    });
    assert!(running, "{:?} {name} does not run: {info}", env.who);
    info
}

/// An attached `foxbox run`/`up` running in the background, its stdout read line by line.
struct Attached {
    child: Child,
    out: BufReader<ChildStdout>,
    what: String,
}

impl Attached {
    fn start(env: &Env, args: &[String]) -> Attached {
        let mut cmd = env.foxbox(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Attached {
            child,
            out,
            what: format!("{:?} {args:?}", env.who),
        }
    }

    /// Read stdout until a line equal to `want`; panics with everything seen (and stderr) if
    /// the box ends first.
    fn expect_line(&mut self, want: &str) {
        let mut seen = String::new();
        loop {
            let mut l = String::new();
            if self.out.read_line(&mut l).unwrap() == 0 {
                let r = self.finish();
                panic!("{}: no line {want:?} in\n{seen}\n{r:?}", self.what);
            }
            if l.trim_end() == want {
                return;
            }
            seen.push_str(&l);
        }
    }

    /// Wait for the CLI to exit and collect the rest of its output.
    fn finish(&mut self) -> Run {
        let mut stdout = String::new();
        let _ = self.out.read_to_string(&mut stdout);
        let mut stderr = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        let st = self.child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        Run {
            code: st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0)),
            stdout,
            stderr,
        }
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// GET / from the host until it answers (the box's httpd may still be starting).
fn http_get(port: u16, limit: Duration) -> Result<String, String> {
    let start = Instant::now();
    let mut last = String::new();
    while start.elapsed() < limit {
        let got = TcpStream::connect(("127.0.0.1", port)).and_then(|mut s| {
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
            let mut body = String::new();
            s.read_to_string(&mut body)?;
            Ok(body)
        });
        match got {
            Ok(b) if b.starts_with("HTTP/1.") => return Ok(b),
            Ok(b) => last = format!("answer {b:?}"),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(last)
}

/// TCP, UDP and abstract-socket listeners on the host's loopback that answer with a token and
/// count who reached them.
struct HostListeners {
    tcp_port: u16,
    udp_port: u16,
    abstract_name: String,
    token: String,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl HostListeners {
    fn new() -> HostListeners {
        let token = token();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let abstract_name = format!("foxbox-netrun-{token}");
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(&abstract_name).unwrap();
        let unix = UnixListener::bind_addr(&addr).unwrap();
        let (tcp_port, udp_port) = (
            tcp.local_addr().unwrap().port(),
            udp.local_addr().unwrap().port(),
        );
        tcp.set_nonblocking(true).unwrap();
        unix.set_nonblocking(true).unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut threads = Vec::new();
        {
            let (token, hits, stop) = (token.clone(), hits.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let mut served = false;
                    if let Ok((mut s, _)) = tcp.accept() {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let _ = s.write_all(token.as_bytes());
                        served = true;
                    }
                    if let Ok((mut s, _)) = unix.accept() {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let _ = s.write_all(token.as_bytes());
                        served = true;
                    }
                    if !served {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }));
        }
        {
            let (token, hits, stop) = (token.clone(), hits.clone(), stop.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                while !stop.load(Ordering::SeqCst) {
                    if let Ok((_, from)) = udp.recv_from(&mut buf) {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let _ = udp.send_to(token.as_bytes(), from);
                    }
                }
            }));
        }
        HostListeners {
            tcp_port,
            udp_port,
            abstract_name,
            token,
            hits,
            stop,
            threads,
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for HostListeners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn spec(env: &Env, mode: &str, ports: &[String], allow: Option<bool>, command: &str) -> PathBuf {
    let ports: Vec<String> = ports.iter().map(|p| format!("  \"{p}\",\n")).collect();
    let allow = allow
        .map(|a| format!("allow_host_loopback = {a}\n"))
        .unwrap_or_default();
    let text = format!(
        "[box]\nimage = \"{}\"\ncommand = [\"sh\", \"-c\", {command:?}]\n\n[network]\nmode = \"{mode}\"\n{allow}ports = [\n{}]\n",
        busybox_tarball().display(),
        ports.concat()
    );
    env.write(&format!("{}.toml", unique_name(mode)), text)
}

const MODES: [&str; 2] = ["pasta", "slirp4netns"];

// ------------------------------------------------------------------------------------------
// The tests.

/// busybox httpd on the box's port 80, published on a free host port through `run -p` and
/// through a spec's `ports` with `up`, fetched from the host; the forward in `ps -a` and
/// `inspect`; a second box asking for the same host port fails with 125 naming the port; the
/// helper is gone once the box has exited, and the port is free again.
#[test]
fn published_httpd_is_fetched_from_the_host_and_the_helper_leaves_with_the_box() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        for (i, mode) in MODES.iter().enumerate() {
            let port = free_port();
            let tok = token();
            let name = unique_name("httpd");
            let script = format!(
                "mkdir -p /www && echo {tok} > /www/index.html && httpd -p 80 -h /www && echo READY && exec sleep 60"
            );
            let publish = format!("127.0.0.1:{port}:80");
            // root runs pasta through `run` and slirp4netns through `up`, the user the reverse.
            let via_up = (i == 1) == (who == Who::Root);
            let args: Vec<String> = if via_up {
                let s = spec(&env, mode, std::slice::from_ref(&publish), None, &script);
                vec![
                    "up".into(),
                    s.display().to_string(),
                    "--name".into(),
                    name.clone(),
                ]
            } else {
                let mut a: Vec<String> =
                    ["run", "--name", &name, "--network", mode, "-p", &publish]
                        .map(String::from)
                        .to_vec();
                a.extend([
                    busybox_tarball().display().to_string(),
                    "sh".into(),
                    "-c".into(),
                    script,
                ]);
                a
            };
            let ctx = format!("{who:?} {mode} via {}", if via_up { "up" } else { "run" });
            let mut bx = Attached::start(&env, &args);
            bx.expect_line("READY");
            let body = http_get(port, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{ctx}: GET 127.0.0.1:{port}: {e}"));
            assert!(body.contains(&tok), "{ctx}: {body}");

            let shown = format!("127.0.0.1:{port}->80/tcp");
            let ps = env.run(["ps", "-a"]);
            ps.ok();
            let row = ps
                .stdout
                .lines()
                .find(|l| l.contains(&name))
                .unwrap_or_default();
            assert!(row.contains(&shown), "{ctx}: ps -a:\n{}", ps.stdout);
            let info = inspect_running(&env, &name);
            assert_eq!(info["Ports"], serde_json::json!([shown]), "{ctx}");
            let id = info["Id"].as_str().unwrap().to_string();
            let helpers = helpers_of(&id);
            assert_eq!(helpers.len(), 1, "{ctx}: helpers {helpers:?}");

            // A second box wanting the same host port: 125 and the port named.
            let clash = spec(
                &env,
                mode,
                &[format!("127.0.0.1:{}:81", free_port()), publish.clone()],
                None,
                "true",
            );
            let r = env.run(["up", "--rm", clash.to_str().unwrap()]);
            r.assert_code(125);
            assert!(
                r.stderr
                    .contains(&format!("host port 127.0.0.1:{port}/tcp is already in use")),
                "{ctx}: {}",
                r.stderr
            );
            assert!(
                r.stderr
                    .contains(clash.file_name().unwrap().to_str().unwrap()),
                "{ctx}: {}",
                r.stderr
            );
            // The first box still serves.
            assert!(http_get(port, Duration::from_secs(5)).is_ok(), "{ctx}");

            env.run(["kill", &name]).ok();
            let done = bx.finish();
            assert_eq!(done.code, 137, "{ctx}: {done:?}");
            // The CLI stops and reaps its helper before it exits.
            for h in &helpers {
                assert!(dead(*h), "{ctx}: helper {h} outlived the box");
            }
            assert!(
                TcpListener::bind(("127.0.0.1", port)).is_ok(),
                "{ctx}: port still held"
            );
            env.run(["rm", &name]).ok();
        }
    }
}

/// A UDP forward: the host's datagrams reach an echo server on the box's port, and its replies
/// come back where the helpers deliver them: pasta when the box port is the host port (Debian
/// 12's pasta maps a reply through another port by the wrong one), slirp4netns when host
/// loopback is allowed (otherwise a reply to a loopback client is host-loopback traffic it
/// refuses). The other cases check delivery only.
#[test]
fn udp_forward_reaches_an_echo_server_in_the_box() {
    let probe = Probe::get();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        // (mode, box port is the host port, allow_host_loopback, replies come back)
        let cases = [
            ("pasta", true, false, true),
            ("slirp4netns", false, true, true),
            ("slirp4netns", false, false, false),
        ];
        for (mode, same, allow, replies) in cases {
            let host_port = free_port();
            let box_port = if same { host_port } else { 5353 };
            let ctx = format!("{who:?} {mode} {host_port}->{box_port} allow_host_loopback={allow}");
            let mut args: Vec<String> = vec!["run".into(), "--rm".into(), "--network".into()];
            args.push(format!("{mode}:allow_host_loopback={allow}"));
            args.push("-p".into());
            args.push(format!("127.0.0.1:{host_port}:{box_port}/udp"));
            args.extend(probe.args("udp-echo", &[("FOXNET_PORT", box_port.to_string())]));
            let mut bx = Attached::start(&env, &args);
            bx.expect_line("READY");
            let tok = token();
            let stop = Arc::new(AtomicBool::new(false));
            // Datagrams can be lost: keep sending until the box has one and a reply is back.
            let sender = {
                let (tok, stop) = (tok.clone(), stop.clone());
                std::thread::spawn(move || {
                    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
                    sock.set_read_timeout(Some(Duration::from_millis(100)))
                        .unwrap();
                    let mut buf = [0u8; 512];
                    let mut reply = None;
                    while !stop.load(Ordering::SeqCst) {
                        sock.send_to(tok.as_bytes(), ("127.0.0.1", host_port))
                            .unwrap();
                        if let Ok((n, _)) = sock.recv_from(&mut buf) {
                            reply = Some(String::from_utf8_lossy(&buf[..n]).into_owned());
                            break;
                        }
                    }
                    reply
                })
            };
            bx.expect_line(&format!("GOT {tok}"));
            if replies {
                let start = Instant::now();
                while !sender.is_finished() && start.elapsed() < Duration::from_secs(3) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            stop.store(true, Ordering::SeqCst);
            let reply = sender.join().unwrap();
            if replies {
                assert_eq!(reply, Some(format!("echo:{tok}")), "{ctx}");
            }
            let quit = UdpSocket::bind("127.0.0.1:0").unwrap();
            quit.send_to(b"quit", ("127.0.0.1", host_port)).unwrap();
            let done = bx.finish();
            assert_eq!(done.code, 0, "{ctx}: {done:?}");
        }
    }
}

/// The box reaches a host loopback listener through its gateway (by the `host.containers.internal`
/// line of its /etc/hosts) when `allow_host_loopback` is set, with pasta and slirp4netns, and not
/// when it is not (slirp4netns only: see the module's note on pasta); its resolv.conf names the
/// helper's nameserver.
#[test]
fn box_reaches_host_loopback_through_the_gateway_only_when_allowed() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let cases = [
            ("pasta", true, "169.254.1.1"),
            ("slirp4netns", true, "10.0.2.3"),
            ("slirp4netns", false, "10.0.2.3"),
        ];
        for (n, (mode, allow, nameserver)) in cases.into_iter().enumerate() {
            let host = HostListeners::new();
            let ctx = format!("{who:?} {mode} allow_host_loopback={allow}");
            let script = if allow {
                // No name lookups: a DNS query would leave this machine. nc's stdin stays open:
                // Debian 12's pasta can lose the host's reply when the box half-closes first.
                format!(
                    "cat /etc/resolv.conf; gw=$(awk '/host.containers.internal/ {{print $1}}' /etc/hosts); \
                     [ -n \"$gw\" ] || {{ echo NO-ALIAS; exit 3; }}; echo GW=$gw; mkfifo /tmp/in; sleep 10 > /tmp/in & timeout 5 nc -w 3 $gw {} < /tmp/in",
                    host.tcp_port
                )
            } else {
                format!(
                    "cat /etc/resolv.conf; cat /etc/hosts; mkfifo /tmp/in; sleep 10 > /tmp/in & timeout 5 nc -w 2 10.0.2.2 {} < /tmp/in && echo CONNECTED; echo DONE",
                    host.tcp_port
                )
            };
            // Through a spec and `up` for the first cases, through `run` for the rest.
            let args: Vec<String> = if n < 2 {
                let s = spec(&env, mode, &[], Some(allow), &script);
                vec!["up".into(), "--rm".into(), s.display().to_string()]
            } else {
                let net = format!("{mode}:allow_host_loopback={allow}");
                let mut a: Vec<String> = ["run", "--rm", "--network", &net]
                    .map(String::from)
                    .to_vec();
                a.extend([
                    busybox_tarball().display().to_string(),
                    "sh".into(),
                    "-c".into(),
                    script,
                ]);
                a
            };
            let r = env.run(&args);
            assert!(
                r.stdout.contains(&format!("nameserver {nameserver}\n")),
                "{ctx}: {r:?}"
            );
            if allow {
                r.ok();
                assert!(r.stdout.contains(&host.token), "{ctx}: {r:?}");
                assert_eq!(host.hits(), 1, "{ctx}");
            } else {
                r.ok();
                assert!(r.stdout.contains("DONE"), "{ctx}: {r:?}");
                assert!(!r.stdout.contains("CONNECTED"), "{ctx}: {r:?}");
                assert!(
                    !r.stdout.contains("host.containers.internal"),
                    "{ctx}: {r:?}"
                );
                assert!(!r.stdout.contains(&host.token), "{ctx}: {r:?}");
                assert_eq!(host.hits(), 0, "{ctx}");
            }
        }
    }
}

fn reach_lines(out: &str) -> Vec<(String, bool)> {
    out.lines()
        .filter_map(|l| l.strip_prefix("REACH "))
        .map(|l| {
            let mut f = l.splitn(3, ' ');
            let target = f.next().unwrap_or_default().to_string();
            (target, f.next() == Some("ok"))
        })
        .collect()
}

/// `--network none` (the default) reaches no host listener: TCP, UDP, abstract unix socket;
/// the same probe with `--network host` reaches all three (the box shares the host's network).
#[test]
fn none_reaches_no_host_listener_and_host_reaches_them_all() {
    let probe = Probe::get();
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        for mode in ["none", "host"] {
            let host = HostListeners::new();
            let ctx = format!("{who:?} {mode}");
            let mut targets = vec![
                format!("tcp:127.0.0.1:{}", host.tcp_port),
                format!("udp:127.0.0.1:{}", host.udp_port),
                format!("abstract:{}", host.abstract_name),
            ];
            if mode == "none" {
                // No route at all: nothing can leave a namespace holding only `lo`.
                targets.push(format!("tcp:10.0.2.2:{}", host.tcp_port));
            }
            let host_only = targets.len();
            // The box's own loopback works in both modes; `none` holds `lo` alone, and up.
            targets.push("self:tcp".into());
            if mode == "none" {
                targets.push("ifaces:lo".into());
            }
            let mut args: Vec<String> = vec!["run".into(), "--rm".into()];
            if mode == "host" {
                args.extend(["--network".into(), "host".into()]);
            }
            args.extend(probe.args(
                "reach",
                &[
                    ("FOXNET_TARGETS", targets.join(",")),
                    ("FOXNET_TOKEN", host.token.clone()),
                ],
            ));
            let r = env.run(&args);
            r.ok();
            let got = reach_lines(&r.stdout);
            assert_eq!(got.len(), targets.len(), "{ctx}: {r:?}");
            for (i, (target, ok)) in got.iter().enumerate() {
                let want = i >= host_only || mode == "host";
                assert_eq!(*ok, want, "{ctx}: {target}: {r:?}");
            }
            if mode == "none" {
                assert_eq!(host.hits(), 0, "{ctx}");
            } else {
                assert_eq!(host.hits(), 3, "{ctx}");
            }
        }
    }
}

/// kill -9 of the CLI running an attached box: its helper goes too (slirp4netns sees its
/// exit-fd close, pasta gets its parent-death signal), and so does the box.
#[test]
fn helper_is_gone_after_kill_9_of_the_cli() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        for mode in MODES {
            let ctx = format!("{who:?} {mode}");
            let name = unique_name("k9");
            let publish = format!("127.0.0.1:{}:80", free_port());
            let mut args: Vec<String> = ["run", "--name", &name, "--network", mode, "-p", &publish]
                .map(String::from)
                .to_vec();
            args.extend([
                busybox_tarball().display().to_string(),
                "sh".into(),
                "-c".into(),
                "echo READY; exec sleep 60".into(),
            ]);
            let mut bx = Attached::start(&env, &args);
            bx.expect_line("READY");
            let info = inspect_running(&env, &name);
            let id = info["Id"].as_str().unwrap().to_string();
            let fox = info["State"]["Pid"].as_u64().unwrap() as u32;
            let helpers = helpers_of(&id);
            assert_eq!(helpers.len(), 1, "{ctx}: helpers {helpers:?}");
            // SIGKILL: nothing of the CLI runs after it.
            let cli = bx.child.id() as i32;
            // SAFETY: kill(2) on our own child, not yet reaped, so its pid is still its own.
            assert_eq!(unsafe { libc::kill(cli, libc::SIGKILL) }, 0);
            let done = bx.finish();
            assert_eq!(done.code, 137, "{ctx}: {done:?}");
            assert!(
                wait_until(Duration::from_secs(5), || helpers.iter().all(|h| dead(*h))),
                "{ctx}: helper {helpers:?} outlived the CLI"
            );
            assert!(
                wait_until(Duration::from_secs(5), || dead(fox)),
                "{ctx}: the box's process {fox} outlived the CLI"
            );
            let _ = env.run(["rm", "-f", &name]);
        }
    }
}

/// A taken host port is reported at its own `ports` entry, not at `mode`.
/// A host port another process holds, TCP or UDP, through either helper: exit 125, the error
/// names the port and points at the spec line of the forward that clashes (the second).
#[test]
fn a_taken_port_is_reported_at_its_spec_line() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        for mode in MODES {
            for proto in ["tcp", "udp"] {
                let port = free_port();
                let _held: Box<dyn std::any::Any> = if proto == "tcp" {
                    Box::new(TcpListener::bind(("127.0.0.1", port)).unwrap())
                } else {
                    Box::new(UdpSocket::bind(("127.0.0.1", port)).unwrap())
                };
                let s = spec(
                    &env,
                    mode,
                    &[
                        format!("127.0.0.1:{}:81", free_port()),
                        format!("127.0.0.1:{port}:80/{proto}"),
                    ],
                    None,
                    "true",
                );
                let r = env.run(["up", "--rm", s.to_str().unwrap()]);
                let ctx = format!("{who:?} {mode} {proto}: {r:?}");
                assert_eq!(r.code, 125, "{ctx}");
                // Line 9 holds the second forward (see `spec`).
                let at = format!("{}:9:", s.file_name().unwrap().to_str().unwrap());
                assert!(r.stderr.contains(&at), "{ctx}");
                assert!(
                    r.stderr.contains(&format!("127.0.0.1:{port}/{proto}")),
                    "{ctx}"
                );
            }
        }
    }
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A detached box keeps its helper under its supervisor: the forward serves while the box runs,
/// and the helper is gone when the box is stopped, and when the supervisor is killed with -9.
#[test]
fn detached_boxes_keep_their_helper_under_the_supervisor() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        for (i, mode) in MODES.iter().enumerate() {
            // root stops its pasta box and kills its slirp4netns box's supervisor; the user
            // the reverse.
            let kill_supervisor = (i == 1) == (who == Who::Root);
            let ctx = format!("{who:?} {mode} kill -9 of the supervisor: {kill_supervisor}");
            let (port, tok, name) = (free_port(), token(), unique_name("detached"));
            let script = format!(
                "mkdir -p /www && echo {tok} > /www/index.html && exec httpd -f -p 80 -h /www"
            );
            let publish = format!("127.0.0.1:{port}:80");
            let mut args: Vec<String> = ["run", "-d", "--name", &name, "--network", mode, "-p"]
                .map(String::from)
                .to_vec();
            args.push(publish);
            args.extend([
                busybox_tarball().display().to_string(),
                "sh".into(),
                "-c".into(),
                script,
            ]);
            env.run(&args).ok();
            let body = http_get(port, Duration::from_secs(10))
                .unwrap_or_else(|e| panic!("{ctx}: GET 127.0.0.1:{port}: {e}"));
            assert!(body.contains(&tok), "{ctx}: {body}");
            let info = inspect_running(&env, &name);
            let id = info["Id"].as_str().unwrap().to_string();
            let fox = info["State"]["Pid"].as_u64().unwrap() as u32;
            let sup = info["State"]["SupervisorPid"].as_u64().unwrap() as u32;
            let helpers = helpers_of(&id);
            assert_eq!(helpers.len(), 1, "{ctx}: helpers {helpers:?}");
            assert_eq!(parent_of(helpers[0]), Some(sup), "{ctx}");
            if kill_supervisor {
                // SAFETY: kill(2) has no memory preconditions; the supervisor's pid was read
                // from the box's state just now, while it ran.
                assert_eq!(unsafe { libc::kill(sup as i32, libc::SIGKILL) }, 0);
            } else {
                env.run(["stop", "-t", "1", &name]).ok();
            }
            assert!(
                wait_until(Duration::from_secs(5), || dead(helpers[0]) && dead(fox)),
                "{ctx}: helper {helpers:?} or box {fox} outlived the box"
            );
            env.run(["rm", "-f", &name]).ok();
        }
    }
}
