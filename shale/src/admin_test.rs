//! `shale admin` helpers: seed addresses, generated keys, table and range printing.

use super::*;

#[test]
fn seeds_come_from_the_flag_or_the_environment() {
    let flag = vec!["a:1".to_owned(), " b:2 ".to_owned()];
    assert_eq!(seeds(&flag, Some("x:9".into())).unwrap(), ["a:1", "b:2"]);
    assert_eq!(seeds(&[], Some("x:9,,y:8".into())).unwrap(), ["x:9", "y:8"]);
    assert!(seeds(&[], None).is_err());
}

#[test]
fn generated_keys_have_the_expected_shape() {
    let env = Env::seeded(7);
    let id = random_string(&env, "SK", ID_ALPHABET, 20);
    let secret = random_string(&env, "", SECRET_ALPHABET, 40);
    assert_eq!(id.len(), 20);
    assert!(id.starts_with("SK"));
    assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)));
    assert_eq!(secret.len(), 40);
    assert_ne!(id, random_string(&env, "SK", ID_ALPHABET, 20));
}

#[test]
fn tables_and_ranges_print_readably() {
    let t = table(
        &["A", "LONGER"],
        &[
            vec!["x".into(), "y".into()],
            vec!["wide".into(), "z".into()],
        ],
    );
    assert_eq!(t, "  A    LONGER\n  x    y\n  wide z\n");
    let g = GroupRange {
        group: GroupId(1),
        start: Vec::new(),
        end: Some(b"g\x00".to_vec()),
        members: Default::default(),
    };
    assert_eq!(range_text(&g), "[(start), g\\x00)");
    assert_eq!(bytes(512), "512 B");
    assert_eq!(bytes(3 << 30), "3.0 GiB");
    assert_eq!(ago(10_000, 4_000), "6s ago");
    assert_eq!(ago(10_000, 0), "never");
}
