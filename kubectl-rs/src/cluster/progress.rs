//! Step lines for long commands, as kind prints them: on a terminal a spinner that
//! becomes ` ✓ step` (or ` ✗ step`) when the step ends; elsewhere (CI logs, pipes) a
//! plain ` • step ...` line when it starts and ` ✓ step` when it ends, so a log shows
//! where a command stopped without any terminal control codes in it.
//!
//! Everything goes to stderr: stdout is kept for what a script might read.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const FRAMES: [&str; 10] = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"];
const FRAME_INTERVAL: Duration = Duration::from_millis(80);

/// Prints steps; one at a time.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    tty: bool,
}

impl Progress {
    /// Spinners when stderr is a terminal, plain lines otherwise.
    pub fn detect() -> Self {
        Self { tty: std::io::stderr().is_terminal() }
    }

    /// A line outside any step (the headline, a note).
    pub fn line(&self, text: &str) {
        crate::output::eprint_line(text);
    }

    /// Starts a step; end it with [`Step::done`] or [`Step::fail`] (dropping it
    /// counts as a failure, so an early `?` return still ends the line).
    pub fn step(&self, text: impl Into<String>) -> Step {
        let text = text.into();
        let spinner = if self.tty {
            let stop = Arc::new(AtomicBool::new(false));
            let (flag, label) = (stop.clone(), text.clone());
            // A thread of its own: the steps block on process starts and on the
            // single-threaded async runtime, which must not stop the animation.
            let handle = std::thread::spawn(move || {
                let mut i = 0;
                while !flag.load(Ordering::Relaxed) {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K {} {label} ", FRAMES[i % FRAMES.len()]);
                    let _ = err.flush();
                    drop(err);
                    i += 1;
                    std::thread::sleep(FRAME_INTERVAL);
                }
            });
            Some((stop, handle))
        } else {
            crate::output::eprint_line(&format!(" • {text} ..."));
            None
        };
        Step { text, tty: self.tty, spinner, started: Instant::now(), ended: false }
    }
}

/// A step being shown.
#[derive(Debug)]
pub struct Step {
    text: String,
    tty: bool,
    spinner: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    started: Instant,
    ended: bool,
}

impl Step {
    /// Ends the step as done, with how long it took.
    pub fn done(mut self) {
        self.finish("✓");
    }

    /// Ends the step as failed.
    pub fn fail(mut self) {
        self.finish("✗");
    }

    fn finish(&mut self, mark: &str) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        if let Some((stop, handle)) = self.spinner.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
        let took = self.started.elapsed().as_secs_f64();
        let line = format!(" {mark} {} ({took:.1}s)", self.text);
        if self.tty {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "\r\x1b[2K{line}");
        } else {
            crate::output::eprint_line(&line);
        }
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.finish("✗");
    }
}
