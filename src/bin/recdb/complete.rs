//! Tab completion of command names in the interactive shell.

use clap::CommandFactory;
use rustyline::completion::Completer;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Helper};

use crate::grammar::Line;

/// The shell's meta commands and words that are not clap subcommands.
const EXTRA: &[&str] = &[
    ".help", ".mode", ".open", ".read", ".quit", ".exit", "help", "quit", "exit",
];

/// Completes the first word of the line (after the last `;`) from the command names.
pub struct CommandNames {
    names: Vec<String>,
}

impl CommandNames {
    pub fn new() -> CommandNames {
        let mut names: Vec<String> = Line::command()
            .get_subcommands()
            .map(|c| c.get_name().to_owned())
            .chain(EXTRA.iter().map(|s| s.to_string()))
            .collect();
        names.sort();
        names.dedup();
        CommandNames { names }
    }

    /// Where the word being completed starts, and the names it may become. Only the
    /// command word is completed: arguments are ids and paths the shell cannot know.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let head = line.get(..pos).unwrap_or(line);
        let cmd_start = head.rfind(';').map_or(0, |i| i + 1);
        let cmd = &head[cmd_start..];
        let start = cmd_start + (cmd.len() - cmd.trim_start().len());
        let word = &head[start..];
        if word.contains(char::is_whitespace) {
            return (pos, Vec::new());
        }
        let found = self
            .names
            .iter()
            .filter(|n| n.starts_with(word))
            .cloned()
            .collect();
        (start, found)
    }
}

impl Completer for CommandNames {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.candidates(line, pos))
    }
}

impl Hinter for CommandNames {
    type Hint = String;
}
impl Highlighter for CommandNames {}
impl Validator for CommandNames {}
impl Helper for CommandNames {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_the_command_word_only() {
        let c = CommandNames::new();
        assert_eq!(c.candidates("reco", 4), (0, vec!["recommend".to_string()]));
        let (start, mut v) = c.candidates("stats; sim", 10);
        v.sort();
        assert_eq!(start, 7);
        assert_eq!(v, ["similar", "similar-text", "similar-word"]);
        assert!(c.candidates("similar 50", 10).1.is_empty());
        assert!(c.candidates("se", 2).1.contains(&"search".to_string()));
        assert!(c.candidates(".q", 2).1.contains(&".quit".to_string()));
    }
}
