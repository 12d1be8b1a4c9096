//! `foxbox test [SPEC]...`: each `[[test]]` of a spec in a fresh box from the spec's plan.
//!
//! Each test is a `foxbox up --rm SPEC -- CMD` of this same binary, so it goes through the
//! one path (spec, plan, runner) with the spec's isolation, limits and mounts, and its output
//! is captured without touching the runner. A test that outlives its timeout is killed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use foxbox::diag::{self, RenderOptions, Source};
use foxbox::spec::{self, smoke::SmokeTest};

use super::ctx::{CmdResult, Ctx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum TestFormat {
    #[default]
    Human,
    /// Test Anything Protocol, version 13.
    Tap,
    /// JUnit XML (one testsuite per spec), printed when all tests have run.
    Junit,
}

#[derive(Debug, Args)]
#[command(after_long_help = "\
A test in a spec:

  [[test]]
  name = \"serves the page\"
  command = [\"wget\", \"-q\", \"-O-\", \"http://127.0.0.1/\"]   # or a string for /bin/sh -c
  expect.exit = 0                                          # the default
  expect.stdout.contains = \"fox\"                           # or expect.stdout.matches = \"regex\"
  expect.files = [{ path = \"/var/log/x\", contains = \"ok\" }]  # needs /bin/sh and grep
  timeout = \"10s\"                                          # default 60s

`--format junit` prints JUnit XML (CI systems read it) once all tests have run.

Exit status: 0 when every test passes, 1 when one fails, 125 when a spec cannot be read or
has errors.")]
pub struct TestArgs {
    /// Spec files (default: ./Foxbox.toml).
    #[arg(value_name = "SPEC")]
    pub specs: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TestFormat::Human)]
    pub format: TestFormat,
    /// Run up to N tests of a spec at once (each in its own box); they are reported in order.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub parallel: u16,
}

/// What a test run showed.
struct Outcome {
    passed: bool,
    took: Duration,
    /// Why it failed, one line each.
    failures: Vec<String>,
}

/// Marks where a test's file checks start in its stderr (after the command's own).
const FILES_MARK: &str = "--foxbox-test-files-7c1e--";

pub fn run(a: TestArgs, ctx: &Ctx) -> CmdResult {
    let specs = if a.specs.is_empty() {
        vec![PathBuf::from("Foxbox.toml")]
    } else {
        a.specs
    };
    let opts = RenderOptions {
        color: ctx.color_stderr(),
        ..RenderOptions::default()
    };
    let mut loaded = Vec::new();
    for path in &specs {
        let name = path.display().to_string();
        let text = match spec::read_spec(path) {
            Ok(t) => t,
            Err(e) => {
                super::ctx::err(&format!("foxbox test: cannot read {name}: {e}\n"));
                return Ok(125);
            }
        };
        let (plan, diags) = spec::check_str(&text, path, &spec::spec_dir(path));
        if plan.is_none() {
            let src = Source {
                name: &name,
                text: Some(&text),
            };
            super::ctx::err(&diag::render_source(&diags, src, opts));
            return Ok(125);
        }
        let files = spec::composition(&text, path, &spec::spec_dir(path));
        let raw = spec::parse::from_tree(&files.merged().tree).0;
        let tests = spec::smoke::resolve(&raw.tests).0;
        loaded.push((path.clone(), files, tests));
    }
    let exe = std::env::current_exe()
        .map_err(|e| failure!(foxbox::diag::codes::cli::PATHS, "cannot find foxbox: {e}"))?;
    let total: usize = loaded.iter().map(|(_, _, t)| t.len()).sum();
    if a.format == TestFormat::Tap {
        super::ctx::out(&format!("TAP version 13\n1..{total}\n"));
    }
    let (mut n, mut failed) = (0usize, 0usize);
    let started = Instant::now();
    let mut junit = Vec::new();
    for (path, files, tests) in &loaded {
        let name = path.display().to_string();
        if tests.is_empty() && a.format == TestFormat::Human {
            super::ctx::out(&format!("{name}: no [[test]] entries\n"));
        }
        let (mut spec_failed, spec_started) = (0usize, Instant::now());
        let mut cases = Vec::new();
        // One at a time, each reported when it ends; in parallel, reported in order at the end.
        let outcomes: Box<dyn Iterator<Item = (&SmokeTest, Outcome)>> = if a.parallel > 1 {
            let all = run_parallel(&exe, ctx, path, tests, usize::from(a.parallel));
            Box::new(tests.iter().zip(all))
        } else {
            Box::new(tests.iter().map(|t| (t, run_one(&exe, ctx, path, t))))
        };
        for (t, o) in outcomes {
            n += 1;
            // A test from a base is at the base's line.
            let (file, line) = files.place(t.span).unwrap_or_else(|| (name.clone(), 0));
            if !o.passed {
                failed += 1;
                spec_failed += 1;
            }
            let secs = o.took.as_secs_f64();
            match a.format {
                TestFormat::Human => {
                    let mut s = format!(
                        "{} {} ({secs:.2}s)\n",
                        if o.passed { "ok  " } else { "FAIL" },
                        t.name
                    );
                    for f in &o.failures {
                        s.push_str(&format!("    {f}\n"));
                    }
                    if !o.passed {
                        s.push_str(&format!("    at {file}:{line}\n"));
                    }
                    super::ctx::out(&s);
                }
                TestFormat::Tap => {
                    let mut s = format!(
                        "{} {n} - {} # time={secs:.3}s\n",
                        if o.passed { "ok" } else { "not ok" },
                        t.name.replace('#', "\\#")
                    );
                    if !o.passed {
                        s.push_str("  ---\n  failures:\n");
                        for f in &o.failures {
                            s.push_str(&format!("    - {}\n", yaml_str(f)));
                        }
                        s.push_str(&format!(
                            "  at: {}\n  ...\n",
                            yaml_str(&format!("{file}:{line}"))
                        ));
                    }
                    super::ctx::out(&s);
                }
                TestFormat::Junit => cases.push(junit_case(&name, &file, line, t, &o)),
            }
        }
        if a.format == TestFormat::Junit {
            junit.push(format!(
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{spec_failed}\" errors=\"0\" time=\"{:.3}\">\n{}  </testsuite>\n",
                xml(&name),
                tests.len(),
                spec_started.elapsed().as_secs_f64(),
                cases.concat()
            ));
        }
        if a.format == TestFormat::Human && !tests.is_empty() {
            super::ctx::out(&format!(
                "{name}: {} tests, {} passed, {spec_failed} failed ({:.2}s)\n",
                tests.len(),
                tests.len() - spec_failed,
                spec_started.elapsed().as_secs_f64()
            ));
        }
    }
    if a.format == TestFormat::Tap {
        super::ctx::out(&format!(
            "# {total} tests, {} passed, {failed} failed ({:.2}s)\n",
            total - failed,
            started.elapsed().as_secs_f64()
        ));
    }
    if a.format == TestFormat::Junit {
        super::ctx::out(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"foxbox test\" tests=\"{total}\" failures=\"{failed}\" errors=\"0\" time=\"{:.3}\">\n{}</testsuites>\n",
            started.elapsed().as_secs_f64(),
            junit.concat()
        ));
    }
    Ok(u8::from(failed > 0))
}

/// One `<testcase>`: a failure's message is its first reason, its text all of them. Its class
/// is the spec run; its file the one that wrote the test (a base's, for an inherited test).
fn junit_case(spec: &str, file: &str, line: usize, t: &SmokeTest, o: &Outcome) -> String {
    let head = format!(
        "    <testcase name=\"{}\" classname=\"{}\" file=\"{}\" line=\"{line}\" time=\"{:.3}\"",
        xml(&t.name),
        xml(spec),
        xml(file),
        o.took.as_secs_f64()
    );
    if o.passed {
        return format!("{head}/>\n");
    }
    let first = o.failures.first().map_or("", String::as_str);
    let all = format!("{}\nat {file}:{line}", o.failures.join("\n"));
    format!(
        "{head}>\n      <failure message=\"{}\" type=\"expectation\">{}</failure>\n    </testcase>\n",
        xml(first),
        xml(&all)
    )
}

/// Text for XML attributes and content: escaped, without the characters XML 1.0 cannot hold.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// Every test of a spec on `workers` threads; the outcomes in the tests' order.
fn run_parallel(
    exe: &Path,
    ctx: &Ctx,
    spec: &Path,
    tests: &[SmokeTest],
    workers: usize,
) -> Vec<Outcome> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<Option<Outcome>>> = Mutex::new(tests.iter().map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..workers.min(tests.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(t) = tests.get(i) else { break };
                let o = run_one(exe, ctx, spec, t);
                if let Ok(mut d) = done.lock() {
                    d[i] = Some(o);
                }
            });
        }
    });
    done.into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|o| {
            o.unwrap_or(Outcome {
                passed: false,
                took: Duration::ZERO,
                failures: vec!["not run (a worker failed)".into()],
            })
        })
        .collect()
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Single-quoted for /bin/sh.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The argv the box runs: the test's, followed (when it expects files) by a check of each
/// file, written to stderr after [`FILES_MARK`], keeping the command's exit code.
fn box_args(t: &SmokeTest) -> Vec<String> {
    if t.files.is_empty() {
        return t.args.clone();
    }
    let mut script = String::from("\"$@\"; rc=$?\n{ echo; echo ");
    script.push_str(FILES_MARK);
    script.push('\n');
    for f in &t.files {
        let p = sh_quote(&f.path);
        match &f.contains {
            Some(c) => script.push_str(&format!(
                "if [ ! -e {p} ]; then echo missing; elif grep -qF -e {} {p}; then echo ok; else echo lacks; fi\n",
                sh_quote(c)
            )),
            None => script.push_str(&format!("if [ -e {p} ]; then echo ok; else echo missing; fi\n")),
        }
    }
    script.push_str("} >&2\nexit $rc\n");
    let mut args = vec!["/bin/sh".into(), "-c".into(), script, "sh".into()];
    args.extend(t.args.iter().cloned());
    args
}

fn spawn(exe: &Path, ctx: &Ctx, spec: &Path, t: &SmokeTest) -> std::io::Result<Child> {
    let mut c = Command::new(exe);
    if let Some(root) = &ctx.root {
        c.arg("--root").arg(root);
    }
    // A test's command is the whole argv: the spec's or the image's entrypoint is not put
    // before it.
    c.args(["--color", "never", "up", "--rm", "--entrypoint", ""])
        .arg(spec)
        .arg("--")
        .args(box_args(t))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}

fn reader(r: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// How much of an output a failure shows: its end, where errors are.
fn excerpt(s: &str) -> String {
    const MAX: usize = 300;
    let t = s.trim_end();
    if t.len() <= MAX {
        format!("{t:?}")
    } else {
        let mut start = t.len() - MAX;
        while !t.is_char_boundary(start) {
            start += 1;
        }
        format!("...{:?} ({} bytes)", &t[start..], t.len())
    }
}

fn run_one(exe: &Path, ctx: &Ctx, spec: &Path, t: &SmokeTest) -> Outcome {
    let started = Instant::now();
    let fail = |why: String| Outcome {
        passed: false,
        took: started.elapsed(),
        failures: vec![why],
    };
    let mut child = match spawn(exe, ctx, spec, t) {
        Ok(c) => c,
        Err(e) => return fail(format!("cannot start foxbox: {e}")),
    };
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if started.elapsed() >= t.timeout => {
                // Killing `foxbox up` ends its box: the box dies with its supervisor.
                let _ = child.kill();
                timed_out = true;
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return fail(format!("cannot wait for foxbox: {e}")),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let mut stderr = err.join().unwrap_or_default();
    let took = started.elapsed();
    if timed_out {
        return Outcome {
            passed: false,
            took,
            failures: vec![format!(
                "timed out after {}",
                humantime::format_duration(t.timeout)
            )],
        };
    }
    let code = status.and_then(|s| s.code()).unwrap_or(-1);
    let mut failures = Vec::new();
    let mut file_results = Vec::new();
    if !t.files.is_empty() {
        if let Some(at) = stderr.rfind(&format!("\n{FILES_MARK}\n")) {
            file_results = stderr[at + FILES_MARK.len() + 2..]
                .lines()
                .map(str::to_string)
                .collect();
            stderr.truncate(at);
        }
    }
    if code != t.exit {
        failures.push(format!(
            "expected exit {}, got {code}; stderr: {}",
            t.exit,
            excerpt(&stderr)
        ));
    }
    for (what, text, matches) in [
        ("stdout", &stdout, &t.stdout),
        ("stderr", &stderr, &t.stderr),
    ] {
        for m in matches {
            if !m.holds(text) {
                failures.push(format!(
                    "expected {what} that {}, got {}",
                    m.describe(),
                    excerpt(text)
                ));
            }
        }
    }
    for (i, f) in t.files.iter().enumerate() {
        match file_results.get(i).map(String::as_str) {
            Some("ok") => {}
            Some("lacks") => failures.push(format!(
                "expected {} to contain {:?}",
                f.path,
                f.contains.as_deref().unwrap_or("")
            )),
            Some("missing") => failures.push(format!("expected {} to exist", f.path)),
            _ => failures.push(format!(
                "cannot check {} (the box needs /bin/sh and grep)",
                f.path
            )),
        }
    }
    Outcome {
        passed: failures.is_empty(),
        took,
        failures,
    }
}
