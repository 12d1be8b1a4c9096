//! The distribution protocol over HTTP(S): ping, authentication (anonymous, Basic, Bearer
//! tokens from the `WWW-Authenticate` challenge), manifests and blobs.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ureq::http::{Response, StatusCode};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::Body;

use super::auth::{find_credentials, parse_challenge, AuthFileError, Challenge, Credentials};
use super::digest::Digest;
use super::manifest::{ACCEPT_MANIFESTS, MAX_MANIFEST_BYTES};
use super::reference::{api_host, is_loopback};
use super::settings::Settings;

mod push;
pub use push::BlobPush;

const MAX_REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {url}: {source}")]
    Transport { url: String, source: ureq::Error },
    #[error("{url}: the server's certificate is not trusted ({source}); put its CA in {hint} or give --cert-dir")]
    Certificate {
        url: String,
        source: ureq::Error,
        hint: String,
    },
    #[error("{url}: {status}{}", fmt_msg(.message))]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("authentication required by {registry}{}", fmt_hint(.creds_from))]
    Unauthorized {
        registry: String,
        /// Where the refused credentials came from (a file, or the command line).
        creds_from: Option<String>,
    },
    #[error("{registry} refused access to {what}{}", fmt_msg(.message))]
    Denied {
        registry: String,
        what: String,
        message: String,
    },
    #[error("{what} not found in {registry}{}", fmt_msg(.message))]
    NotFound {
        registry: String,
        what: String,
        message: String,
    },
    #[error("token server {realm}: {message}")]
    Token { realm: String, message: String },
    #[error("reading CA certificate {path}: {message}")]
    Ca { path: PathBuf, message: String },
    #[error(transparent)]
    AuthFile(#[from] AuthFileError),
    #[error("{url}: manifest larger than {MAX_MANIFEST_BYTES} bytes or unreadable: {source}")]
    ManifestBody { url: String, source: ureq::Error },
    #[error("{url}: too many redirects")]
    Redirects { url: String },
}

fn fmt_msg(m: &str) -> String {
    if m.is_empty() {
        String::new()
    } else {
        format!(": {m}")
    }
}

fn fmt_hint(from: &Option<String>) -> String {
    match from {
        Some(p) => format!(": the credentials from {p} were refused"),
        None => ": no credentials found (use `foxbox login`)".to_string(),
    }
}

/// A manifest as fetched: bytes exactly as served (their digest is the manifest's identity).
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// The `Docker-Content-Digest` header, when the registry sent one.
    pub header_digest: Option<String>,
}

/// A registry client; sessions per registry are created on first use and reused.
pub struct Client {
    settings: Settings,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    /// Credentials given on the command line, for one registry.
    explicit: Option<(String, Credentials)>,
}

impl Client {
    pub fn new(settings: Settings) -> Client {
        Client {
            settings,
            sessions: Mutex::new(HashMap::new()),
            explicit: None,
        }
    }

    /// Use these credentials for `registry` instead of any auth file (`login`, `--creds`).
    pub fn with_credentials(mut self, registry: &str, creds: Credentials) -> Client {
        self.explicit = Some((registry.to_string(), creds));
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// A handle for one repository of one registry.
    pub fn repo(&self, registry: &str, repository: &str) -> Result<Repo, ClientError> {
        let session = self.session(registry, repository)?;
        Ok(Repo {
            session,
            repository: repository.to_string(),
        })
    }

    fn session(&self, registry: &str, repository: &str) -> Result<Arc<Session>, ClientError> {
        let mut map = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(s) = map.get(registry) {
            return Ok(s.clone());
        }
        let creds = match &self.explicit {
            Some((r, c)) if r == registry => Some((c.clone(), "the command line".to_string())),
            _ => find_credentials(&self.settings.auth_files, registry, repository)?
                .map(|(c, p)| (c, p.display().to_string())),
        };
        let insecure = self.settings.is_insecure(registry);
        let agent = build_agent(&self.settings, registry, insecure)?;
        let s = Arc::new(Session {
            registry: registry.to_string(),
            host: api_host(registry).to_string(),
            plain_http_ok: insecure || is_loopback(registry),
            agent,
            creds,
            state: Mutex::new(State::default()),
        });
        map.insert(registry.to_string(), s.clone());
        Ok(s)
    }

    /// Check that the registry accepts these credentials (what `foxbox login` does before
    /// storing them).
    pub fn check_login(&self, registry: &str) -> Result<(), ClientError> {
        let s = self.session(registry, "")?;
        s.ping()?;
        let challenge = s.lock().challenge.clone();
        match challenge {
            None => Ok(()),
            Some(Challenge::Basic) => {
                let url = format!("{}/v2/", s.base()?);
                let resp = s.send_raw(&url, None, s.creds.as_ref().map(|c| c.0.basic_header()))?;
                match resp.status() {
                    s2 if s2.is_success() => Ok(()),
                    StatusCode::UNAUTHORIZED => Err(ClientError::Unauthorized {
                        registry: registry.to_string(),
                        creds_from: s.creds.as_ref().map(|c| c.1.clone()),
                    }),
                    other => Err(status_error(&url, resp_status(other), resp)),
                }
            }
            Some(Challenge::Bearer { realm, service, .. }) => {
                s.fetch_token(&realm, service.as_deref(), None).map(|_| ())
            }
        }
    }
}

fn resp_status(s: StatusCode) -> u16 {
    s.as_u16()
}

fn build_agent(
    settings: &Settings,
    registry: &str,
    insecure: bool,
) -> Result<ureq::Agent, ClientError> {
    let mut tls = TlsConfig::builder();
    if insecure {
        tls = tls.disable_verification(true);
    } else {
        // The system's roots always (ureq would use its own copy of the web's), the registry's
        // own CAs on top.
        let mut certs: Vec<Certificate<'static>> = system_roots();
        for path in settings.ca_files(registry) {
            let pem = std::fs::read(&path).map_err(|e| ClientError::Ca {
                path: path.clone(),
                message: e.to_string(),
            })?;
            let before = certs.len();
            for item in ureq::tls::parse_pem(&pem) {
                match item {
                    Ok(PemItem::Certificate(c)) => certs.push(c),
                    Ok(_) => {}
                    Err(e) => {
                        return Err(ClientError::Ca {
                            path,
                            message: e.to_string(),
                        })
                    }
                }
            }
            if certs.len() == before {
                return Err(ClientError::Ca {
                    path,
                    message: "no PEM certificate in it".into(),
                });
            }
        }
        // No trust store on this system at all: the bundled web roots rather than none.
        if !certs.is_empty() {
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
    }
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("foxbox/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_per_read(Some(Duration::from_secs(120)))
        .tls_config(tls.build())
        .build();
    Ok(config.new_agent())
}

/// Where distributions keep their CA bundle (Go's list, in its order).
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system's trusted roots, as OpenSSL finds them: the bundle `$SSL_CERT_FILE` names (else
/// the distribution's), and every certificate in the directories `$SSL_CERT_DIR` lists
/// (colon-separated). Unreadable files and what is not a certificate are skipped.
fn system_roots() -> Vec<Certificate<'static>> {
    let mut files: Vec<PathBuf> = match std::env::var_os("SSL_CERT_FILE") {
        Some(f) if !f.is_empty() => vec![PathBuf::from(f)],
        _ => SYSTEM_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .into_iter()
            .collect(),
    };
    if let Some(dirs) = std::env::var_os("SSL_CERT_DIR") {
        for d in std::env::split_paths(&dirs) {
            let Ok(entries) = std::fs::read_dir(&d) else {
                continue;
            };
            let mut in_dir: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            in_dir.sort();
            files.extend(in_dir);
        }
    }
    let mut certs = Vec::new();
    for f in files {
        let Ok(pem) = std::fs::read(&f) else {
            continue;
        };
        certs.extend(ureq::tls::parse_pem(&pem).filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        }));
    }
    certs
}

#[derive(Default)]
struct State {
    /// `https://host` or `http://host`, once the ping found which one answers.
    base: Option<String>,
    /// What the registry asked for at the ping; None when it needs no auth.
    challenge: Option<Challenge>,
    /// Bearer tokens by scope.
    tokens: HashMap<String, String>,
}

struct Session {
    registry: String,
    host: String,
    plain_http_ok: bool,
    agent: ureq::Agent,
    /// The credentials and where they came from.
    creds: Option<(Credentials, String)>,
    state: Mutex<State>,
}

impl Session {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn base(&self) -> Result<String, ClientError> {
        if let Some(b) = self.lock().base.clone() {
            return Ok(b);
        }
        self.ping()?;
        Ok(self
            .lock()
            .base
            .clone()
            .unwrap_or_else(|| format!("https://{}", self.host)))
    }

    /// `GET /v2/`: which scheme answers, and which authentication the registry wants.
    fn ping(&self) -> Result<(), ClientError> {
        if self.lock().base.is_some() {
            return Ok(());
        }
        let https = format!("https://{}", self.host);
        let (base, resp) = match self.send_raw(&format!("{https}/v2/"), None, None) {
            Ok(r) => (https, r),
            Err(ClientError::Transport { source, .. })
                if self.plain_http_ok && !is_certificate_error(&source) =>
            {
                tracing::debug!("{https} does not speak TLS ({source:?}); trying plain HTTP");
                let http = format!("http://{}", self.host);
                let r = self.send_raw(&format!("{http}/v2/"), None, None)?;
                (http, r)
            }
            Err(ClientError::Transport { url, source }) if is_certificate_error(&source) => {
                return Err(ClientError::Certificate {
                    url,
                    source,
                    hint: format!("$XDG_CONFIG_HOME/foxbox/certs.d/{}/ca.crt", self.registry),
                })
            }
            Err(e) => return Err(e),
        };
        let challenge = if resp.status() == StatusCode::UNAUTHORIZED {
            challenge_of(&resp)
        } else {
            None
        };
        let mut st = self.lock();
        st.base = Some(base);
        st.challenge = challenge;
        Ok(())
    }

    /// One request without authentication logic, following redirects (credentials go only to
    /// the registry's own origin).
    fn send_raw(
        &self,
        url: &str,
        accept: Option<&str>,
        auth: Option<String>,
    ) -> Result<Response<Body>, ClientError> {
        let mut url = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.agent.get(&url);
            if let Some(a) = accept {
                req = req.header("Accept", a);
            }
            if let Some(h) = auth.as_ref().filter(|_| same_host(&url, &self.host)) {
                req = req.header("Authorization", h);
            }
            let resp = req.call().map_err(|source| ClientError::Transport {
                url: url.clone(),
                source,
            })?;
            if resp.status().is_redirection() {
                let loc = resp
                    .headers()
                    .get("location")
                    .and_then(|l| l.to_str().ok())
                    .map(|l| resolve_url(&url, l));
                if let Some(next) = loc {
                    url = next;
                    continue;
                }
            }
            return Ok(resp);
        }
        Err(ClientError::Redirects { url })
    }

    /// A GET with whatever authentication the registry asks for, retried once after a 401
    /// (a new challenge, or an expired token).
    fn get(
        &self,
        path: &str,
        accept: Option<&str>,
        scope: &str,
    ) -> Result<(String, Response<Body>), ClientError> {
        let url = format!("{}{}", self.base()?, path);
        let mut refreshed = false;
        loop {
            let auth = self.auth_header(scope, refreshed)?;
            let resp = self.send_raw(&url, accept, auth)?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok((url, resp));
            }
            if refreshed {
                return Err(ClientError::Unauthorized {
                    registry: self.registry.clone(),
                    creds_from: self.creds.as_ref().map(|c| c.1.clone()),
                });
            }
            if let Some(c) = challenge_of(&resp) {
                self.lock().challenge = Some(c);
            }
            refreshed = true;
        }
    }

    fn auth_header(&self, scope: &str, fresh: bool) -> Result<Option<String>, ClientError> {
        let (challenge, cached) = {
            let st = self.lock();
            (st.challenge.clone(), st.tokens.get(scope).cloned())
        };
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.creds.as_ref().map(|c| c.0.basic_header())),
            Some(Challenge::Bearer { realm, service, .. }) => {
                if let (Some(t), false) = (cached, fresh) {
                    return Ok(Some(format!("Bearer {t}")));
                }
                let token = self.fetch_token(&realm, service.as_deref(), Some(scope))?;
                self.lock().tokens.insert(scope.to_string(), token.clone());
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String, ClientError> {
        let terr = |message: String| ClientError::Token {
            realm: realm.to_string(),
            message,
        };
        let realm_is_plain = realm.starts_with("http://");
        if !realm.starts_with("https://") && !realm_is_plain {
            return Err(terr("the realm is not an http(s) URL".into()));
        }
        if realm_is_plain && !self.plain_http_ok {
            return Err(terr(
                "refusing to send credentials to a plain-HTTP token realm of a secure registry"
                    .into(),
            ));
        }
        let mut q = Vec::new();
        if let Some(s) = service {
            q.push(format!("service={}", query_escape(s)));
        }
        if let Some(s) = scope {
            q.push(format!("scope={}", query_escape(s)));
        }
        if let Some((c, _)) = &self.creds {
            q.push(format!("account={}", query_escape(&c.username)));
        }
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = format!("{realm}{sep}{}", q.join("&"));
        let mut req = self.agent.get(&url);
        if let Some((c, _)) = &self.creds {
            req = req.header("Authorization", c.basic_header());
        }
        let resp = req.call().map_err(|source| ClientError::Transport {
            url: realm.to_string(),
            source,
        })?;
        if resp.status() == StatusCode::UNAUTHORIZED || resp.status() == StatusCode::FORBIDDEN {
            return Err(ClientError::Unauthorized {
                registry: self.registry.clone(),
                creds_from: self.creds.as_ref().map(|c| c.1.clone()),
            });
        }
        if !resp.status().is_success() {
            return Err(terr(format!("status {}", resp.status().as_u16())));
        }
        #[derive(serde::Deserialize)]
        struct Tok {
            token: Option<String>,
            access_token: Option<String>,
        }
        let body = resp
            .into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|e| terr(e.to_string()))?;
        let t: Tok = serde_json::from_slice(&body).map_err(|e| terr(e.to_string()))?;
        t.token
            .or(t.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| terr("the answer holds no token".into()))
    }
}

/// Whether TLS failed on the server's certificate (as opposed to the server not speaking TLS
/// at all): then falling back to plain HTTP would only hide the real problem.
fn is_certificate_error(e: &ureq::Error) -> bool {
    let cert = |r: &rustls::Error| {
        matches!(
            r,
            rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::UnsupportedNameType
        )
    };
    match e {
        ureq::Error::Rustls(r) => return cert(r),
        ureq::Error::Io(io) => {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return cert(r);
            }
        }
        _ => {}
    }
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<rustls::Error>() {
            return cert(r);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                return cert(r);
            }
        }
        src = s.source();
    }
    false
}

fn challenge_of(resp: &Response<Body>) -> Option<Challenge> {
    resp.headers()
        .get_all("www-authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(parse_challenge)
        // Prefer Bearer: it carries scopes; Basic is the fallback.
        .max_by_key(|c| matches!(c, Challenge::Bearer { .. }))
}

fn same_host(url: &str, host: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    rest.split('/').next() == Some(host)
}

fn resolve_url(base: &str, loc: &str) -> String {
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return loc.to_string();
    }
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let origin_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    if loc.starts_with('/') {
        format!("{}{}", &base[..origin_end], loc)
    } else {
        let path = base[..base.find('?').unwrap_or(base.len())].to_string();
        let dir_end = path.rfind('/').map_or(path.len(), |i| i + 1);
        format!("{}{}", &path[..dir_end.max(origin_end)], loc)
    }
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The registry's JSON error (`{"errors":[{"code","message"}]}`) as one line.
fn error_text(resp: Response<Body>) -> String {
    let body = resp
        .into_body()
        .with_config()
        .limit(64 * 1024)
        .read_to_vec()
        .unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct E {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    #[derive(serde::Deserialize)]
    struct Es {
        errors: Vec<E>,
    }
    match serde_json::from_slice::<Es>(&body) {
        Ok(es) => es
            .errors
            .iter()
            .map(|e| format!("{} {}", e.code, e.message).trim().to_string())
            .collect::<Vec<_>>()
            .join("; "),
        Err(_) => String::from_utf8_lossy(&body)
            .chars()
            .take(200)
            .collect::<String>()
            .trim()
            .to_string(),
    }
}

fn status_error(url: &str, status: u16, resp: Response<Body>) -> ClientError {
    ClientError::Status {
        url: url.to_string(),
        status,
        message: error_text(resp),
    }
}

/// One repository of a registry.
pub struct Repo {
    session: Arc<Session>,
    repository: String,
}

impl Repo {
    pub fn registry(&self) -> &str {
        &self.session.registry
    }

    fn scope(&self) -> String {
        format!("repository:{}:pull", self.repository)
    }

    fn check(
        &self,
        url: &str,
        what: String,
        resp: Response<Body>,
    ) -> Result<Response<Body>, ClientError> {
        let st = resp.status();
        if st.is_success() {
            return Ok(resp);
        }
        let registry = self.session.registry.clone();
        match st {
            StatusCode::NOT_FOUND => Err(ClientError::NotFound {
                registry,
                what,
                message: error_text(resp),
            }),
            StatusCode::FORBIDDEN => Err(ClientError::Denied {
                registry,
                what,
                message: error_text(resp),
            }),
            _ => Err(status_error(url, st.as_u16(), resp)),
        }
    }

    /// `GET /v2/<name>/manifests/<reference>` with every manifest type we read accepted.
    pub fn manifest(&self, reference: &str) -> Result<FetchedManifest, ClientError> {
        let path = format!("/v2/{}/manifests/{}", self.repository, reference);
        let (url, resp) = self
            .session
            .get(&path, Some(ACCEPT_MANIFESTS), &self.scope())?;
        let what = format!("manifest {}:{}", self.repository, reference);
        let resp = self.check(&url, what, resp)?;
        let header = |n: &str| {
            resp.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(String::from)
        };
        let content_type = header("content-type");
        let header_digest = header("docker-content-digest");
        let bytes = resp
            .into_body()
            .with_config()
            .limit(MAX_MANIFEST_BYTES)
            .read_to_vec()
            .map_err(|source| ClientError::ManifestBody { url, source })?;
        Ok(FetchedManifest {
            bytes,
            content_type,
            header_digest,
        })
    }

    /// `GET /v2/<name>/blobs/<digest>`: the body as a reader (the caller verifies it).
    pub fn blob(&self, digest: &Digest) -> Result<Box<dyn Read + Send>, ClientError> {
        let path = format!("/v2/{}/blobs/{}", self.repository, digest);
        let (url, resp) = self.session.get(&path, None, &self.scope())?;
        let what = format!("blob {digest} of {}", self.repository);
        let resp = self.check(&url, what, resp)?;
        Ok(Box::new(resp.into_body().into_reader()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_helpers() {
        assert_eq!(
            resolve_url("https://r:5000/v2/a/blobs/x", "/other"),
            "https://r:5000/other"
        );
        assert_eq!(
            resolve_url("https://r/v2/a/blobs/x", "https://s3/y?sig=1"),
            "https://s3/y?sig=1"
        );
        assert_eq!(resolve_url("https://r/v2/a/b?q", "c"), "https://r/v2/a/c");
        assert!(same_host("http://127.0.0.1:5000/v2/", "127.0.0.1:5000"));
        assert!(!same_host("https://s3.example/x", "127.0.0.1:5000"));
        assert_eq!(
            query_escape("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
    }
}
