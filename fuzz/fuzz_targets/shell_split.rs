//! The shell's line splitting (quotes, escapes, `;`) on arbitrary text: no panic, and
//! what it returns is well formed.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../src/bin/recdb/split.rs"]
mod split;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    for cmd in split::split_commands(line) {
        assert!(!cmd.is_empty() && cmd.trim() == cmd, "{cmd:?}");
        if let Ok(words) = split::split_words(&cmd) {
            // Words never exceed the input.
            assert!(words.iter().map(String::len).sum::<usize>() <= cmd.len());
        }
    }
    // Plain words survive a round trip through double quotes.
    let plain: Vec<&str> = line.split_whitespace().filter(|w| !w.contains(['"', '\\'])).collect();
    let quoted: Vec<String> = plain.iter().map(|w| format!("\"{w}\"")).collect();
    assert_eq!(split::split_words(&quoted.join(" ")).unwrap(), plain);
});
