//! Unit tests of the schema grammar, fitting, encoding and the stored bytes.

use super::*;

fn row(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn parses_every_kind() {
    let s: Schema =
        "gender:cat, genres:multi,tags:multi=,,year:num,zip:hash=1000,area:prefix=2:min=3"
            .parse()
            .unwrap();
    let kinds: Vec<_> = s.fields.iter().map(|f| f.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            FieldKind::Categorical,
            FieldKind::Multi { sep: '|' },
            FieldKind::Multi { sep: ',' },
            FieldKind::Numeric,
            FieldKind::Hashed { buckets: 1000 },
            FieldKind::Prefix { chars: 2 },
        ]
    );
    assert_eq!(s.fields[5].min_count, 3);
    assert_eq!(s.to_string().parse::<Schema>().unwrap(), s);
}

fn err(s: &str) -> String {
    match s.parse::<Schema>() {
        Err(crate::Error::InvalidParameter { name, msg }) => {
            assert_eq!(name, "features");
            msg
        }
        other => panic!("`{s}`: {other:?}"),
    }
}

#[test]
fn bad_specs_name_the_field_and_the_problem() {
    assert!(err("age").contains("name:kind"));
    assert!(err(":cat").contains("name is empty"));
    assert!(err("age:cat,").contains("empty field spec"));
    assert!(err("age:bogus").contains("field `age`: unknown kind `bogus`"));
    assert!(err("zip:hash").contains("field `zip`: `hash` needs a number of buckets"));
    assert!(err("zip:hash=0").contains("field `zip`"));
    assert!(err("zip:hash=x").contains("not `x`"));
    assert!(err("zip:prefix=-1").contains("field `zip`"));
    assert!(err("g:multi=ab").contains("one separator character"));
    assert!(err("g:multi=").contains("one separator character"));
    assert!(err("age:cat=2").contains("takes no `=`"));
    assert!(err("age:num:min=2").contains("`min=` applies"));
    assert!(err("age:cat:max=2").contains("unknown option"));
    assert!(err("age:cat:min=0").contains("field `age`"));
    assert!(err("age:cat,age:num").contains("field `age`: declared twice"));
    assert_eq!("".parse::<Schema>().unwrap(), Schema::default());
    let colon: Schema = "g:multi=::min=2".parse().unwrap();
    assert_eq!(colon.fields[0].kind, FieldKind::Multi { sep: ':' });
    assert_eq!(colon.fields[0].min_count, 2);
}

#[test]
fn unknown_bucket_takes_missing_unseen_and_rare_values() {
    let rows = vec![
        row(&[("g", "M"), ("occ", "a")]),
        row(&[("g", "F"), ("occ", "a")]),
        row(&[("g", "M"), ("occ", "b")]),
    ];
    let enc = Encoder::fit(&"g:cat,occ:cat:min=2".parse().unwrap(), &rows).unwrap();
    // Most frequent first: M = 1, F = 2; `b` is rarer than min=2.
    assert_eq!(
        enc.slots(),
        vec![
            Slot {
                field: "g".into(),
                vocab: 3
            },
            Slot {
                field: "occ".into(),
                vocab: 2
            }
        ]
    );
    assert_eq!(enc.encode(&rows[0]).ids, vec![vec![1], vec![1]]);
    assert_eq!(enc.encode(&rows[1]).ids, vec![vec![2], vec![1]]);
    assert_eq!(enc.encode(&rows[2]).ids, vec![vec![1], vec![0]]);
    assert_eq!(enc.encode(&row(&[("g", "X")])).ids, vec![vec![0], vec![0]]);
    assert_eq!(enc.encode(&[]).ids, vec![vec![0], vec![0]]);
    assert_eq!(enc.encode(&row(&[("g", "  ")])).ids[0], vec![0]);
    // Row order does not change the ids.
    let mut rev = rows.clone();
    rev.reverse();
    let again = Encoder::fit(&enc.schema(), &rev).unwrap();
    assert_eq!(again, enc);
}

#[test]
fn multi_prefix_and_hashed_fields() {
    let rows = vec![
        row(&[("genres", "Comedy|Drama"), ("zip", "48067"), ("h", "x")]),
        row(&[("genres", "Drama"), ("zip", "48100"), ("h", "y")]),
        row(&[("genres", "Drama| |Drama"), ("zip", "9"), ("h", "z")]),
    ];
    let enc = Encoder::fit(
        &"genres:multi,zip:prefix=2,h:hash=8".parse().unwrap(),
        &rows,
    )
    .unwrap();
    let vocab: Vec<usize> = enc.slots().iter().map(|s| s.vocab).collect();
    assert_eq!(vocab, vec![3, 3, 9]);
    let e = enc.encode(&rows[0]);
    assert_eq!(e.ids[0], vec![2, 1]); // Drama (3 rows) = 1, Comedy = 2
    assert_eq!(e.ids[1], vec![1]); // "48"
    assert_eq!(enc.encode(&rows[2]).ids[0], vec![1]);
    assert_eq!(enc.encode(&rows[2]).ids[1], vec![2]); // "9": shorter than the prefix
    assert_eq!(
        enc.encode(&row(&[("genres", "Horror|Drama")])).ids[0],
        vec![1]
    );
    assert_eq!(enc.encode(&row(&[("genres", "Horror")])).ids[0], vec![0]);
    // A hashed value lands in 1..=8 whether or not it was seen at fit, the same way
    // every time; missing is 0.
    let h = |v: &str| enc.encode(&row(&[("h", v)])).ids[2][0];
    assert_eq!(h("never seen"), h("never seen"));
    assert!((1..=8).contains(&h("never seen")));
    assert_eq!(enc.encode(&[]).ids[2], vec![0]);
}

#[test]
fn hashing_is_stable_across_runs_and_platforms() {
    // Pinned values: a change of the hash would silently re-map every published
    // model's hashed buckets.
    assert_eq!(hash_value(""), 0xc381_7c01_6ba4_ff30);
    assert_eq!(hash_value("48067"), 0xc883_6483_a608_251b);
    assert_eq!(hash_value("48067"), crate::storage::id_hash::hash("48067"));
}

#[test]
fn numeric_standardisation_and_missing_values() {
    let rows = vec![
        row(&[("y", "1990"), ("c", "5")]),
        row(&[("y", "2000"), ("c", "5")]),
        row(&[("y", "NaN"), ("c", "5")]),
        row(&[("y", "inf"), ("c", "5")]),
        row(&[("c", "5")]),
    ];
    let enc = Encoder::fit(&"y:num,c:num".parse().unwrap(), &rows).unwrap();
    // `y` was missing in some rows: a flag column; `c` never: one column.
    assert_eq!(enc.numeric_width(), 3);
    assert!(enc.slots().is_empty());
    assert_eq!(enc.encode(&rows[0]).numeric, vec![-1.0, 0.0, 0.0]);
    assert_eq!(enc.encode(&rows[1]).numeric, vec![1.0, 0.0, 0.0]);
    for r in &rows[2..] {
        assert_eq!(enc.encode(r).numeric, vec![0.0, 1.0, 0.0]);
    }
    assert_eq!(enc.encode(&row(&[("y", "1e308")])).numeric[..2], [0.0, 1.0]);
    assert_eq!(enc.encode(&row(&[("c", "6")])).numeric[2], 1.0); // sd 0 → 1
    assert_eq!(enc.encode(&row(&[("y", "oops")])).numeric[..2], [0.0, 1.0]);
}

#[test]
fn a_record_with_missing_fields_encodes_fully() {
    let rows = vec![row(&[("g", "M"), ("y", "3"), ("genres", "A|B")])];
    let enc = Encoder::fit(&"g:cat,genres:multi,y:num,z:hash=4".parse().unwrap(), &rows).unwrap();
    let e = enc.encode(&row(&[("other", "1")]));
    assert_eq!(e.ids, vec![vec![0], vec![0], vec![0]]);
    assert_eq!(e.numeric, vec![0.0]);
    assert_eq!(e.ids.len(), enc.slots().len());
    assert_eq!(e.numeric.len(), enc.numeric_width());
}

#[test]
fn infer_follows_its_rule() {
    let mut rows = Vec::new();
    for u in 0..200u32 {
        let age = ["1", "18", "25", "35", "45", "50", "56"][(u % 7) as usize];
        rows.push(row(&[
            ("age", age),
            ("occupation", &(u % 21).to_string()),
            ("gender", if u % 2 == 0 { "M" } else { "F" }),
            ("zip_code", &format!("{:05}", (u * 7919) % 1999)),
            ("year", &(1900 + u % 90).to_string()),
            ("title", &format!("movie {u}")),
            ("constant", "x"),
            ("class", "A|B"),
        ]));
    }
    let s = Encoder::infer(&rows);
    assert_eq!(
        s.to_string(),
        "age:cat,occupation:cat,gender:cat,zip_code:num,year:num,class:multi=|"
    );
    // Non-numeric strings with many values are hashed.
    let many: Vec<_> = (0..3000)
        .map(|u| row(&[("zip", &format!("z{}", u % 1500))]))
        .collect();
    assert_eq!(Encoder::infer(&many).to_string(), "zip:hash=2048");
}

#[test]
fn bytes_round_trip_and_damage_is_an_error() {
    let rows = vec![
        row(&[("g", "M"), ("genres", "A|B"), ("y", "1"), ("z", "48067")]),
        row(&[("g", "F"), ("genres", "B"), ("z", "10001")]),
    ];
    let enc = Encoder::fit(
        &"g:cat,genres:multi=|,y:num,z:hash=100,zp:prefix=3:min=2"
            .parse()
            .unwrap(),
        &rows,
    )
    .unwrap();
    let bytes = enc.to_bytes();
    let back = Encoder::from_bytes(&bytes).unwrap();
    assert_eq!(back, enc);
    assert_eq!(back.encode(&rows[0]), enc.encode(&rows[0]));
    for cut in 0..bytes.len() {
        assert!(matches!(
            Encoder::from_bytes(&bytes[..cut]),
            Err(crate::Error::Corrupted { .. })
        ));
    }
    for i in 0..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[i] ^= bit;
            assert!(
                matches!(Encoder::from_bytes(&b), Err(crate::Error::Corrupted { .. })),
                "byte {i} bit {bit}"
            );
        }
    }
    let empty = Encoder::fit(&Schema::default(), &[]).unwrap();
    assert_eq!(Encoder::from_bytes(&empty.to_bytes()).unwrap(), empty);
}
