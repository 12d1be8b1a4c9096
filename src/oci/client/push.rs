//! The write half of the distribution protocol, for `foxbox push`: does the registry have a
//! blob (`HEAD`), mount it from another repository of the same registry, upload it in one
//! `POST` + `PUT` (monolithic) or in `PATCH` chunks closed by an empty `PUT` (chunked), and
//! `PUT` a manifest, with the session's authentication (scope `pull,push`) retried once after
//! a 401.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use ureq::http::{Method, Request, Response, StatusCode};
use ureq::Body;

use super::{resolve_url, same_host, status_error, ClientError, Repo, Session};
use crate::oci::digest::Digest;

/// How a blob got to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The registry had it already (`HEAD` found it).
    Present,
    /// Mounted from another repository of the registry.
    Mounted,
    /// Uploaded.
    Uploaded,
}

/// A request body: `len` bytes of the file at `path` from `offset` (`None`: to its end).
#[derive(Debug, Clone, Copy)]
struct Part<'a> {
    path: &'a Path,
    offset: u64,
    len: Option<u64>,
}

impl<'a> Part<'a> {
    fn whole(path: &'a Path) -> Part<'a> {
        Part {
            path,
            offset: 0,
            len: None,
        }
    }
}

impl Session {
    /// One request with the body `body` (a part of a file to send, or none), authenticated for
    /// `scope`, retried once after a 401.
    fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, String)],
        body: Option<Part<'_>>,
        scope: &str,
    ) -> Result<Response<Body>, ClientError> {
        let mut refreshed = false;
        loop {
            let auth = self.auth_header(scope, refreshed)?;
            let mut b = Request::builder().method(method.clone()).uri(url);
            for (k, v) in headers {
                b = b.header(*k, v);
            }
            if let Some(a) = auth.filter(|_| same_host(url, &self.host)) {
                b = b.header("Authorization", a);
            }
            let transport = |source| ClientError::Transport {
                url: url.to_string(),
                source,
            };
            let resp = match body {
                Some(part) => {
                    let io = |e| transport(ureq::Error::Io(e));
                    let mut f = File::open(part.path).map_err(io)?;
                    let size = f.metadata().map_err(io)?.len();
                    let len = part
                        .len
                        .unwrap_or(u64::MAX)
                        .min(size.saturating_sub(part.offset));
                    f.seek(SeekFrom::Start(part.offset)).map_err(io)?;
                    let req = b
                        .header("Content-Length", len.to_string())
                        .body(ureq::SendBody::from_owned_reader(f.take(len)))
                        .map_err(|e| transport(ureq::Error::Http(e)))?;
                    self.agent.run(req)
                }
                None => {
                    let req = b.body(()).map_err(|e| transport(ureq::Error::Http(e)))?;
                    self.agent.run(req)
                }
            }
            .map_err(transport)?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if refreshed {
                return Err(ClientError::Unauthorized {
                    registry: self.registry.clone(),
                    creds_from: self.creds.as_ref().map(|c| c.1.clone()),
                });
            }
            if let Some(c) = super::challenge_of(&resp) {
                self.lock().challenge = Some(c);
            }
            refreshed = true;
        }
    }
}

impl Repo {
    fn push_scope(&self) -> String {
        format!("repository:{}:pull,push", self.repository)
    }

    fn url(&self, path: &str) -> Result<String, ClientError> {
        Ok(format!("{}{}", self.session.base()?, path))
    }

    /// Whether the registry has this blob in this repository.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool, ClientError> {
        let url = self.url(&format!("/v2/{}/blobs/{digest}", self.repository))?;
        let resp = self
            .session
            .send(Method::HEAD, &url, &[], None, &self.push_scope())?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => self
                .check(&url, format!("blob {digest}"), resp)
                .map(|_| false),
        }
    }

    /// Put the blob at `path` (whose digest is `digest`) into the repository, unless it is
    /// there already; `mount_from`: another repository of the registry that may have it;
    /// `chunk`: upload a blob larger than this in `PATCH` chunks of this size (else in one
    /// `PUT`).
    pub fn push_blob(
        &self,
        digest: &Digest,
        path: &Path,
        mount_from: Option<&str>,
        chunk: Option<u64>,
    ) -> Result<BlobPush, ClientError> {
        if self.has_blob(digest)? {
            return Ok(BlobPush::Present);
        }
        let scope = self.push_scope();
        let mut start = format!("/v2/{}/blobs/uploads/", self.repository);
        if let Some(from) = mount_from.filter(|f| *f != self.repository) {
            start.push_str(&format!("?mount={digest}&from={from}"));
        }
        let url = self.url(&start)?;
        let resp = self.session.send(
            Method::POST,
            &url,
            &[("Content-Length", "0".into())],
            None,
            &scope,
        )?;
        if resp.status() == StatusCode::CREATED && mount_from.is_some() {
            return Ok(BlobPush::Mounted);
        }
        let resp = self.check(&url, format!("an upload of {digest}"), resp)?;
        let Some(loc) = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(|l| resolve_url(&url, l))
        else {
            return Err(ClientError::Status {
                url,
                status: resp.status().as_u16(),
                message: "the upload has no Location".into(),
            });
        };
        let size = std::fs::metadata(path)
            .map_err(|e| ClientError::Transport {
                url: url.clone(),
                source: ureq::Error::Io(e),
            })?
            .len();
        let (loc, body) = match chunk.filter(|c| *c > 0 && size > *c) {
            Some(c) => (self.patch_chunks(loc, path, size, c, &scope)?, None),
            None => (loc, Some(Part::whole(path))),
        };
        let sep = if loc.contains('?') { '&' } else { '?' };
        let put = format!("{loc}{sep}digest={digest}");
        let mut headers = vec![("Content-Type", "application/octet-stream".to_string())];
        if body.is_none() {
            headers.push(("Content-Length", "0".into()));
        }
        let resp = self
            .session
            .send(Method::PUT, &put, &headers, body, &scope)?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(status_error(&put, resp.status().as_u16(), resp));
        }
        Ok(BlobPush::Uploaded)
    }

    /// Send the file at `path` (`size` bytes) to the upload at `loc` in `PATCH` requests of
    /// `chunk` bytes, each with its `Content-Range`; the upload's location after the last.
    fn patch_chunks(
        &self,
        mut loc: String,
        path: &Path,
        size: u64,
        chunk: u64,
        scope: &str,
    ) -> Result<String, ClientError> {
        let mut offset = 0;
        while offset < size {
            let len = chunk.min(size - offset);
            let resp = self.session.send(
                Method::PATCH,
                &loc,
                &[
                    ("Content-Type", "application/octet-stream".into()),
                    ("Content-Range", format!("{offset}-{}", offset + len - 1)),
                ],
                Some(Part {
                    path,
                    offset,
                    len: Some(len),
                }),
                scope,
            )?;
            if !resp.status().is_success() {
                return Err(status_error(&loc, resp.status().as_u16(), resp));
            }
            // Each answer names where the upload goes on (its state may be in the URL).
            if let Some(next) = resp.headers().get("location").and_then(|l| l.to_str().ok()) {
                loc = resolve_url(&loc, next);
            }
            offset += len;
        }
        Ok(loc)
    }

    /// `PUT` the manifest (the file at `path`, of `media_type`) as `reference` (a tag); the
    /// digest the registry reports.
    pub fn put_manifest(
        &self,
        reference: &str,
        media_type: &str,
        path: &Path,
    ) -> Result<Option<String>, ClientError> {
        let url = self.url(&format!("/v2/{}/manifests/{reference}", self.repository))?;
        let resp = self.session.send(
            Method::PUT,
            &url,
            &[("Content-Type", media_type.to_string())],
            Some(Part::whole(path)),
            &self.push_scope(),
        )?;
        let resp = self.check(&url, format!("manifest {reference}"), resp)?;
        Ok(resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(String::from))
    }
}
