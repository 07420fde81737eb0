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

fn write(mut w: impl Write, text: std::fmt::Arguments<'_>) {
    if let Err(e) = w.write_fmt(text).and_then(|()| w.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            CLOSED.store(true, Ordering::Relaxed);
        }
    }
}

pub fn out(text: std::fmt::Arguments<'_>) {
    write(std::io::stdout().lock(), text);
}

pub fn err(text: std::fmt::Arguments<'_>) {
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
