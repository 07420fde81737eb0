//! Dispatch: run a line of `;`-separated commands, or one parsed command by calling its
//! group's handler (the groups' files hold the handlers and their output).

use anyhow::{bail, Result};

use crate::find_cmds::{self, SearchQuery};
use crate::grammar::{parse_line, Command, DropWhat, ExportWhat, IndexAction, JobsAction, Parsed};
use crate::session::{RunMode, Session};
use crate::split::split_commands;
use crate::{admin_cmds, data_cmds, demo, eval_cmds, index_cmds, query_cmds};
use crate::{table_cmds, text_cmds, train_cmds};

/// Run a line of text: `;`-separated commands. Stops at the first error.
pub fn run_text(s: &mut Session, text: &str) -> Result<()> {
    for cmd in split_commands(text) {
        if crate::pipe::closed() {
            break;
        }
        match parse_line(&cmd)? {
            Parsed::Help(h) => print!("{h}"),
            Parsed::Run(c) => run(s, *c)?,
        }
    }
    Ok(())
}

/// Commands a server does not run over `/v1/shell`: they work for minutes on one of
/// its request slots with nothing to run in the background.
fn refused_when_served(cmd: &Command) -> Option<&'static str> {
    match cmd {
        Command::Eval(_) => Some("eval"),
        Command::Demo(_) => Some("demo"),
        Command::Index {
            action: IndexAction::Bench { .. },
        } => Some("index bench"),
        _ => None,
    }
}

/// Run one parsed command and print its result.
pub fn run(s: &mut Session, cmd: Command) -> Result<()> {
    if let (RunMode::Served { .. }, Some(name)) = (s.run_mode, refused_when_served(&cmd)) {
        bail!(
            "`{name}` does not run over a server (it would work for minutes on one of the \
             server's request slots): run `recdb {name} ...` on the machine instead"
        );
    }
    match cmd {
        Command::Import(a) => data_cmds::import(s, a),
        Command::Export {
            what: ExportWhat::Table { name, format, file },
        } => data_cmds::export_table(s, &name, &format, &file),
        Command::Export {
            what:
                ExportWhat::Log {
                    format,
                    rows_per_file,
                    dir,
                },
        } => data_cmds::export_log(s, &format, rows_per_file, &dir),
        Command::Dump { file } => data_cmds::dump(s, &file),
        Command::Restore { file } => data_cmds::restore(s, &file),
        Command::Train(a) => train_cmds::train(s, a),
        Command::Jobs { action: None } => train_cmds::jobs(s),
        Command::Jobs {
            action: Some(JobsAction::Cancel { id }),
        } => train_cmds::cancel(s, id),
        Command::Retrain {
            model,
            kind,
            every,
            params,
        } => train_cmds::retrain(s, &model, &kind, every, &params),
        Command::Similar { item, query } => query_cmds::similar(s, &item, query),
        Command::Recommend {
            user,
            users,
            include_seen,
            query,
            stages,
        } => query_cmds::recommend(s, user, users, &stages.apply(query.options(include_seen))?),
        Command::Predict { user, item, model } => query_cmds::predict(s, &user, &item, &model),
        Command::Rank { user, items, model } => query_cmds::rank(s, &user, &items, &model),
        Command::History { user, last } => find_cmds::history(s, &user, last),
        Command::Item { id } => find_cmds::item(s, &id),
        Command::User { id } => find_cmds::user(s, &id),
        Command::Find { text, limit } => find_cmds::find(s, &text, limit),
        Command::Search {
            table,
            id,
            vector,
            top,
            metric,
            exact,
        } => {
            let q = SearchQuery {
                id,
                vector,
                k: top.k,
                metric,
                exact: exact.exact,
            };
            find_cmds::search(s, &table, &q)
        }
        Command::Tables => table_cmds::list(s),
        Command::Drop {
            what: DropWhat::Table { name },
        } => table_cmds::drop(s, &name),
        Command::Table { action } => table_cmds::run(s, action),
        Command::Index { action } => index_cmds::run(s, action),
        Command::Infer { text, model, k } => text_cmds::infer(s, &text, &model.model, k),
        Command::SimilarText {
            text,
            top,
            model,
            exact,
        } => text_cmds::similar_text(s, &text, &model.model, top.k, exact.exact),
        Command::SimilarWord { word, top, model } => {
            text_cmds::similar_word(s, &word, &model, top.k)
        }
        Command::Eval(a) => eval_cmds::eval(s, a),
        Command::Stats { format } => admin_cmds::stats(s, format.format),
        Command::Check => admin_cmds::check(s),
        Command::Vacuum => admin_cmds::vacuum(s),
        Command::Demo(a) => demo::run(s, a),
    }
}
