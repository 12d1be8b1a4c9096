//! A TCP relay in front of a plain-HTTP registry: it records every request line a client sends
//! (so a test sees exactly which blobs were fetched through it), counts the bytes sent back,
//! and can slow them down (so a pull can be killed half-way).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Relay {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
    down_bytes: Arc<AtomicU64>,
    /// Bytes per second towards the client; 0 = unlimited.
    rate: Arc<AtomicU64>,
}

impl Relay {
    pub fn start(upstream: u16) -> Relay {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let down_bytes = Arc::new(AtomicU64::new(0));
        let rate = Arc::new(AtomicU64::new(0));
        let (rq, db, rt) = (requests.clone(), down_bytes.clone(), rate.clone());
        std::thread::spawn(move || {
            for client in l.incoming().flatten() {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let rq = rq.clone();
                std::thread::spawn(move || up(client, server, rq));
                let (db, rt) = (db.clone(), rt.clone());
                std::thread::spawn(move || down(s2, c2, db, rt));
            }
        });
        Relay {
            port,
            requests,
            down_bytes,
            rate,
        }
    }

    /// The request lines seen so far (`GET /v2/... HTTP/1.1`).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// How many GETs of `/blobs/<digest>` went through.
    pub fn blob_gets(&self, digest: &str) -> usize {
        let needle = format!("/blobs/{digest} ");
        self.requests()
            .iter()
            .filter(|r| r.starts_with("GET ") && r.contains(&needle))
            .count()
    }

    pub fn down_bytes(&self) -> u64 {
        self.down_bytes.load(Ordering::SeqCst)
    }

    /// Run `cmd` (a pull through this relay) slowed to 2 MiB/s and SIGKILL it once 4 MiB
    /// have gone through, mid-way through a layer; the rate stays slow until `set_rate(0)`.
    pub fn kill_mid_way(&self, mut cmd: std::process::Command) {
        self.set_rate(2 << 20);
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.down_bytes() < 4 << 20 {
            assert!(Instant::now() < deadline, "the pull made no progress");
            assert!(child.try_wait().unwrap().is_none(), "the pull ended early");
            std::thread::sleep(Duration::from_millis(20));
        }
        // The binary itself (setpriv execs it for the unprivileged user).
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        child.wait().unwrap();
    }

    pub fn set_rate(&self, bytes_per_sec: u64) {
        self.rate.store(bytes_per_sec, Ordering::SeqCst);
    }
}

/// Client to server, request by request: the request line is recorded, the headers and the
/// body (its `Content-Length` bytes, binary, with or without a last newline) passed on as
/// they come.
fn up(client: TcpStream, mut server: TcpStream, requests: Arc<Mutex<Vec<String>>>) {
    let mut r = BufReader::new(client);
    let mut line = Vec::new();
    let mut request_line = true;
    let mut length: u64 = 0;
    let mut body: u64 = 0;
    loop {
        if body > 0 {
            let chunk = match r.fill_buf() {
                Ok(b) if !b.is_empty() => b,
                _ => break,
            };
            let n = chunk.len().min(body as usize);
            if server.write_all(&chunk[..n]).is_err() {
                break;
            }
            r.consume(n);
            body -= n as u64;
            continue;
        }
        line.clear();
        match r.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        if request_line {
            if ["GET ", "HEAD ", "POST ", "PUT ", "PATCH ", "DELETE "]
                .iter()
                .any(|m| text.starts_with(m))
            {
                requests.lock().unwrap().push(text);
                request_line = false;
            }
        } else if text.is_empty() {
            body = length;
            length = 0;
            request_line = true;
        } else if let Some((k, v)) = text.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        if server.write_all(&line).is_err() {
            break;
        }
    }
    let _ = server.shutdown(Shutdown::Write);
}

fn down(mut server: TcpStream, mut client: TcpStream, bytes: Arc<AtomicU64>, rate: Arc<AtomicU64>) {
    let mut buf = [0u8; 16 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    loop {
        let n = match server.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let r = rate.load(Ordering::SeqCst);
        if r > 0 {
            let due = Duration::from_secs_f64(sent as f64 / r as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        if client.write_all(&buf[..n]).is_err() {
            break;
        }
        sent += n as u64;
        bytes.fetch_add(n as u64, Ordering::SeqCst);
    }
    let _ = client.shutdown(Shutdown::Write);
}
