//! `recdb --connect URL`: the shell's commands run by a `recdb serve` server. Each
//! command line goes to `POST /v1/shell`; the server runs it in a session on its
//! database and sends back what it printed, which is printed here as it would be
//! locally (stdout to stdout, stderr to stderr), and its error, if any.

use std::io::{BufRead, IsTerminal};
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::Editor;
use serde_json::{json, Value};

use crate::output::{escape_text, Mode};

/// A connection to a server.
pub struct Client {
    agent: ureq::Agent,
    base: String,
    auth: Option<String>,
    format: &'static str,
}

impl Client {
    pub fn new(url: &str, token_file: Option<&Path>, mode: Mode) -> Result<Client> {
        let base = url.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") {
            bail!("--connect {url}: expected http://HOST:PORT (TLS belongs to a proxy in front of the server)");
        }
        let auth = token_file
            .map(crate::serve::read_token)
            .transpose()?
            .map(|t| format!("Bearer {t}"));
        // Error statuses carry JSON bodies to print: they are answers, not transport errors.
        // No overall timeout: an `import` answers when its commits are durable.
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let format = match mode {
            Mode::Table => "table",
            Mode::Json => "json",
            Mode::Csv => "csv",
        };
        Ok(Client {
            agent,
            base,
            auth,
            format,
        })
    }

    /// Run one line of `;`-separated commands on the server and print its output.
    pub fn run_line(&self, line: &str) -> Result<()> {
        let mut req = self.agent.post(format!("{}/v1/shell", self.base));
        if let Some(a) = &self.auth {
            req = req.header("Authorization", a);
        }
        let mut resp = req
            .send_json(json!({"line": line, "format": self.format}))
            .with_context(|| format!("cannot reach {}", self.base))?;
        let status = resp.status();
        let body: Value = resp
            .body_mut()
            .read_json()
            .with_context(|| format!("{}: HTTP {status} without a JSON body", self.base))?;
        if let Some(out) = body.get("stdout").and_then(Value::as_str) {
            print!("{out}");
        }
        if let Some(err) = body.get("stderr").and_then(Value::as_str) {
            eprint!("{err}");
        }
        match body.get("error") {
            None => Ok(()),
            Some(e) => {
                let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
                Err(anyhow!("{msg}"))
            }
        }
    }
}

/// Client mode: `-c` commands, an interactive prompt, or one command a line of piped
/// stdin (as the local shell; meta commands such as `.open` do not apply remotely).
pub fn run(client: &Client, commands: Option<&str>) -> Result<bool> {
    if let Some(text) = commands {
        client.run_line(text)?;
        return Ok(true);
    }
    if std::io::stdin().is_terminal() {
        interactive(client)?;
        return Ok(true);
    }
    let mut failed = 0usize;
    for line in std::io::stdin().lock().lines() {
        if crate::pipe::closed() {
            break;
        }
        let line = line?;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Err(e) = client.run_line(t) {
            eprintln!("error: {}", escape_text(&e.to_string()));
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!("{failed} command(s) failed");
    }
    Ok(failed == 0)
}

fn interactive(client: &Client) -> Result<()> {
    let mut rl: Editor<crate::complete::CommandNames, DefaultHistory> = Editor::new()?;
    rl.set_helper(Some(crate::complete::CommandNames::new()));
    println!(
        "recdb {} connected to {}; .quit to leave",
        env!("CARGO_PKG_VERSION"),
        client.base
    );
    loop {
        match rl.readline("recdb> ") {
            Ok(line) => {
                let t = line.trim();
                if t.is_empty() || t.starts_with('#') {
                    continue;
                }
                let _ = rl.add_history_entry(t);
                if matches!(t, ".quit" | ".exit" | "quit" | "exit") {
                    break;
                }
                if t.starts_with('.') {
                    eprintln!(
                        "error: shell meta commands (`{t}`) do not apply to a server; .quit leaves"
                    );
                    continue;
                }
                if let Err(e) = client.run_line(t) {
                    eprintln!("error: {}", escape_text(&e.to_string()));
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
