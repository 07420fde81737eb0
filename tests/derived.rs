//! `Db::concat_tables`: normalised row-wise concatenation of published tables.

use recdb::{Db, Error, RowSpace};

fn other(db: &Db, name: &str, dim: usize, rows: &[f32], ids: &[&str]) {
    db.put_table(
        name,
        RowSpace::Other,
        dim,
        rows,
        ids.iter().map(|s| s.to_string()).collect(),
    )
    .unwrap();
}

#[test]
fn concat_normalises_and_matches_rows_by_id() {
    let db = Db::temporary().unwrap();
    other(&db, "a", 2, &[3.0, 4.0, 0.0, 2.0], &["x", "y"]);
    // Same ids in the other order, and a zero row: it stays zero.
    other(&db, "b", 1, &[0.0, -5.0], &["y", "x"]);
    db.concat_tables("ab", &["a", "b"]).unwrap();
    let t = db.table("ab").unwrap();
    assert_eq!((t.rows(), t.dim(), t.space()), (2, 3, RowSpace::Other));
    assert_eq!(db.row_id(&t, 0), "x");
    assert_eq!(t.row(0).to_vec(), vec![0.6, 0.8, -1.0]);
    assert_eq!(db.row_id(&t, 1), "y");
    assert_eq!(t.row(1).to_vec(), vec![0.0, 1.0, 0.0]);
    assert!(db.tables().unwrap().iter().any(|i| i.name == "ab"));
}

#[test]
fn concat_dense_spaces_and_three_tables() {
    let db = Db::temporary().unwrap();
    db.put_table("u1", RowSpace::Users, 1, &[2.0, -3.0], vec![])
        .unwrap();
    db.put_table("u2", RowSpace::Users, 2, &[0.0, 1.0, 1.0, 0.0], vec![])
        .unwrap();
    db.put_table("u3", RowSpace::Users, 1, &[7.0, 7.0], vec![])
        .unwrap();
    db.concat_tables("u", &["u1", "u2", "u3"]).unwrap();
    let t = db.table("u").unwrap();
    assert_eq!((t.rows(), t.dim(), t.space()), (2, 4, RowSpace::Users));
    assert_eq!(t.row(1).to_vec(), vec![-1.0, 1.0, 0.0, 1.0]);
}

#[test]
fn concat_errors() {
    let db = Db::temporary().unwrap();
    other(&db, "a", 1, &[1.0, 2.0], &["x", "y"]);
    other(&db, "b", 1, &[1.0], &["x"]);
    other(&db, "c", 1, &[1.0, 2.0, 3.0], &["x", "y", "z"]);
    db.put_table("i", RowSpace::Items, 1, &[1.0, 2.0], vec![])
        .unwrap();
    let before = db.tables().unwrap();
    let msg = |r: recdb::Result<u64>| r.unwrap_err().to_string();
    assert!(matches!(
        db.concat_tables("n", &["a"]),
        Err(Error::InvalidParameter { .. })
    ));
    assert!(matches!(
        db.concat_tables("n", &["a", "nope"]),
        Err(Error::UnknownTable(t)) if t == "nope"
    ));
    assert!(msg(db.concat_tables("n", &["a", "i"])).contains("items"));
    assert!(msg(db.concat_tables("n", &["a", "b"])).contains("`y`"));
    assert!(msg(db.concat_tables("n", &["a", "c"])).contains("`z`"));
    assert!(msg(db.concat_tables("Bad Name", &["a", "c"])).contains("table"));
    // Failed concats publish nothing.
    assert_eq!(db.tables().unwrap(), before);
}
