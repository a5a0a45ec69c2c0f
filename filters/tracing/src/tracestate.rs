//! W3C Trace Context `tracestate`: a list of vendor `key=value` members that travels with a
//! continued `traceparent`. Invalid lists are dropped whole; valid ones are kept up to the
//! spec's limits (32 members, 512 characters).
//!
//! Two rule sets ([`W3cLevel`]): Level 2 (the default, what the W3C test suite checks in its
//! strict mode) takes any key of lower-case letters, digits and `_-*/@` up to 256 characters
//! and keeps the first of duplicated keys; Level 1 requires `simple-key` or `tenant@system`
//! and drops a list with a duplicated key.

use crate::config::W3cLevel;

/// At most this many list-members; a longer list is dropped whole.
pub const MAX_MEMBERS: usize = 32;
/// The combined value is cut to this many characters.
pub const MAX_LEN: usize = 512;
/// When cutting, members longer than this go first.
const LARGE_MEMBER: usize = 128;

/// The `tracestate` to pass upstream from the incoming values (repeated headers are one list
/// joined by commas), or `None` to send none: an invalid member, too many members, a
/// duplicated key at Level 1, or nothing left.
pub fn sanitize<'a>(values: impl IntoIterator<Item = &'a str>, level: W3cLevel) -> Option<String> {
    let mut members: Vec<&str> = Vec::new();
    let mut count = 0;
    for value in values {
        for member in value.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let key = member_key(member, level)?;
            count += 1;
            if count > MAX_MEMBERS {
                return None;
            }
            let duplicate = members
                .iter()
                .any(|m| m.split_once('=').map(|(k, _)| k) == Some(key));
            match (duplicate, level) {
                (false, _) => members.push(member),
                // The spec lets a vendor discard duplicates it did not make; the first wins.
                (true, W3cLevel::Two) => {}
                (true, W3cLevel::One) => return None,
            }
        }
    }
    truncate(&mut members);
    if members.is_empty() {
        None
    } else {
        Some(members.join(","))
    }
}

/// Removes members until the joined list fits in [`MAX_LEN`]: large members first, then from
/// the end, as the spec recommends.
fn truncate(members: &mut Vec<&str>) {
    let joined_len =
        |m: &[&str]| m.iter().map(|s| s.len()).sum::<usize>() + m.len().saturating_sub(1);
    if joined_len(members) <= MAX_LEN {
        return;
    }
    while joined_len(members) > MAX_LEN {
        match members.iter().rposition(|m| m.len() > LARGE_MEMBER) {
            Some(large) => {
                members.remove(large);
            }
            None => {
                members.pop();
            }
        }
    }
}

/// The key of a valid `key=value` member, or `None`.
fn member_key(member: &str, level: W3cLevel) -> Option<&str> {
    let (key, value) = member.split_once('=')?;
    let key_ok = match level {
        W3cLevel::One => level1_key(key),
        W3cLevel::Two => level2_key(key),
    };
    (key_ok && valid_value(value)).then_some(key)
}

fn key_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
}

/// Level 2: `(lcalpha / DIGIT) 0*255(keychar)`, where `@` is one more key char.
fn level2_key(key: &str) -> bool {
    match key.as_bytes().split_first() {
        Some((first, rest)) => {
            (first.is_ascii_lowercase() || first.is_ascii_digit())
                && rest.len() <= 255
                && rest.iter().all(|c| key_char(*c) || *c == b'@')
        }
        None => false,
    }
}

/// Level 1: `simple-key` (lcalpha, then up to 255 key chars) or `tenant@system` (tenant:
/// lcalpha or digit then up to 240; system: lcalpha then up to 13).
fn level1_key(key: &str) -> bool {
    let rest_ok = |s: &[u8], max: usize| s.len() <= max && s.iter().all(|c| key_char(*c));
    match key.split_once('@') {
        None => match key.as_bytes().split_first() {
            Some((first, rest)) => first.is_ascii_lowercase() && rest_ok(rest, 255),
            None => false,
        },
        Some((tenant, system)) => {
            let tenant_ok = match tenant.as_bytes().split_first() {
                Some((first, rest)) => {
                    (first.is_ascii_lowercase() || first.is_ascii_digit()) && rest_ok(rest, 240)
                }
                None => false,
            };
            let system_ok = match system.as_bytes().split_first() {
                Some((first, rest)) => first.is_ascii_lowercase() && rest_ok(rest, 13),
                None => false,
            };
            tenant_ok && system_ok
        }
    }
}

/// 1 to 256 printable ASCII characters without `,` or `=`, not ending in a space.
fn valid_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    let printable = |c: &u8| (0x20..=0x7e).contains(c) && *c != b',' && *c != b'=';
    !bytes.is_empty()
        && bytes.len() <= 256
        && bytes.iter().all(printable)
        && bytes.last() != Some(&b' ')
}

#[cfg(test)]
mod tests {
    use super::*;
    use W3cLevel::{One, Two};

    fn one(value: &str, level: W3cLevel) -> Option<String> {
        sanitize([value], level)
    }

    #[test]
    fn valid_lists_are_kept_normalised_at_both_levels() {
        let cases = [
            ("rojo=00f067aa0ba902b7", "rojo=00f067aa0ba902b7"),
            ("rojo=1, congo=t61rcWkgMzE", "rojo=1,congo=t61rcWkgMzE"),
            (" a=1 ,, \t,b=2\t", "a=1,b=2"),
            ("tenant@vendor=x,0t@v_*-/=y", "tenant@vendor=x,0t@v_*-/=y"),
            ("k=has inner space", "k=has inner space"),
            ("k= leading space kept", "k= leading space kept"),
        ];
        for level in [One, Two] {
            for (input, expected) in cases {
                assert_eq!(one(input, level).as_deref(), Some(expected), "{input:?}");
            }
            assert_eq!(sanitize(["a=1", "b=2"], level).as_deref(), Some("a=1,b=2"));
        }
    }

    #[test]
    fn invalid_lists_are_dropped_at_both_levels() {
        let long_value = format!("k={}", "v".repeat(257));
        let long_key = format!("{}=v", "k".repeat(257));
        let cases = [
            ("empty", ""),
            ("only commas", " , ,"),
            ("no equals", "rojo"),
            ("upper-case key", "Rojo=1"),
            ("space in key", "ro jo=1"),
            ("dot in key", "foo.bar=1"),
            ("equals in value", "rojo=a=b"),
            ("empty value", "foo=,bar=3"),
            ("control character", "rojo=a\u{1}b"),
            ("non-ascii", "rojo=é"),
            ("key starts with @", "@foo=1,bar=2"),
            ("value too long", long_value.as_str()),
            ("key too long", long_key.as_str()),
        ];
        for level in [One, Two] {
            for (why, input) in cases {
                assert_eq!(one(input, level), None, "{level:?} {why}: {input:?}");
            }
        }
    }

    /// The W3C test suite's strict-mode (`STRICT_LEVEL=2`) `tracestate` cases, as our vectors.
    #[test]
    fn level_2_matches_the_w3c_strict_test_suite() {
        let kept = |values: &[&str]| sanitize(values.iter().copied(), Two);
        // test_tracestate_duplicated_keys: inherited, duplicates kept or one discarded.
        assert_eq!(kept(&["foo=1,foo=1"]).as_deref(), Some("foo=1"));
        assert_eq!(kept(&["foo=1,foo=2"]).as_deref(), Some("foo=1"));
        assert_eq!(kept(&["foo=1", "foo=2"]).as_deref(), Some("foo=1"));
        // test_tracestate_key_illegal_vendor_format: `@` anywhere but first.
        for key in ["foo@", "foo@@bar", "foo@bar@baz"] {
            let list = format!("{key}=1,bar=2");
            assert_eq!(kept(&[&list]), Some(list.clone()));
        }
        // test_tracestate_key_length_limit: 256 characters with or without `@`.
        let keys = [
            "z".repeat(256),
            format!("{}@{}", "t".repeat(241), "v".repeat(14)),
            format!("{}@v", "t".repeat(242)),
            format!("t@{}", "v".repeat(15)),
        ];
        for key in keys {
            let member = format!("{key}=1");
            assert_eq!(kept(&["foo=1", &member]), Some(format!("foo=1,{member}")));
        }
        assert_eq!(kept(&["foo=1", &format!("{}=1", "z".repeat(257))]), None);
        // test_tracestate_all_allowed_characters.
        let key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/";
        let value: String = (0x20u8..=0x7e)
            .filter(|c| *c != b',' && *c != b'=')
            .map(char::from)
            .collect();
        for key in [key.to_string(), format!("{key}@a-z0-9_-*/")] {
            let member = format!("{key}={value}");
            assert_eq!(kept(&[&member]), Some(member.clone()));
        }
        // test_tracestate_ows_handling.
        for list in [
            "foo=1 \t , \t bar=2, \t baz=3",
            "foo=1\t \t,\t \tbar=2,\t \tbaz=3",
        ] {
            assert_eq!(kept(&[list]).as_deref(), Some("foo=1,bar=2,baz=3"));
        }
        for list in [" foo=1", "\tfoo=1", "foo=1 ", "foo=1\t", "\t foo=1 \t"] {
            assert_eq!(kept(&[list]).as_deref(), Some("foo=1"));
        }
        // test_tracestate_empty_header: accepted, and no empty header sent.
        assert_eq!(kept(&[""]), None);
        assert_eq!(kept(&["", "foo=1"]).as_deref(), Some("foo=1"));
    }

    #[test]
    fn level_1_keeps_its_stricter_key_grammar_and_drops_duplicates() {
        let long_system = format!("t@{}=v", "v".repeat(15));
        for list in [
            "foo@=1",
            "foo@@bar=1",
            "foo@bar@baz=1",
            "1rojo=1",
            "t@1v=1",
            long_system.as_str(),
            "a=1,b=2,a=3",
        ] {
            assert_eq!(one(list, One), None, "{list}");
            assert!(one(list, Two).is_some(), "{list}");
        }
    }

    #[test]
    fn member_count_limit_is_32() {
        let list = |n: usize| {
            (0..n)
                .map(|i| format!("k{i}=v"))
                .collect::<Vec<_>>()
                .join(",")
        };
        for level in [One, Two] {
            assert_eq!(one(&list(32), level), Some(list(32)));
            assert_eq!(one(&list(33), level), None);
        }
    }

    #[test]
    fn long_lists_are_cut_to_512_large_members_first_then_from_the_end() {
        // 10 members of 50 characters (509 with commas) and one of 200 in the middle.
        let member = |i: usize, len: usize| format!("k{i:02}={}", "v".repeat(len - 4));
        let mut members: Vec<String> = (0..10).map(|i| member(i, 50)).collect();
        members.insert(5, member(99, 200));
        let kept = one(&members.join(","), Two).unwrap();
        assert!(!kept.contains("k99="), "the large member goes first");
        assert_eq!(kept.len(), 509);

        // 12 members of 50: the last two go.
        let members: Vec<String> = (0..12).map(|i| member(i, 50)).collect();
        let kept = one(&members.join(","), Two).unwrap();
        assert_eq!(kept, members[..10].join(","));
        assert!(kept.len() <= MAX_LEN);
    }
}
