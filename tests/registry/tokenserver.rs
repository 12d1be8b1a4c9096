//! A registry token server (distribution's "token" auth) over TLS, in a thread of the test
//! process. Users named in `users` get every action they ask for; anonymous callers get `pull`
//! on repositories outside `private/`. Tokens are RS256 JWTs signed with `openssl dgst`, whose
//! `kid` is libtrust's fingerprint of the key, so the registry (rootcertbundle = the key's
//! certificate) trusts them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use base64::Engine as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

pub struct TokenServer {
    pub port: u16,
}

struct Cfg {
    key: PathBuf,
    kid: String,
    service: String,
    issuer: String,
    users: Vec<(String, String)>,
}

fn b64u(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// libtrust's key id: base32 of the first 30 bytes of sha256(DER public key), in groups of 4.
fn libtrust_kid(key: &Path) -> String {
    let out = Command::new("openssl")
        .args(["pkey", "-pubout", "-outform", "DER", "-in"])
        .arg(key)
        .output()
        .expect("openssl pkey");
    assert!(out.status.success());
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(&out.stdout);
    let b32 = base32(&h[..30]);
    b32.as_bytes()
        .chunks(4)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect::<Vec<_>>()
        .join(":")
}

fn base32(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0);
    for &b in data {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap_or(b'?');
                out.push(h);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_form(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

impl Cfg {
    fn token(&self, sub: &str, access: serde_json::Value) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let hdr = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let claims = serde_json::json!({
            "iss": self.issuer, "sub": sub, "aud": self.service,
            "exp": now + 600, "nbf": now - 10, "iat": now,
            "jti": format!("{now}-{}", std::process::id()), "access": access,
        });
        let input = format!(
            "{}.{}",
            b64u(&serde_json::to_vec(&hdr).unwrap()),
            b64u(&serde_json::to_vec(&claims).unwrap())
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("openssl dgst");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        format!("{input}.{}", b64u(&out.stdout))
    }

    /// (status, body)
    fn answer(
        &self,
        user: Option<(String, String)>,
        service: &str,
        scopes: &[String],
    ) -> (u16, String) {
        if let Some((u, p)) = &user {
            if !self.users.iter().any(|(uu, pp)| uu == u && pp == p) {
                return (
                    401,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#.into(),
                );
            }
        }
        if !service.is_empty() && service != self.service {
            return (400, r#"{"error":"unknown service"}"#.into());
        }
        let mut access = Vec::new();
        for sc in scopes.iter().flat_map(|s| s.split(' ')) {
            let parts: Vec<&str> = sc.split(':').collect();
            if parts.len() < 3 {
                continue;
            }
            let name = parts[1..parts.len() - 1].join(":");
            let mut actions: Vec<&str> = parts[parts.len() - 1].split(',').collect();
            if user.is_none() {
                actions.retain(|a| *a == "pull" && !name.starts_with("private/"));
            }
            access.push(serde_json::json!({"type": parts[0], "name": name, "actions": actions}));
        }
        let sub = user.as_ref().map(|u| u.0.as_str()).unwrap_or("");
        let t = self.token(sub, serde_json::Value::Array(access));
        (
            200,
            serde_json::json!({"token": t, "access_token": t, "expires_in": 600}).to_string(),
        )
    }
}

impl TokenServer {
    pub fn start(
        cert_chain: &Path,
        tls_key: &Path,
        signing_key: &Path,
        service: &str,
        issuer: &str,
        users: Vec<(String, String)>,
    ) -> TokenServer {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_chain)
            .unwrap()
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_file(tls_key).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap(),
        );
        let cfg = Arc::new(Cfg {
            key: signing_key.to_path_buf(),
            kid: libtrust_kid(signing_key),
            service: service.into(),
            issuer: issuer.into(),
            users,
        });
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for conn in l.incoming().flatten() {
                let tls = tls.clone();
                let cfg = cfg.clone();
                std::thread::spawn(move || {
                    let Ok(sc) = rustls::ServerConnection::new(tls) else {
                        return;
                    };
                    let mut s = rustls::StreamOwned::new(sc, conn);
                    if serve(&mut s, &cfg).is_ok() {
                        s.conn.send_close_notify();
                        let _ = s.flush();
                    }
                });
            }
        });
        TokenServer { port }
    }
}

fn serve(s: &mut (impl Read + Write), cfg: &Cfg) -> std::io::Result<()> {
    let mut r = BufReader::new(&mut *s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut auth = None;
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((&h, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "authorization" => auth = Some(v.trim().to_string()),
            "content-length" => len = v.trim().parse().unwrap_or(0),
            _ => {}
        }
    }
    let mut body = vec![0u8; len.min(65536)];
    r.read_exact(&mut body)?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let user = auth
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            s.split_once(':')
                .map(|(u, p)| (u.to_string(), p.to_string()))
        });
    let (code, text) = if path != "/token" {
        (404, "{}".to_string())
    } else if method == "POST" {
        let f = parse_form(&String::from_utf8_lossy(&body));
        let get = |k: &str| f.iter().find(|(kk, _)| kk == k).map(|x| x.1.clone());
        let scopes: Vec<String> = f
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|x| x.1.clone())
            .collect();
        let user = match (get("username"), get("password")) {
            (Some(u), Some(p)) => Some((u, p)),
            _ => None,
        };
        cfg.answer(user, &get("service").unwrap_or_default(), &scopes)
    } else {
        let q = parse_form(query);
        let scopes: Vec<String> = q
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|x| x.1.clone())
            .collect();
        let service = q
            .iter()
            .find(|(k, _)| k == "service")
            .map(|x| x.1.clone())
            .unwrap_or_default();
        cfg.answer(user, &service, &scopes)
    };
    let reason = match code {
        200 => "OK",
        401 => "Unauthorized",
        _ => "Error",
    };
    let resp = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    s.write_all(resp.as_bytes())?;
    s.flush()
}
