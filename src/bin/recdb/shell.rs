//! The interactive shell and the line-by-line runner for piped stdin and `.read`.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{anyhow, Result};
use clap::CommandFactory;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::Editor;

use crate::dispatch;
use crate::grammar::Line;
use crate::output::escape_text;
use crate::session::Session;
use crate::split::split_words;

const META_HELP: &str = "\
Shell commands:
  .help                  this help (and `help COMMAND` / `COMMAND --help`)
  .mode table|json|csv   how results are printed
  .open PATH             switch to another database
  .read FILE             run the commands in FILE (nested at most 16 deep, no cycles)
  .quit, .exit           leave (also `quit`, `exit`, Ctrl-D)
Commands may be separated by `;`. Lines starting with `#` are comments.
Tab completes command names.
";

/// How deep `.read` may nest: a script reading a script reading ... this many.
pub const MAX_READ_DEPTH: usize = 16;

/// The scripts being read, outermost first, by canonical path.
#[derive(Default)]
struct Reading(Vec<PathBuf>);

/// A `.read` refused because it would loop or nest too deep: it ends every script
/// being read, and only the line that started the outermost one reports it.
#[derive(Debug)]
struct ReadRefused(String);

impl std::fmt::Display for ReadRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadRefused {}

/// What a meta command asks of the loop.
enum Flow {
    Continue,
    Quit,
}

pub fn print_help() {
    let mut cmd = Line::command();
    println!("{}", cmd.render_help());
    print!("{META_HELP}");
}

/// Run the commands of the script `f` (relative to the current directory).
fn read_script(s: &mut Session, f: &str, reading: &mut Reading) -> Result<()> {
    let path = std::fs::canonicalize(f).map_err(|e| anyhow!("cannot read {f}: {e}"))?;
    if let Some(first) = reading.0.iter().position(|p| *p == path) {
        let cycle: Vec<String> = reading.0[first..]
            .iter()
            .chain([&path])
            .map(|p| p.display().to_string())
            .collect();
        return Err(ReadRefused(format!(
            ".read {f}: scripts read each other in a cycle: {}",
            cycle.join(" -> ")
        ))
        .into());
    }
    if reading.0.len() >= MAX_READ_DEPTH {
        return Err(ReadRefused(format!(
            ".read {f}: scripts nest deeper than {MAX_READ_DEPTH} levels"
        ))
        .into());
    }
    let file = std::fs::File::open(&path).map_err(|e| anyhow!("cannot read {f}: {e}"))?;
    reading.0.push(path);
    let failed = run_lines_in(s, std::io::BufReader::new(file), reading);
    reading.0.pop();
    match failed? {
        0 => Ok(()),
        n => Err(anyhow!("{n} command(s) in {f} failed")),
    }
}

/// Run one line (a meta command or `;`-separated commands). Errors are returned.
fn run_line(s: &mut Session, line: &str, reading: &mut Reading) -> Result<Flow> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Flow::Continue);
    }
    if matches!(line, "quit" | "exit") {
        return Ok(Flow::Quit);
    }
    if let Some(meta) = line.strip_prefix('.') {
        let words = split_words(meta)?;
        let arg = words.get(1).map(String::as_str);
        match (words.first().map(String::as_str), arg) {
            (Some("quit" | "exit" | "q"), _) => return Ok(Flow::Quit),
            (Some("help"), _) => print_help(),
            (Some("mode"), Some(m)) => s.mode = m.parse()?,
            (Some("mode"), None) => println!("{:?}", s.mode),
            (Some("open"), Some(p)) => s.open(PathBuf::from(p))?,
            (Some("read"), Some(f)) => read_script(s, f, reading)?,
            (Some(other), _) => anyhow::bail!("unknown shell command `.{other}` (see .help)"),
            (None, _) => anyhow::bail!("empty shell command (see .help)"),
        }
        return Ok(Flow::Continue);
    }
    dispatch::run_text(s, line)?;
    Ok(Flow::Continue)
}

/// Run lines from a reader, printing errors and going on. Returns how many failed.
pub fn run_lines(s: &mut Session, input: impl BufRead) -> Result<usize> {
    run_lines_in(s, input, &mut Reading::default())
}

/// [`run_lines`] inside the scripts of `reading`. Stops early when the output has been
/// closed (nobody reads what the next command would print).
fn run_lines_in(s: &mut Session, input: impl BufRead, reading: &mut Reading) -> Result<usize> {
    let mut failed = 0;
    for line in input.lines() {
        if crate::pipe::closed() {
            break;
        }
        let line = line?;
        match run_line(s, &line, reading) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => break,
            Err(e) if !reading.0.is_empty() && e.is::<ReadRefused>() => return Err(e),
            Err(e) => {
                eprintln!("error: {}", escape_text(&e.to_string()));
                failed += 1;
            }
        }
    }
    Ok(failed)
}

fn history_path(s: &Session) -> Option<PathBuf> {
    if let Some(p) = &s.db_path {
        if p.is_dir() {
            return Some(p.join(".recdb_history"));
        }
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".recdb_history"))
}

/// The interactive shell.
pub fn interactive(s: &mut Session) -> Result<()> {
    let mut rl: Editor<crate::complete::CommandNames, DefaultHistory> = Editor::new()?;
    rl.set_helper(Some(crate::complete::CommandNames::new()));
    // Open the database first so its directory exists for the history file.
    if s.db_path.is_some() {
        if let Err(e) = s.db() {
            eprintln!("error: {}", escape_text(&e.to_string()));
        }
    }
    let hist = history_path(s);
    if let Some(h) = &hist {
        let _ = rl.load_history(h);
    }
    let target = s
        .db_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "no database (use .open PATH)".into());
    println!(
        "recdb {} shell on {target}; .help for help, .quit to leave",
        env!("CARGO_PKG_VERSION")
    );
    loop {
        s.reap();
        match rl.readline("recdb> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = rl.add_history_entry(line.as_str());
                }
                match run_line(s, &line, &mut Reading::default()) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Quit) => break,
                    Err(e) => eprintln!("error: {}", escape_text(&e.to_string())),
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(h) = &hist {
        let _ = rl.save_history(h);
    }
    s.finish_background();
    Ok(())
}
