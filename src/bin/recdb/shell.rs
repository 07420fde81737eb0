//! The interactive shell and the line-by-line runner for piped stdin and `.read`.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Result;
use clap::CommandFactory;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::Editor;

use crate::commands::{self, Line, Session};

const META_HELP: &str = "\
Shell commands:
  .help                  this help (and `help COMMAND` / `COMMAND --help`)
  .mode table|json|csv   how results are printed
  .open PATH             switch to another database
  .read FILE             run the commands in FILE
  .quit, .exit           leave (also `quit`, `exit`, Ctrl-D)
Commands may be separated by `;`. Lines starting with `#` are comments.
Tab completes command names.
";

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

/// Run one line (a meta command or `;`-separated commands). Errors are returned.
fn run_line(s: &mut Session, line: &str) -> Result<Flow> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Flow::Continue);
    }
    if matches!(line, "quit" | "exit") {
        return Ok(Flow::Quit);
    }
    if let Some(meta) = line.strip_prefix('.') {
        let words = commands::split_words(meta)?;
        let arg = words.get(1).map(String::as_str);
        match (words.first().map(String::as_str), arg) {
            (Some("quit" | "exit" | "q"), _) => return Ok(Flow::Quit),
            (Some("help"), _) => print_help(),
            (Some("mode"), Some(m)) => s.mode = m.parse()?,
            (Some("mode"), None) => println!("{:?}", s.mode),
            (Some("open"), Some(p)) => s.open(PathBuf::from(p))?,
            (Some("read"), Some(f)) => {
                let file =
                    std::fs::File::open(f).map_err(|e| anyhow::anyhow!("cannot read {f}: {e}"))?;
                let failed = run_lines(s, std::io::BufReader::new(file))?;
                if failed > 0 {
                    anyhow::bail!("{failed} command(s) in {f} failed");
                }
            }
            (Some(other), _) => anyhow::bail!("unknown shell command `.{other}` (see .help)"),
            (None, _) => anyhow::bail!("empty shell command (see .help)"),
        }
        return Ok(Flow::Continue);
    }
    commands::run_text(s, line)?;
    Ok(Flow::Continue)
}

/// Run lines from a reader, printing errors and going on. Returns how many failed.
pub fn run_lines(s: &mut Session, input: impl BufRead) -> Result<usize> {
    let mut failed = 0;
    for line in input.lines() {
        let line = line?;
        match run_line(s, &line) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => break,
            Err(e) => {
                eprintln!("error: {e}");
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
            eprintln!("error: {e}");
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
                match run_line(s, &line) {
                    Ok(Flow::Continue) => {}
                    Ok(Flow::Quit) => break,
                    Err(e) => eprintln!("error: {e}"),
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
