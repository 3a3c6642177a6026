use super::*;

#[test]
fn url_encoding_matches_s3() {
    assert_eq!(url_encode("a b/c+d"), "a%20b/c%2Bd");
    assert_eq!(url_encode("ü"), "%C3%BC");
    assert_eq!(url_encode("safe-_.~"), "safe-_.~");
}

#[test]
fn tokens_round_trip_and_reject_garbage() {
    for k in ["", "a", "dir/ü/\u{1}"] {
        assert_eq!(decode_token(&encode_token(k)).expect("round trip"), k);
    }
    assert!(decode_token("!!!").is_err());
}

#[test]
fn max_keys_rules() {
    assert_eq!(max_keys(None).expect("default"), 1000);
    assert_eq!(max_keys(Some(5000)).expect("cap"), 1000);
    assert_eq!(max_keys(Some(0)).expect("zero"), 0);
    assert!(max_keys(Some(-1)).is_err());
}
