//! `recdb`: the command line and shell of the recdb embedded recommender database.
//! Everything goes through the public API of the `recdb` library.

// First: its print macros replace std's in every module below (see pipe.rs).
#[macro_use]
mod pipe;
// Every module but `shell` and `complete` is also included by path in
// fuzz/fuzz_targets/shell_parse.rs. First the grammar, the session and dispatch; then one
// file per command group; then the helpers.
mod args;
mod dispatch;
mod grammar;
mod session;

mod admin_cmds;
mod data_cmds;
mod demo;
mod eval_cmds;
mod find_cmds;
mod index_cmds;
mod query_cmds;
mod table_cmds;
mod text_cmds;
mod train_cmds;

mod complete;
// `recdb serve` and `recdb --connect` (cargo feature `serve`, on by default).
#[cfg(feature = "serve")]
mod connect;
mod import_note;
mod item2vec_args;
mod output;
mod progress;
#[cfg(feature = "serve")]
mod serve;
mod shell;
mod split;
mod train_help;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use grammar::Command;
use output::Mode;
use session::{RunMode, Session};

/// recdb: an embedded recommender database.
///
/// With a command: run it. With `-c "cmd; cmd"`: run those. With neither: an
/// interactive shell on a terminal, or one command per line from piped stdin.
#[derive(Debug, Parser)]
#[command(name = "recdb", version, about, long_about = None)]
struct Cli {
    /// The database directory (required by everything but `demo` and `eval`).
    #[arg(long, global = false)]
    db: Option<PathBuf>,
    /// Threads of the database's pool (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// How results are printed.
    #[arg(long, value_enum, default_value_t = Mode::Table)]
    format: Mode,
    /// Run `;`-separated commands and exit (non-zero on the first error).
    #[arg(short = 'c', value_name = "COMMANDS", conflicts_with = "cmd")]
    commands: Option<String>,
    /// Run the commands on a `recdb serve` server (http://HOST:PORT) instead of a
    /// database directory: with `-c`, from piped stdin, or interactively.
    #[cfg(feature = "serve")]
    #[arg(long, value_name = "URL", conflicts_with_all = ["db", "cmd"])]
    connect: Option<String>,
    /// With --connect: a file holding the server's bearer token.
    #[cfg(feature = "serve")]
    #[arg(long, value_name = "FILE", requires = "connect")]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Option<Top>,
}

/// The shell's commands, and `serve`, which only the command line runs.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // one value a process, parsed once
enum Top {
    #[command(flatten)]
    Shell(Command),
    /// Serve the database over HTTP/JSON: `serve --db PATH [--addr 127.0.0.1:7878]
    /// [--token-file F]` (docs/SERVER.md); `recdb --connect URL` is its shell.
    #[cfg(feature = "serve")]
    Serve(serve::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(feature = "serve")]
    if let Some(url) = &cli.connect {
        let ok = connect::Client::new(url, cli.token_file.as_deref(), cli.format)
            .and_then(|c| connect::run(&c, cli.commands.as_deref()));
        return exit_code(ok.unwrap_or_else(|e| report(Err(e))));
    }
    let cmd = match cli.cmd {
        Some(Top::Shell(c)) => Some(c),
        #[cfg(feature = "serve")]
        Some(Top::Serve(mut a)) => {
            a.db = a.db.or(cli.db);
            a.threads = a.threads.or(cli.threads);
            return exit_code(report(serve::run(a)));
        }
        None => None,
    };
    let one_shot = cmd.is_some() || cli.commands.is_some();
    let run_mode = if one_shot {
        RunMode::OneShot
    } else {
        RunMode::Shell
    };
    let mut s = Session::new(cli.db, cli.threads, cli.format, run_mode);
    let ok = if let Some(cmd) = cmd {
        report(dispatch::run(&mut s, cmd))
    } else if let Some(text) = cli.commands {
        report(dispatch::run_text(&mut s, &text))
    } else if std::io::stdin().is_terminal() {
        report(shell::interactive(&mut s))
    } else {
        match shell::run_lines(&mut s, std::io::stdin().lock()) {
            Ok(0) => true,
            Ok(n) => {
                eprintln!("{n} command(s) failed");
                false
            }
            Err(e) => report(Err(e)),
        }
    };
    s.finish_background();
    exit_code(ok)
}

fn exit_code(ok: bool) -> ExitCode {
    if pipe::closed() {
        ExitCode::from(pipe::CLOSED_EXIT)
    } else if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn report(r: anyhow::Result<()>) -> bool {
    match r {
        Ok(()) => true,
        Err(e) => {
            eprintln!("error: {}", output::escape_text(&e.to_string()));
            false
        }
    }
}
