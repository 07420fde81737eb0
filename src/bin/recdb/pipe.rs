//! Printing when stdout or stderr may be a pipe whose reader has gone (`recdb … | head`).
//!
//! `main` declares this module first with `#[macro_use]`, so the `print!`, `println!`,
//! `eprint!` and `eprintln!` of every other module are the ones below: instead of
//! panicking on a closed stream ("failed printing to stdout"), they drop the text and
//! remember it. The runners then start no further command, let durable work finish (a
//! running job, the index builds a publish started) and the process exits with
//! [`CLOSED_EXIT`].

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// 128 + SIGPIPE: what a shell reports for a tool that a closed pipe stopped.
pub const CLOSED_EXIT: u8 = 141;

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Whether stdout or stderr has been found closed.
pub fn closed() -> bool {
    CLOSED.load(Ordering::Relaxed)
}

/// Output being captured on this thread instead of printed: stdout's, stderr's, and the
/// byte limit of each.
struct Capture {
    out: String,
    err: String,
    limit: usize,
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Capture>> = const { std::cell::RefCell::new(None) };
}

/// Run `f` with this thread's printing captured (the server's `/v1/shell`): its result,
/// then what it printed to stdout and to stderr, each cut at `limit` bytes.
#[allow(dead_code)] // only `serve` (a cargo feature) captures
pub fn capture<R>(limit: usize, f: impl FnOnce() -> R) -> (R, String, String) {
    /// Ends the capture even if `f` panics (the thread may run other work next).
    struct Reset;
    impl Drop for Reset {
        fn drop(&mut self) {
            CAPTURE.with(|c| c.borrow_mut().take());
        }
    }
    CAPTURE.with(|c| {
        *c.borrow_mut() = Some(Capture {
            out: String::new(),
            err: String::new(),
            limit,
        })
    });
    let reset = Reset;
    let r = f();
    let c = CAPTURE.with(|c| c.borrow_mut().take());
    drop(reset);
    let c = c.unwrap_or(Capture {
        out: String::new(),
        err: String::new(),
        limit,
    });
    (r, c.out, c.err)
}

/// Whether this thread's printing is being captured.
pub fn capturing() -> bool {
    CAPTURE.with(|c| c.borrow().is_some())
}

/// Append to the capture, if one is on; false when there is none.
fn captured(to_err: bool, text: std::fmt::Arguments<'_>) -> bool {
    CAPTURE.with(|c| {
        let mut c = c.borrow_mut();
        let Some(c) = c.as_mut() else { return false };
        let limit = c.limit;
        let buf = if to_err { &mut c.err } else { &mut c.out };
        if buf.len() < limit {
            use std::fmt::Write as _;
            let _ = buf.write_fmt(text);
            if buf.len() >= limit {
                let mut cut = limit;
                while !buf.is_char_boundary(cut) {
                    cut -= 1;
                }
                buf.truncate(cut);
                buf.push_str("\n[output cut at the server's limit]\n");
            }
        }
        true
    })
}

fn write(mut w: impl Write, text: std::fmt::Arguments<'_>) {
    if let Err(e) = w.write_fmt(text).and_then(|()| w.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
        }
    }
}

pub fn out(text: std::fmt::Arguments<'_>) {
    if captured(false, text) {
        return;
    }
    write(std::io::stdout().lock(), text);
}

pub fn err(text: std::fmt::Arguments<'_>) {
    if captured(true, text) {
        return;
    }
    write(std::io::stderr().lock(), text);
}

macro_rules! print {
    ($($t:tt)*) => { $crate::pipe::out(format_args!($($t)*)) };
}

macro_rules! println {
    () => { $crate::pipe::out(format_args!("\n")) };
    ($($t:tt)*) => { $crate::pipe::out(format_args!("{}\n", format_args!($($t)*))) };
}

#[allow(unused_macros)] // here so that a future `eprint!` cannot panic either
macro_rules! eprint {
    ($($t:tt)*) => { $crate::pipe::err(format_args!($($t)*)) };
}

macro_rules! eprintln {
    () => { $crate::pipe::err(format_args!("\n")) };
    ($($t:tt)*) => { $crate::pipe::err(format_args!("{}\n", format_args!($($t)*))) };
}
