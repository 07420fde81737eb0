//! The offline dependency audit (audit/check.rs) as a test: its version matching, that an
//! affected version fails (e.g. rkyv before 0.8.17), and the real lock files.

#[path = "../audit/check.rs"]
mod check;

use check::{audit, matches, parse_advisories, Version};

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

#[test]
fn requirements_match_like_semver() {
    assert!(matches(">= 0.8.17", &v("0.8.18")).unwrap());
    assert!(!matches(">= 0.8.17", &v("0.8.16")).unwrap());
    assert!(matches(">= 0.7.4, < 0.8.0", &v("0.7.9")).unwrap());
    assert!(!matches(">= 0.7.4, < 0.8.0", &v("0.8.0")).unwrap());
    assert!(matches("^0.10.4", &v("0.10.9")).unwrap());
    assert!(!matches("^0.10.4", &v("0.11.0")).unwrap());
    assert!(matches("^1.2.3", &v("1.9.0")).unwrap());
    assert!(!matches("^1.2.3", &v("2.0.0")).unwrap());
    assert!(matches("= 0.4.10", &v("0.4.10")).unwrap());
    assert!(matches("< 0.8.0-rc.1", &v("0.7.42")).unwrap());
    assert!(!matches("< 0.8.0-rc.1", &v("0.8.0")).unwrap());
    assert!(v("0.8.0-rc.1") < v("0.8.0"));
    assert_eq!(v("0.25.20+spec-1.1.0"), v("0.25.20"));
    assert!(matches("nonsense", &v("1.0.0")).is_err());
}

#[test]
fn an_affected_version_fails_and_unmaintained_warns() {
    let adv = parse_advisories(&std::fs::read_to_string("audit/advisories.tsv").unwrap()).unwrap();
    let lock = |name: &str, ver: &str| {
        vec![(
            "test.lock".to_string(),
            format!("[[package]]\nname = \"{name}\"\nversion = \"{ver}\"\n"),
        )]
    };
    let run = |name: &str, ver: &str| audit(&lock(name, ver), &adv, name, &[]).unwrap();
    // The rkyv check this replaces: 0.8.16 has the 2026-0233..0235 advisories.
    let (fail, _) = run("rkyv", "0.8.16");
    assert_eq!(fail.len(), 3, "{fail:?}");
    assert!(
        fail.iter().all(|f| f.contains("RUSTSEC-2026-023")),
        "{fail:?}"
    );
    assert!(run("rkyv", "0.8.18").0.is_empty());
    assert_eq!(run("crossbeam-deque", "0.8.0").0.len(), 1);
    assert!(run("crossbeam-deque", "0.7.4").0.is_empty());
    let (fail, warn) = run("fxhash", "0.2.1");
    assert!(fail.is_empty() && warn.len() == 1, "{warn:?}");
    // A crate nobody looked up is a warning.
    let (fail, warn) = audit(&lock("brand-new", "1.0.0"), &adv, "", &[]).unwrap();
    assert!(fail.is_empty() && warn[0].contains("not in audit/reviewed.txt"));
}

#[test]
fn locked_dependencies_have_no_known_vulnerability() {
    let read = |p: &str| std::fs::read_to_string(p).unwrap();
    let adv = parse_advisories(&read("audit/advisories.tsv")).unwrap();
    let locks: Vec<(String, String)> = ["Cargo.lock", "fuzz/Cargo.lock"]
        .iter()
        .map(|f| (f.to_string(), read(f)))
        .collect();
    let (fail, warn) = audit(
        &locks,
        &adv,
        &read("audit/reviewed.txt"),
        &["recdb", "recdb-fuzz"],
    )
    .unwrap();
    for w in &warn {
        eprintln!("warning: {w}");
    }
    assert!(fail.is_empty(), "{fail:#?}");
}
