//! Dependency audit without network: every package of the given `Cargo.lock` files is
//! checked against the advisories vendored in `audit/advisories.tsv` (cargo-audit cannot
//! fetch the RustSec database here). A vulnerability or unsoundness that affects a locked
//! version fails; an unmaintained crate and a crate missing from `audit/reviewed.txt` warn.
//!
//! Standalone (no dependencies), so CI compiles it with plain rustc in about a second:
//! `rustc --edition 2021 -O audit/check.rs -o /tmp/audit && /tmp/audit`
//! (from the repository root; the default files are `Cargo.lock` and `fuzz/Cargo.lock`).
//! `tests/audit.rs` includes this file and runs it as a test too.

use std::cmp::Ordering;

/// A version as `(major, minor, patch, pre-release)`; build metadata is dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(u64, u64, u64, Option<String>);

impl Version {
    pub fn parse(s: &str) -> Option<Version> {
        let s = s.trim();
        let s = s.split('+').next()?;
        let (core, pre) = match s.split_once('-') {
            Some((c, p)) => (c, Some(p.to_string())),
            None => (s, None),
        };
        let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
        let major = it.next()??;
        let minor = it.next().unwrap_or(Some(0))?;
        let patch = it.next().unwrap_or(Some(0))?;
        if it.next().is_some() {
            return None;
        }
        Some(Version(major, minor, patch, pre))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.0, self.1, self.2)
            .cmp(&(other.0, other.1, other.2))
            // A pre-release sorts before its release; pre-releases compare as text
            // (enough for the `-rc.1`, `-pre.2`, `-alpha.1` bounds in advisories).
            .then_with(|| match (&self.3, &other.3) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => a.cmp(b),
            })
    }
}

/// Does `v` satisfy one requirement: comparators joined by `,`, all of which must hold
/// (`>= 0.7.4, < 0.8.0`, `^0.10.4`, `= 0.4.10`, `<= 0.2.1`)?
pub fn matches(req: &str, v: &Version) -> Result<bool, String> {
    for c in req.split(',') {
        let c = c.trim();
        let (op, rest) = ["<=", ">=", "<", ">", "=", "^", "~"]
            .iter()
            .find_map(|op| c.strip_prefix(op).map(|r| (*op, r)))
            .unwrap_or(("^", c));
        let b = Version::parse(rest).ok_or_else(|| format!("bad requirement `{req}`"))?;
        let ok = match op {
            "<=" => v <= &b,
            ">=" => v >= &b,
            "<" => v < &b,
            ">" => v > &b,
            "=" => v == &b,
            "~" => v >= &b && (v.0, v.1) == (b.0, b.1),
            // Caret: the leftmost non-zero component may not change.
            _ => {
                v >= &b
                    && match (b.0, b.1) {
                        (0, 0) => (v.0, v.1, v.2) == (0, 0, b.2),
                        (0, _) => (v.0, v.1) == (0, b.1),
                        _ => v.0 == b.0,
                    }
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

#[derive(Debug, Clone)]
pub struct Advisory {
    pub id: String,
    pub package: String,
    pub kind: String,
    pub patched: Vec<String>,
    pub unaffected: Vec<String>,
    pub title: String,
}

impl Advisory {
    /// Affected unless a patched or an unaffected requirement matches.
    pub fn affects(&self, v: &Version) -> Result<bool, String> {
        for r in self.patched.iter().chain(&self.unaffected) {
            if matches(r, v)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

pub fn parse_advisories(text: &str) -> Result<Vec<Advisory>, String> {
    let list = |s: &str| -> Vec<String> {
        if s.trim() == "-" {
            Vec::new()
        } else {
            s.split(';').map(|r| r.trim().to_string()).collect()
        }
    };
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() != 6 {
            return Err(format!(
                "advisories line {}: expected 6 tab-separated fields",
                n + 1
            ));
        }
        if !["vulnerability", "unsound", "unmaintained"].contains(&f[2]) {
            return Err(format!(
                "advisories line {}: unknown kind `{}`",
                n + 1,
                f[2]
            ));
        }
        let a = Advisory {
            id: f[0].into(),
            package: f[1].into(),
            kind: f[2].into(),
            patched: list(f[3]),
            unaffected: list(f[4]),
            title: f[5].into(),
        };
        // Every requirement must parse, so a typo cannot silently match nothing.
        for r in a.patched.iter().chain(&a.unaffected) {
            matches(r, &Version(0, 0, 0, None)).map_err(|e| format!("{}: {e}", a.id))?;
        }
        out.push(a);
    }
    Ok(out)
}

/// `(name, version)` of every `[[package]]` of a Cargo.lock.
pub fn parse_lock(text: &str) -> Result<Vec<(String, Version)>, String> {
    let mut out = Vec::new();
    let mut name: Option<String> = None;
    let value = |l: &str| {
        l.split_once('=')
            .map(|(_, v)| v.trim().trim_matches('"').to_string())
    };
    for line in text.lines() {
        let l = line.trim();
        if l == "[[package]]" {
            name = None;
        } else if l.starts_with("name = ") {
            name = value(l);
        } else if l.starts_with("version = ") {
            if let Some(n) = name.take() {
                let v = value(l).unwrap_or_default();
                let ver = Version::parse(&v).ok_or_else(|| format!("{n}: bad version `{v}`"))?;
                out.push((n, ver));
            }
        }
    }
    Ok(out)
}

/// The report: `(failures, warnings)`, one line each.
pub fn audit(
    locks: &[(String, String)],
    advisories: &[Advisory],
    reviewed: &str,
    own: &[&str],
) -> Result<(Vec<String>, Vec<String>), String> {
    let reviewed: Vec<&str> = reviewed
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let (mut fail, mut warn) = (Vec::new(), Vec::new());
    for (file, text) in locks {
        for (name, v) in parse_lock(text)? {
            if own.contains(&name.as_str()) {
                continue;
            }
            if !reviewed.contains(&name.as_str()) {
                warn.push(format!(
                    "{file}: {name} {v:?} is not in audit/reviewed.txt (its advisories were not looked up)"
                ));
            }
            for a in advisories.iter().filter(|a| a.package == name) {
                if a.affects(&v)? {
                    let line = format!(
                        "{file}: {name} {}.{}.{}: {} ({}): {}",
                        v.0, v.1, v.2, a.id, a.kind, a.title
                    );
                    if a.kind == "unmaintained" {
                        warn.push(line);
                    } else {
                        fail.push(line);
                    }
                }
            }
        }
    }
    Ok((fail, warn))
}

#[allow(dead_code)]
fn main() {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{p}: {e}"));
    let args: Vec<String> = std::env::args().skip(1).collect();
    let files = if args.is_empty() {
        vec!["Cargo.lock".to_string(), "fuzz/Cargo.lock".to_string()]
    } else {
        args
    };
    let locks: Vec<(String, String)> = files.iter().map(|f| (f.clone(), read(f))).collect();
    let result = parse_advisories(&read("audit/advisories.tsv")).and_then(|adv| {
        let n = adv.len();
        audit(
            &locks,
            &adv,
            &read("audit/reviewed.txt"),
            &["recdb", "recdb-fuzz"],
        )
        .map(|r| (n, r))
    });
    match result {
        Ok((n, (fail, warn))) => {
            for w in &warn {
                println!("warning: {w}");
            }
            for f in &fail {
                println!("FAIL: {f}");
            }
            println!(
                "audit: {n} advisories, {} lock files: {} failures, {} warnings",
                locks.len(),
                fail.len(),
                warn.len()
            );
            if !fail.is_empty() {
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("audit: {e}");
            std::process::exit(2);
        }
    }
}
