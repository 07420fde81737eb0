//! The shell's command parser (`parse_line`: quote-aware splitting, then clap) on
//! arbitrary text: every line is a command, help text, or an error; never a panic
//! (clap's debug assertions on the command definitions run too).
#![no_main]
use libfuzzer_sys::fuzz_target;

// The binary's modules, included by path (the binary has no library target); `pipe`
// first, as in main.rs, for its print macros.
#[allow(dead_code, unused_macros)]
#[macro_use]
#[path = "../../src/bin/recdb/pipe.rs"]
mod pipe;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/args.rs"]
mod args;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/dispatch.rs"]
mod dispatch;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/grammar.rs"]
mod grammar;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/session.rs"]
mod session;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/admin_cmds.rs"]
mod admin_cmds;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/data_cmds.rs"]
mod data_cmds;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/demo.rs"]
mod demo;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/eval_cmds.rs"]
mod eval_cmds;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/find_cmds.rs"]
mod find_cmds;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/index_cmds.rs"]
mod index_cmds;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/query_cmds.rs"]
mod query_cmds;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/table_cmds.rs"]
mod table_cmds;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/text_cmds.rs"]
mod text_cmds;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/train_cmds.rs"]
mod train_cmds;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/import_note.rs"]
mod import_note;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/item2vec_args.rs"]
mod item2vec_args;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/output.rs"]
mod output;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/progress.rs"]
mod progress;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/split.rs"]
mod split;
#[allow(dead_code, unused_imports)]
#[path = "../../src/bin/recdb/train_help.rs"]
mod train_help;

use grammar::{parse_line, Parsed};
use split::split_commands;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    for line in split_commands(text) {
        match parse_line(&line) {
            Ok(Parsed::Help(h)) => assert!(!h.is_empty(), "empty help for {line:?}"),
            Ok(Parsed::Run(_)) => {}
            Err(e) => assert!(!e.to_string().is_empty(), "empty error for {line:?}"),
        }
    }
});
