//! Rendering command results: aligned tables for people, JSON or CSV for scripts.

use serde_json::Value;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Table,
    Json,
    Csv,
}

impl std::str::FromStr for Mode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Mode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "table" => Ok(Mode::Table),
            "json" => Ok(Mode::Json),
            "csv" => Ok(Mode::Csv),
            other => anyhow::bail!("unknown output mode `{other}` (expected table, json or csv)"),
        }
    }
}

/// The body of one block of output.
#[derive(Debug, Clone)]
pub enum Body {
    /// Columns and rows.
    Table {
        headers: Vec<String>,
        rows: Vec<Vec<String>>,
    },
    /// `key  value` lines.
    Pairs(Vec<(String, String)>),
    /// Free text.
    Text(String),
}

/// A titled part of a result.
#[derive(Debug, Clone)]
pub struct Block {
    pub title: Option<String>,
    pub body: Body,
}

/// The result of one command: what people see (`blocks`) and what scripts get (`json`).
#[derive(Debug, Clone)]
pub struct Output {
    pub blocks: Vec<Block>,
    pub json: Value,
    /// A `--format` given to the command itself wins over the session's mode.
    pub mode: Option<Mode>,
}

impl Output {
    pub fn new(json: Value) -> Output {
        Output {
            blocks: Vec::new(),
            json,
            mode: None,
        }
    }

    pub fn text(text: impl Into<String>, json: Value) -> Output {
        Output::new(json).block(None, Body::Text(text.into()))
    }

    pub fn table(headers: &[&str], rows: Vec<Vec<String>>, json: Value) -> Output {
        Output::new(json).block(
            None,
            Body::Table {
                headers: headers.iter().map(|h| h.to_string()).collect(),
                rows,
            },
        )
    }

    /// Key/value lines taken from a JSON object (nested values shown as JSON).
    pub fn pairs_of(json: Value) -> Output {
        let pairs = json_pairs(&json);
        Output::new(json).block(None, Body::Pairs(pairs))
    }

    pub fn block(mut self, title: Option<&str>, body: Body) -> Output {
        self.blocks.push(Block {
            title: title.map(str::to_owned),
            body,
        });
        self
    }

    pub fn with_mode(mut self, mode: Option<Mode>) -> Output {
        if mode.is_some() {
            self.mode = mode;
        }
        self
    }

    /// Print to stdout in `mode` (unless the output carries its own). In CSV mode the
    /// notes go to stderr, so that stdout is one CSV table.
    pub fn print(&self, mode: Mode) {
        let mode = self.mode.unwrap_or(mode);
        let text = self.render(mode);
        if mode == Mode::Csv {
            let notes = self.csv_notes();
            if !notes.is_empty() {
                eprint!("{notes}");
            }
        }
        print!("{text}");
    }

    /// The block CSV mode prints: the first table or pairs block, else the JSON's fields.
    fn csv_block(&self) -> Option<usize> {
        self.blocks
            .iter()
            .position(|b| !matches!(b.body, Body::Text(_)))
    }

    /// What CSV mode leaves out of stdout (text, and blocks after the first table), as
    /// people would read it.
    fn csv_notes(&self) -> String {
        let first = self.csv_block();
        let notes: Vec<String> = self
            .blocks
            .iter()
            .enumerate()
            .filter(|&(i, _)| Some(i) != first)
            .map(|(_, b)| render_block_table(b))
            .collect();
        notes.join("\n")
    }

    pub fn render(&self, mode: Mode) -> String {
        match mode {
            Mode::Json => {
                let json = short_floats(self.json.clone());
                let mut s = serde_json::to_string(&json).unwrap_or_else(|_| "null".into());
                s.push('\n');
                s
            }
            Mode::Table => {
                let parts: Vec<String> = self.blocks.iter().map(render_block_table).collect();
                parts.join("\n")
            }
            Mode::Csv => match self.csv_block() {
                Some(i) => render_block_csv(&self.blocks[i]),
                None => render_block_csv(&Block {
                    title: None,
                    body: Body::Pairs(json_pairs(&self.json)),
                }),
            },
        }
    }
}

/// The fields of a JSON object as displayable pairs.
pub fn json_pairs(json: &Value) -> Vec<(String, String)> {
    match json {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), scalar(v))).collect(),
        other => vec![("value".into(), scalar(other))],
    }
}

/// A float as the shortest text that reads back as the same `f32` (`0.01`, not
/// `0.009999999776482582`).
pub fn short_float(x: f32) -> String {
    x.to_string()
}

/// Numbers that are `f32`s widened to `f64` (what `serde_json::to_value` makes of an
/// `f32`) as their short form; true `f64`s keep every digit.
pub fn short_floats(v: Value) -> Value {
    match v {
        Value::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            Some(x) if is_widened_f32(x) => short_float(x as f32)
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map_or(Value::Number(n), Value::Number),
            _ => Value::Number(n),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(short_floats).collect()),
        Value::Object(m) => {
            Value::Object(m.into_iter().map(|(k, v)| (k, short_floats(v))).collect())
        }
        other => other,
    }
}

/// Whether `x` is an `f32` in `f64` clothing (within a few `f64` ulps of one, as
/// arithmetic in `f64` on an `f32` leaves it); a true `f64` is almost never that close.
fn is_widened_f32(x: f64) -> bool {
    let back = (x as f32) as f64;
    back == x || (x.is_finite() && (back - x).abs() <= x.abs() * 1e-14)
}

/// A JSON value as a cell: strings bare, arrays of scalars comma-joined, the rest as JSON.
pub fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(_) => short_floats(v.clone()).to_string(),
        Value::Null => String::new(),
        Value::Array(a) if a.iter().all(|x| !x.is_object() && !x.is_array()) => {
            a.iter().map(scalar).collect::<Vec<_>>().join(", ")
        }
        other => other.to_string(),
    }
}

/// Whether `c` could drive a terminal: C0 and C1 controls, DEL, bidirectional overrides.
fn is_terminal_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` with every terminal control written as a visible escape (`\x1b`, `\u{202e}`), so
/// that an id cannot recolour, move or rewrite what the terminal shows. `keep` are the
/// controls left as they are (the newlines of free text).
fn escape_controls<'a>(s: &'a str, keep: &[char]) -> std::borrow::Cow<'a, str> {
    if !s
        .chars()
        .any(|c| is_terminal_control(c) && !keep.contains(&c))
    {
        return s.into();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_terminal_control(c) || keep.contains(&c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    out.into()
}

/// A table cell, title or key for the terminal: every control escaped.
pub fn escape_cell(s: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(s, &[])
}

/// Free text (messages, errors) for the terminal: lines and tabs kept, other controls
/// escaped.
pub fn escape_text(s: &str) -> std::borrow::Cow<'_, str> {
    escape_controls(s, &['\n', '\t'])
}

fn width(s: &str) -> usize {
    s.chars().count()
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.trim_end_matches('%').parse::<f64>().is_ok()
}

fn pad(s: &str, w: usize, right: bool) -> String {
    let fill = " ".repeat(w.saturating_sub(width(s)));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

fn escape_row(cells: &[String]) -> Vec<String> {
    cells.iter().map(|c| escape_cell(c).into_owned()).collect()
}

/// Ids and titles are data: in table mode every control character in them is escaped
/// (a title keeps its line breaks: the shell composes titles of several lines).
fn render_block_table(b: &Block) -> String {
    let mut out = String::new();
    if let Some(t) = &b.title {
        out.push_str(&escape_text(t));
        out.push('\n');
    }
    match &b.body {
        Body::Text(t) => {
            out.push_str(&escape_text(t));
            if !t.ends_with('\n') {
                out.push('\n');
            }
        }
        Body::Pairs(pairs) => {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (escape_cell(k).into_owned(), escape_cell(v).into_owned()))
                .collect();
            let w = pairs.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
            for (k, v) in &pairs {
                out.push_str(&format!("{}  {v}\n", pad(k, w, false)));
            }
        }
        Body::Table { headers, rows } => {
            let headers = &escape_row(headers);
            let rows: &Vec<Vec<String>> = &rows.iter().map(|r| escape_row(r)).collect();
            if rows.is_empty() {
                out.push_str("(none)\n");
                return out;
            }
            let n = headers.len();
            let mut widths: Vec<usize> = headers.iter().map(|h| width(h)).collect();
            let mut numeric = vec![true; n];
            for r in rows {
                for (j, c) in r.iter().enumerate().take(n) {
                    widths[j] = widths[j].max(width(c));
                    if !c.is_empty() && !is_number(c) {
                        numeric[j] = false;
                    }
                }
            }
            let line = |cells: &[String], out: &mut String| {
                let s: Vec<String> = (0..n)
                    .map(|j| {
                        let c = cells.get(j).map(String::as_str).unwrap_or("");
                        pad(c, widths[j], numeric[j])
                    })
                    .collect();
                out.push_str(s.join("  ").trim_end());
                out.push('\n');
            };
            line(headers, &mut out);
            let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
            for r in rows {
                line(r, &mut out);
            }
        }
    }
    out
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn csv_line(cells: &[String]) -> String {
    let mut s = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    s.push('\n');
    s
}

fn render_block_csv(b: &Block) -> String {
    match &b.body {
        Body::Text(t) => {
            let mut s = t.clone();
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        }
        Body::Pairs(pairs) => {
            let mut s = csv_line(&["key".into(), "value".into()]);
            for (k, v) in pairs {
                s.push_str(&csv_line(&[k.clone(), v.clone()]));
            }
            s
        }
        Body::Table { headers, rows } => {
            let mut s = csv_line(headers);
            for r in rows {
                s.push_str(&csv_line(r));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_and_csv_quotes() {
        let o = Output::table(
            &["rank", "title"],
            vec![
                vec!["1".into(), "A, b".into()],
                vec!["10".into(), "C".into()],
            ],
            Value::Null,
        );
        let t = o.render(Mode::Table);
        assert!(t.contains("rank  title\n"));
        assert!(t.contains("   1  A, b\n"));
        assert!(o.render(Mode::Csv).contains("1,\"A, b\"\n"));
    }

    #[test]
    fn widened_f32s_print_short_and_f64s_keep_their_digits() {
        let v = serde_json::to_value(0.01f32).unwrap();
        assert_eq!(v.to_string(), "0.009999999776482582");
        assert_eq!(scalar(&v), "0.01");
        assert_eq!(
            scalar(&serde_json::json!(0.1234567891234)),
            "0.1234567891234"
        );
        assert_eq!(scalar(&serde_json::json!(7)), "7");
    }

    #[test]
    fn csv_mode_prints_one_table_and_leaves_notes_out() {
        let o = Output::table(&["a"], vec![vec!["1".into()]], Value::Null)
            .block(Some("more"), Body::Pairs(vec![("k".into(), "v".into())]))
            .block(None, Body::Text("a note".into()));
        assert_eq!(o.render(Mode::Csv), "a\n1\n");
        assert!(o.csv_notes().contains("a note"));
        let t = Output::text("done", serde_json::json!({"rows": 3}));
        assert_eq!(t.render(Mode::Csv), "key,value\nrows,3\n");
    }
}
