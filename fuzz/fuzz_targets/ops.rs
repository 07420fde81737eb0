//! Sequences of operations on a temporary database, decoded from arbitrary bytes: batches
//! of (possibly bad) events, imports of small texts, tiny training jobs, queries, table
//! drops and concats. No panic; a failed write leaves the counts unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use recdb::{Db, EventKind, Params, QueryOptions, RowSpace, TrainOptions};

fn counts(db: &Db) -> (u64, u64, u64) {
    let s = db.stats().expect("stats");
    (s.users, s.items, s.events)
}

fuzz_target!(|data: &[u8]| {
    let Ok(db) = Db::temporary() else { return };
    let mut it = data.iter().copied();
    while let Some(op) = it.next() {
        let before = counts(&db);
        let arg = it.next().unwrap_or(0);
        let ok = match op % 8 {
            0 | 1 => {
                let mut b = db.batch();
                let mut bad = false;
                for i in 0..(arg % 8) {
                    let u = it.next().unwrap_or(i);
                    let v = it.next().unwrap_or(0);
                    let value = if v == 255 { f32::NAN } else { v as f32 / 16.0 };
                    let user = if u == 255 { String::new() } else { format!("u{}", u % 16) };
                    bad |= b
                        .push(&user, &format!("i{}", v % 32), EventKind::Rating, value, i64::from(v) - 128)
                        .is_err();
                }
                !bad && b.commit().is_ok()
            }
            2 => {
                let n = (arg as usize % 64).min(it.len());
                let text: Vec<u8> = (&mut it).take(n).collect();
                let dir = std::env::temp_dir().join(format!("recdb-fuzz-{}", std::process::id()));
                let _ = std::fs::create_dir_all(&dir);
                let p = dir.join("ev.tsv");
                std::fs::write(&p, [b"user\titem\trating\ttimestamp\n".as_slice(), &text].concat()).is_ok()
                    && db.import_events(&p, None).is_ok()
            }
            3 => {
                let model = ["popular", "als", "bpr", "sgd"][arg as usize % 4];
                let p = if model == "popular" { Params::new() } else { Params::new().set("factors", 2).set("epochs", 1) };
                let p = if model == "als" { Params::new().set("factors", 2).set("iterations", 1) } else { p };
                let _ = db.train(model, &p, &TrainOptions::default());
                false
            }
            4 => {
                let model = ["popular", "als", "bpr", "sgd"][arg as usize % 4];
                let k = 1 + arg as usize % 5;
                if let Ok(h) = db.recommend(&format!("u{}", arg % 16), &QueryOptions::model(model).k(k)) {
                    assert!(h.len() <= k);
                }
                let _ = db.similar(&format!("i{}", arg % 32), &QueryOptions::model(model).k(3));
                false
            }
            5 => {
                for t in db.tables().unwrap_or_default() {
                    if arg % 2 == 0 {
                        let _ = db.drop_table(&t.name);
                    }
                }
                false
            }
            6 => {
                let names: Vec<String> = db.tables().unwrap_or_default().into_iter().map(|t| t.name).collect();
                let srcs: Vec<&str> = names.iter().map(String::as_str).take(2 + arg as usize % 2).collect();
                let _ = db.concat_tables("cat", &srcs);
                let _ = db.put_table("other", RowSpace::Other, 1 + arg as usize % 3, &[1.0; 6], vec![]);
                false
            }
            _ => {
                let _ = db.check();
                false
            }
        };
        if !ok && op % 8 <= 2 {
            assert_eq!(counts(&db), before, "a failed write changed the counts");
        }
    }
    db.check().expect("check after the sequence");
});
