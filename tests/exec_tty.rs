//! A terminal session driven through a real pty (tmux), as root and as the unprivileged user:
//! the box gets a pty of its own devpts, keystrokes go in, the window size follows, ^C reaches
//! the fox's foreground job, and the exit code comes back.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use common::{busybox_tarball, foxbox_bin, Env, Who};

struct Tmux<'a> {
    env: &'a Env,
    socket: String,
}

impl Tmux<'_> {
    fn cmd(&self, args: &[&str]) -> Output {
        self.env
            .command("tmux")
            .env("TMUX_TMPDIR", &self.env.dir)
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("run tmux")
    }

    fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "t"];
        a.extend(keys);
        assert!(self.cmd(&a).status.success());
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "t"]).stdout).into_owned()
    }

    /// Wait until the screen shows `want` (a line containing it).
    fn expect(&self, want: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.screen();
            if s.lines().any(|l| l.contains(want)) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: never saw {want:?} on the screen:\n{s}",
                self.env.who
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux<'_> {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

#[test]
fn a_tty_session_through_a_real_pty() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let tmux = Tmux {
            env: &env,
            socket: format!("fb-{}", std::process::id()),
        };
        let cmd = format!(
            "{} --log-level error run -t {} sh; echo EXITED=$?; sleep 60",
            foxbox_bin().display(),
            busybox_tarball().display()
        );
        let out = tmux.cmd(&[
            "new-session",
            "-d",
            "-s",
            "t",
            "-x",
            "100",
            "-y",
            "30",
            &cmd,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux.expect("/ #");
        // The pty belongs to the box's own devpts, and it is the shell's controlling tty.
        tmux.keys(&[
            "tty; stty size; echo $((6*7)); ls /dev/pts | tr '\\n' ' '; echo; echo mark-$((1+1))",
            "Enter",
        ]);
        let s = tmux.expect("mark-2");
        assert!(s.contains("/dev/pts/0"), "{who:?}:\n{s}");
        assert!(s.contains("30 100"), "{who:?}:\n{s}");
        assert!(s.contains("0 ptmx"), "{who:?}:\n{s}");
        // The window size follows the caller's terminal.
        assert!(tmux
            .cmd(&["resize-window", "-t", "t", "-x", "80", "-y", "20"])
            .status
            .success());
        std::thread::sleep(Duration::from_millis(200));
        tmux.keys(&["stty size", "Enter"]);
        tmux.expect("20 80");
        // ^C interrupts the foreground job inside the box, not foxbox.
        tmux.keys(&["sleep 100", "Enter"]);
        std::thread::sleep(Duration::from_millis(300));
        tmux.keys(&["C-c"]);
        tmux.keys(&["echo after-sleep-$?", "Enter"]);
        tmux.expect("after-sleep-130");
        tmux.keys(&["exit 5", "Enter"]);
        tmux.expect("EXITED=5");
    }
}

fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // A zombie waiting for the host's init to reap it has ended too.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn when_the_terminal_hangs_up_the_box_ends() {
    for who in Who::BOTH {
        if !who.available() {
            continue;
        }
        let env = Env::new(who);
        let tmux = Tmux {
            env: &env,
            socket: format!("fb-hup-{}", std::process::id()),
        };
        let cmd = format!(
            "exec {} --log-level error run -t {} sh",
            foxbox_bin().display(),
            busybox_tarball().display()
        );
        let out = tmux.cmd(&["new-session", "-d", "-s", "t", &cmd]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        tmux.expect("/ #");
        let pane = tmux.cmd(&["list-panes", "-t", "t", "-F", "#{pane_pid}"]);
        let pid: u32 = String::from_utf8_lossy(&pane.stdout)
            .trim()
            .parse()
            .unwrap();
        assert!(!gone(pid));
        tmux.cmd(&["kill-server"]);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !gone(pid) {
            assert!(
                Instant::now() < deadline,
                "{who:?}: foxbox outlived its terminal"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
