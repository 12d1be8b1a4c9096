//! The Containerfile (Dockerfile) front end: the common subset translated into the raw
//! `[build]` table the TOML front end parses ([`RawBuild`]), then resolved by the same
//! [`crate::spec::build::resolve`], so both give the same recipe and the same checks.
//!
//! Supported: `FROM image [AS name]` (each a stage; the last is the image; `${ARG}`s of the
//! `ARG`s before it, resolved by the builder), `RUN` (shell and exec forms, `--network=`,
//! `--mount=type=cache`), `COPY` and `ADD` of local files (`--from=`, `--chown=`, `--chmod=`;
//! `ADD` unpacks tar archives), `ENV`, `ARG`, `WORKDIR`, `USER`, `LABEL`, `CMD`, `ENTRYPOINT`,
//! `EXPOSE`, line continuations and comments. Anything else is a diagnostic at its line. `$NAME` and `${NAME}`
//! of a declared `ARG` are the recipe's `${NAME}` (set with `--build-arg`); a relative `COPY`
//! destination or `WORKDIR` is taken from the current `WORKDIR`, as Docker does.

use std::path::Path;

use crate::diag::codes::build as build_codes;
use crate::diag::Diagnostic;
use crate::plan::Span;
use crate::spec::build::Loaded;
use crate::spec::raw::{
    RawBuild, RawCache, RawCacheTable, RawCommand, RawEnv, RawStage, RawStep, Sp,
};

/// Whether `path` names a Containerfile rather than a TOML recipe: any name not ending in
/// `.toml`.
pub fn is_containerfile(path: &Path) -> bool {
    !path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase().ends_with(".toml"))
        .unwrap_or(false)
}

/// One logical line: its keyword (upper case), its arguments, and where it is.
struct Line {
    keyword: String,
    rest: String,
    span: Span,
}

/// Join continuations (a line ending in `\`), drop comments and blank lines.
fn lines(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut cur: Option<(usize, String)> = None;
    let mut end = 0;
    let mut offset = 0;
    for raw in text.split_inclusive('\n') {
        let start = offset;
        offset += raw.len();
        let l = raw.trim_end_matches(['\n', '\r']);
        let trimmed = l.trim_start();
        if trimmed.starts_with('#') || (trimmed.is_empty() && cur.is_none()) {
            continue;
        }
        let (body, more) = match l.trim_end().strip_suffix('\\') {
            Some(b) => (b, true),
            None => (l, false),
        };
        end = start + l.len();
        match &mut cur {
            Some((_, acc)) => {
                acc.push(' ');
                acc.push_str(body.trim());
            }
            None => cur = Some((start + (l.len() - trimmed.len()), body.trim().to_string())),
        }
        if !more {
            if let Some((s, text)) = cur.take() {
                out.push(split(s, end, text));
            }
        }
    }
    if let Some((s, text)) = cur.take() {
        out.push(split(s, end, text));
    }
    out
}

fn split(start: usize, end: usize, text: String) -> Line {
    let (k, rest) = text.split_once(char::is_whitespace).unwrap_or((&text, ""));
    Line {
        keyword: k.to_ascii_uppercase(),
        rest: rest.trim().to_string(),
        span: Span::new(start, end.max(start)),
    }
}

/// Shell-like words: whitespace separates, quotes group (and go), a backslash escapes.
fn words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut w = String::new();
    let mut any = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if any {
                    out.push(std::mem::take(&mut w));
                    any = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (Some(q), c) if c == q => quote = None,
            (q, '\\') if q != Some('\'') => {
                if let Some(n) = chars.next() {
                    w.push(n);
                }
                any = true;
            }
            (_, c) => {
                w.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(w);
    }
    out
}

/// A JSON array of strings (the exec form), if `s` is one.
fn exec_form(s: &str) -> Option<Vec<String>> {
    s.trim_start()
        .starts_with('[')
        .then(|| serde_json::from_str::<Vec<String>>(s).ok())
        .flatten()
}

/// `--name=value` flags at the front of `words`, and the rest.
fn flags(words: Vec<String>) -> (Vec<(String, String)>, Vec<String>) {
    let mut f = Vec::new();
    let mut rest = Vec::new();
    let mut at_front = true;
    for w in words {
        if at_front && w.starts_with("--") {
            let (k, v) = w[2..].split_once('=').unwrap_or((&w[2..], ""));
            f.push((k.to_string(), v.to_string()));
        } else {
            at_front = false;
            rest.push(w);
        }
    }
    (f, rest)
}

/// `KEY=VALUE` words (ENV, LABEL), or the old `ENV KEY VALUE...` form.
fn pairs(rest: &str, old_form: bool) -> Option<Vec<(String, String)>> {
    let w = words(rest);
    if w.is_empty() {
        return None;
    }
    if !w[0].contains('=') {
        if !old_form {
            return None;
        }
        let (k, v) = rest.split_once(char::is_whitespace)?;
        let v = words(v).join(" ");
        return Some(vec![(k.to_string(), v)]);
    }
    w.into_iter()
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// A stage as the lines build it.
#[derive(Default)]
struct StageAcc {
    name: Option<Sp<String>>,
    from: Option<Sp<String>>,
    steps: Vec<Sp<RawStep>>,
    workdir: String,
    cmd: Option<Sp<RawCommand>>,
    entrypoint: Option<Sp<RawCommand>>,
    expose: Vec<Sp<String>>,
}

/// `$NAME` and `${NAME}` of a declared argument as `${NAME}` (what the builder replaces).
fn args_in(text: &str, declared: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..len];
        if len > 0 && declared.iter().any(|d| d == name) {
            out.push_str(&format!("${{{name}}}"));
            rest = &after[len..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn abs_in(workdir: &str, p: &str) -> String {
    if p.starts_with('/') || p.starts_with("${") {
        p.to_string()
    } else {
        let keep_slash = p.ends_with('/') || p == ".";
        let mut out = format!("{}/{}", workdir.trim_end_matches('/'), p);
        if p == "." {
            out = format!("{}/", workdir.trim_end_matches('/'));
        }
        if keep_slash && !out.ends_with('/') {
            out.push('/');
        }
        out
    }
}

/// Translate a Containerfile into the raw `[build]` table; every problem at its line.
pub fn translate(text: &str) -> (RawBuild, Vec<Diagnostic>) {
    let mut diags = Vec::new();
    let mut stages: Vec<StageAcc> = Vec::new();
    let mut args: Vec<RawEnv> = Vec::new();
    let mut declared: Vec<String> = Vec::new();
    let unsupported = |diags: &mut Vec<Diagnostic>, l: &Line, why: &str| {
        diags.push(
            Diagnostic::error(
                build_codes::CONTAINERFILE,
                format!("{} {why}", l.keyword),
            )
            .with_span(Some(l.span))
            .with_label("this line")
            .with_help("foxbox reads FROM, RUN, COPY, ADD (local files), ENV, ARG, WORKDIR, USER, LABEL, CMD, ENTRYPOINT and EXPOSE; write the rest as a Foxfile.toml"),
        );
    };
    for l in lines(text) {
        let sp = |v: String| Sp::new(v, l.span);
        if l.keyword != "FROM" && l.keyword != "ARG" && stages.is_empty() {
            diags.push(
                Diagnostic::error(
                    build_codes::CONTAINERFILE,
                    format!("{} before the first FROM", l.keyword),
                )
                .with_span(Some(l.span))
                .with_label("this line")
                .with_help("a Containerfile starts with FROM (only ARG may come before it)"),
            );
            continue;
        }
        let sub = |s: &str| args_in(s, &declared);
        match l.keyword.as_str() {
            "FROM" => {
                let (f, w) = flags(words(&l.rest));
                if let Some((k, _)) = f.first() {
                    unsupported(&mut diags, &l, &format!("--{k} is not supported"));
                    continue;
                }
                let (image, name) = match w.as_slice() {
                    [i] => (i.clone(), None),
                    [i, as_, n] if as_.eq_ignore_ascii_case("as") => {
                        (i.clone(), Some(n.to_ascii_lowercase()))
                    }
                    _ => {
                        unsupported(&mut diags, &l, "must be `FROM IMAGE [AS NAME]`");
                        continue;
                    }
                };
                // `${ARG}`s stay: the builder replaces them with the defaults or `--build-arg`s.
                let image = sub(&image);
                let index = stages.len().to_string();
                stages.push(StageAcc {
                    name: Some(sp(name.unwrap_or(index))),
                    from: Some(sp(image)),
                    workdir: "/".into(),
                    ..StageAcc::default()
                });
            }
            "ARG" => {
                let (k, v) = match l.rest.split_once('=') {
                    Some((k, v)) => (k.trim().to_string(), words(v).join(" ")),
                    None => (l.rest.trim().to_string(), String::new()),
                };
                if k.is_empty() || k.contains(char::is_whitespace) {
                    unsupported(&mut diags, &l, "must be `ARG NAME[=DEFAULT]`");
                    continue;
                }
                if !declared.contains(&k) {
                    declared.push(k.clone());
                    args.push(RawEnv {
                        key: sp(k),
                        value: sp(v),
                    });
                }
            }
            "RUN" => {
                let (f, _) = flags(words(&l.rest));
                let mut network = None;
                let mut cache = Vec::new();
                let mut body = l.rest.as_str();
                for (k, v) in &f {
                    match k.as_str() {
                        "network" => network = Some(sp(v.clone())),
                        "mount" => match cache_mount(v) {
                            Ok(mut c) => {
                                // A relative target is under the current WORKDIR, as BuildKit's.
                                let workdir =
                                    stages.last().map(|s| s.workdir.clone()).unwrap_or_default();
                                if let Some(t) = &mut c.target {
                                    t.value = abs_in(&workdir, &t.value);
                                }
                                cache.push(Sp::new(RawCache::Table(c), l.span))
                            }
                            Err(why) => unsupported(&mut diags, &l, &why),
                        },
                        _ => {
                            unsupported(&mut diags, &l, &format!("--{k} is not supported"));
                        }
                    }
                    // Past the flag in the text (flags have no spaces).
                    body = body.trim_start();
                    body = body.split_once(char::is_whitespace).map_or("", |x| x.1);
                }
                let run = match exec_form(body) {
                    Some(v) => RawCommand::Argv(v.into_iter().map(|a| sp(sub(&a))).collect()),
                    None => RawCommand::Shell(sub(body.trim())),
                };
                push(
                    &mut stages,
                    l.span,
                    RawStep {
                        run: Some(Sp::new(run, l.span)),
                        network,
                        cache: (!cache.is_empty()).then(|| Sp::new(cache, l.span)),
                        ..RawStep::default()
                    },
                );
            }
            "COPY" | "ADD" => {
                let all = match exec_form(&l.rest) {
                    Some(v) => v,
                    None => words(&l.rest),
                };
                let (f, mut w) = flags(all);
                let mut step = RawStep::default();
                let mut bad = false;
                for (k, v) in f {
                    match k.as_str() {
                        "from" => step.from = Some(sp(v.to_ascii_lowercase())),
                        "chown" => step.chown = Some(sp(sub(&v))),
                        "chmod" => step.chmod = Some(sp(v)),
                        _ => {
                            unsupported(&mut diags, &l, &format!("--{k} is not supported"));
                            bad = true;
                        }
                    }
                }
                if w.len() < 2 {
                    unsupported(&mut diags, &l, "needs a source and a destination");
                    continue;
                }
                if l.keyword == "ADD" {
                    if let Some(u) = w.iter().find(|s| s.contains("://")) {
                        unsupported(
                            &mut diags,
                            &l,
                            &format!(
                                "of a URL ({u}) is not supported: download it into the context"
                            ),
                        );
                        bad = true;
                    } else if step.from.is_none() {
                        // Local tar archives are unpacked, as Docker's ADD does.
                        step.extract = Some(Sp::new(true, l.span));
                    }
                }
                if bad {
                    continue;
                }
                let dest = w.pop().unwrap_or_default();
                let workdir = stages.last().map(|s| s.workdir.clone()).unwrap_or_default();
                step.dest = Some(sp(abs_in(&workdir, &sub(&dest))));
                let sources: Vec<Sp<String>> = w.iter().map(|s| sp(sub(s))).collect();
                step.copy = Some(Sp::new(sources, l.span));
                push(&mut stages, l.span, step);
            }
            "ENV" | "LABEL" => {
                let Some(p) = pairs(&l.rest, l.keyword == "ENV") else {
                    unsupported(&mut diags, &l, "must be KEY=VALUE pairs");
                    continue;
                };
                let p: Vec<RawEnv> = p
                    .into_iter()
                    .map(|(k, v)| RawEnv {
                        key: sp(k),
                        value: sp(sub(&v)),
                    })
                    .collect();
                let field = Some(Sp::new(p, l.span));
                let step = if l.keyword == "ENV" {
                    RawStep {
                        env: field,
                        ..RawStep::default()
                    }
                } else {
                    RawStep {
                        label: field,
                        ..RawStep::default()
                    }
                };
                push(&mut stages, l.span, step);
            }
            "WORKDIR" => {
                let Some(s) = stages.last_mut() else { continue };
                let w = abs_in(&s.workdir, &sub(l.rest.trim()));
                s.workdir = w.clone();
                push(
                    &mut stages,
                    l.span,
                    RawStep {
                        workdir: Some(sp(w)),
                        ..RawStep::default()
                    },
                );
            }
            "USER" => push(
                &mut stages,
                l.span,
                RawStep {
                    user: Some(sp(sub(l.rest.trim()))),
                    ..RawStep::default()
                },
            ),
            "CMD" | "ENTRYPOINT" => {
                let c = match exec_form(&l.rest) {
                    Some(v) => RawCommand::Argv(v.into_iter().map(&sp).collect()),
                    None => RawCommand::Shell(l.rest.clone()),
                };
                if let Some(s) = stages.last_mut() {
                    let c = Some(Sp::new(c, l.span));
                    if l.keyword == "CMD" {
                        s.cmd = c;
                    } else {
                        s.entrypoint = c;
                    }
                }
            }
            "EXPOSE" => {
                if let Some(s) = stages.last_mut() {
                    s.expose.extend(words(&l.rest).into_iter().map(&sp));
                }
            }
            "HEALTHCHECK" | "ONBUILD" | "STOPSIGNAL" | "SHELL" | "VOLUME" | "MAINTAINER" => {
                unsupported(&mut diags, &l, "is not supported");
            }
            _ => unsupported(&mut diags, &l, "is not an instruction foxbox knows"),
        }
    }
    let mut raw = RawBuild {
        args: (!args.is_empty()).then(|| Sp::new(args, Span::new(0, 0))),
        ..RawBuild::default()
    };
    let Some(last) = stages.pop() else {
        if !diags.iter().any(Diagnostic::is_error) {
            diags.push(
                Diagnostic::error(build_codes::CONTAINERFILE, "this Containerfile has no FROM")
                    .with_help("start it with e.g. `FROM busybox`"),
            );
        }
        return (raw, diags);
    };
    raw.from = last.from;
    raw.steps = last.steps;
    raw.cmd = last.cmd;
    raw.entrypoint = last.entrypoint;
    raw.expose = (!last.expose.is_empty()).then(|| Sp::new(last.expose, Span::new(0, 0)));
    raw.stage = stages
        .into_iter()
        .map(|s| {
            let span = s.from.as_ref().map_or(Span::new(0, 0), |f| f.span);
            Sp::new(
                RawStage {
                    name: s.name,
                    from: s.from,
                    steps: s.steps,
                    ..RawStage::default()
                },
                span,
            )
        })
        .collect();
    (raw, diags)
}

fn push(stages: &mut [StageAcc], span: Span, step: RawStep) {
    if let Some(s) = stages.last_mut() {
        s.steps.push(Sp::new(step, span));
    }
}

/// `RUN --mount=type=cache,target=PATH[,id=ID][,sharing=shared|locked|private]` as a `cache`
/// table; other mount types, and options foxbox does not honour, are refused.
fn cache_mount(v: &str) -> Result<RawCacheTable, String> {
    let mut c = RawCacheTable::default();
    let mut kind = None;
    let at = Span::new(0, 0);
    for opt in v.split(',') {
        let (k, x) = opt.split_once('=').unwrap_or((opt, ""));
        match k {
            "type" => kind = Some(x.to_string()),
            "target" | "dst" | "destination" => c.target = Some(Sp::new(x.to_string(), at)),
            "id" => c.id = Some(Sp::new(x.to_string(), at)),
            "sharing" => c.sharing = Some(Sp::new(x.to_string(), at)),
            "uid" | "gid" => {
                let n = x
                    .parse::<i64>()
                    .map_err(|_| format!("--mount {k}=`{x}` is not a number"))?;
                let v = Some(Sp::new(n, at));
                if k == "uid" {
                    c.uid = v;
                } else {
                    c.gid = v;
                }
            }
            "mode" => c.mode = Some(Sp::new(x.to_string(), at)),
            other => {
                return Err(format!(
                    "--mount option `{other}` is not supported (cache mounts take target, id, sharing, uid, gid and mode)"
                ))
            }
        }
    }
    match kind.as_deref() {
        Some("cache") => Ok(c),
        Some(t) => Err(format!(
            "--mount=type={t} is not supported (only type=cache)"
        )),
        None => Err("--mount without type=cache is not supported (bind mounts are not)".into()),
    }
}

/// Read a Containerfile into a recipe (relative paths from `base`), with every diagnostic.
pub fn check_str(text: &str, base: &Path) -> Loaded {
    let (raw, mut diags) = translate(text);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(diags);
    }
    let (recipe, more) = crate::spec::build::resolve(&Sp::new(raw, Span::new(0, 0)), base);
    diags.extend(more);
    match recipe {
        Some(r) if !diags.iter().any(Diagnostic::is_error) => Ok((r, diags)),
        _ => Err(diags),
    }
}

/// [`check_str`] on a file, with the origin its diagnostics render against.
pub fn load(path: &Path) -> (Loaded, crate::plan::Origin) {
    let base = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let base = std::fs::canonicalize(base).unwrap_or_else(|_| base.to_path_buf());
    let (loaded, text) = match std::fs::read_to_string(path) {
        Ok(t) => (check_str(&t, &base), t),
        Err(e) => (
            Err(vec![Diagnostic::error(
                crate::spec::codes::READ,
                format!("cannot read {}: {e}", path.display()),
            )]),
            String::new(),
        ),
    };
    let origin = crate::plan::Origin::Spec {
        path: path.to_path_buf(),
        dir: base,
        text,
    };
    (loaded, origin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::build::{Action, From, Sharing};

    #[test]
    fn lines_join_continuations_and_skip_comments() {
        let t = "# c\nFROM busybox AS b\nRUN echo a \\\n  # inner\n  && echo b\n\nenv A=1\n";
        let l = lines(t);
        let k: Vec<(&str, &str)> = l
            .iter()
            .map(|l| (l.keyword.as_str(), l.rest.as_str()))
            .collect();
        assert_eq!(
            k,
            [
                ("FROM", "busybox AS b"),
                ("RUN", "echo a && echo b"),
                ("ENV", "A=1")
            ]
        );
        assert_eq!(&t[l[0].span.start..l[0].span.end], "FROM busybox AS b");
    }

    #[test]
    fn words_and_pairs() {
        assert_eq!(words(r#"a "b c" 'd\e' f\ g"#), ["a", "b c", r"d\e", "f g"]);
        assert_eq!(
            pairs(r#"A=1 B="two words""#, true).unwrap(),
            [("A".into(), "1".into()), ("B".into(), "two words".into())]
        );
        assert_eq!(
            pairs("PATH /usr/bin:/bin", true).unwrap(),
            [("PATH".into(), "/usr/bin:/bin".into())]
        );
    }

    #[test]
    fn a_multi_stage_file_is_the_toml_recipe() {
        let t = r#"ARG V=1
FROM busybox AS build
ARG V
WORKDIR /src
COPY . .
RUN ["sh", "-c", "echo $V > out"]
FROM busybox
COPY --from=build --chown=1:2 /src/out /app/
ENTRYPOINT ["cat"]
CMD ["/app/out"]
EXPOSE 8080
"#;
        let (r, d) = check_str(t, Path::new("/ctx"))
            .map_err(|d| format!("{d:?}"))
            .unwrap();
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(r.stages.len(), 2);
        assert_eq!(r.stages[1].from, From::Image("busybox".into()));
        assert_eq!(r.args, [("V".to_string(), "1".to_string())]);
        let a: Vec<&Action> = r.stages[0].steps.iter().map(|s| &s.action).collect();
        assert!(matches!(a[0], Action::Workdir(w) if w == "/src"));
        assert!(matches!(a[1], Action::Copy { dest, .. } if dest == "/src/"));
        assert!(
            matches!(a[2], Action::Run { argv, .. } if argv[2] == "echo ${V} > out"),
            "{a:?}"
        );
        assert!(matches!(
            &r.stages[1].steps[0].action,
            Action::Copy { from: Some(f), chown: Some((1, 2)), .. } if f == "build"
        ));
        assert_eq!(r.config.entrypoint, Some(vec!["cat".to_string()]));
        assert_eq!(r.config.expose, ["8080/tcp"]);
    }

    #[test]
    fn cache_mounts_of_run() {
        let t = "FROM busybox\nWORKDIR /src\nRUN --mount=type=cache,target=/var/cache/apt,sharing=locked --mount=type=cache,target=.cache,id=c --network=host make\n";
        let (r, _) = check_str(t, Path::new("/"))
            .map_err(|d| format!("{d:?}"))
            .unwrap();
        let Action::Run {
            argv,
            network,
            cache,
        } = &r.stages[0].steps[1].action
        else {
            panic!("{:?}", r.stages[0].steps);
        };
        assert_eq!(argv[2], "make");
        assert_eq!(network, "host");
        let got: Vec<(&str, &str, Sharing)> = cache
            .iter()
            .map(|c| (c.target.as_str(), c.id.as_str(), c.sharing))
            .collect();
        assert_eq!(
            got,
            [
                ("/var/cache/apt", "/var/cache/apt", Sharing::Locked),
                ("/src/.cache", "c", Sharing::Shared)
            ]
        );
    }

    #[test]
    fn unsupported_lines_are_named() {
        let t = "FROM busybox\nHEALTHCHECK CMD true\nADD http://x/y /y\nRUN --mount=type=bind,target=/c true\n";
        let d = check_str(t, Path::new("/")).unwrap_err();
        let msgs: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(d.len(), 3, "{msgs:?}");
        assert!(msgs[0].contains("HEALTHCHECK is not supported"));
        assert!(msgs[1].contains("URL"));
        assert!(msgs[2].contains("--mount"));
        assert_eq!(
            d[0].span.map(|s| &t[s.start..s.end]),
            Some("HEALTHCHECK CMD true")
        );
    }
}
