//! W3C Trace Context Level 1 `tracestate`: a list of vendor `key=value` members that travels
//! with a continued `traceparent`. Invalid lists are dropped whole; valid ones are kept up to
//! the spec's limits (32 members, 512 characters).

/// At most this many list-members; a longer list is dropped whole.
pub const MAX_MEMBERS: usize = 32;
/// The combined value is cut to this many characters.
pub const MAX_LEN: usize = 512;
/// When cutting, members longer than this go first.
const LARGE_MEMBER: usize = 128;

/// The `tracestate` to pass upstream from the incoming values (repeated headers are one list
/// joined by commas), or `None` to send none: invalid member, duplicate key, too many members,
/// or nothing left.
pub fn sanitize<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut members: Vec<&str> = Vec::new();
    for value in values {
        for member in value.split(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let key = member_key(member)?;
            if members
                .iter()
                .any(|m| m.split_once('=').map(|(k, _)| k) == Some(key))
            {
                return None;
            }
            members.push(member);
            if members.len() > MAX_MEMBERS {
                return None;
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
fn member_key(member: &str) -> Option<&str> {
    let (key, value) = member.split_once('=')?;
    (valid_key(key) && valid_value(value)).then_some(key)
}

fn key_char(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'-' | b'*' | b'/')
}

/// `simple-key` (lcalpha, then up to 255 key chars) or `tenant@system` (tenant: lcalpha or
/// digit then up to 240; system: lcalpha then up to 13).
fn valid_key(key: &str) -> bool {
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

    fn one(value: &str) -> Option<String> {
        sanitize([value])
    }

    #[test]
    fn valid_lists_are_kept_normalised() {
        let cases = [
            ("rojo=00f067aa0ba902b7", "rojo=00f067aa0ba902b7"),
            ("rojo=1, congo=t61rcWkgMzE", "rojo=1,congo=t61rcWkgMzE"),
            (" a=1 ,, \t,b=2\t", "a=1,b=2"),
            ("tenant@vendor=x,0t@v_*-/=y", "tenant@vendor=x,0t@v_*-/=y"),
            ("k=has inner space", "k=has inner space"),
        ];
        for (input, expected) in cases {
            assert_eq!(one(input).as_deref(), Some(expected), "{input:?}");
        }
        assert_eq!(sanitize(["a=1", "b=2"]).as_deref(), Some("a=1,b=2"));
    }

    #[test]
    fn invalid_lists_are_dropped() {
        let long_value = format!("k={}", "v".repeat(257));
        let long_key = format!("{}=v", "k".repeat(257));
        let long_system = "t@abcdefghijklmno=v".to_string();
        let cases = [
            ("empty", ""),
            ("only commas", " , ,"),
            ("no equals", "rojo"),
            ("upper-case key", "Rojo=1"),
            ("key starts with digit", "1rojo=1"),
            ("empty value", "rojo="),
            ("space in key", "ro jo=1"),
            ("equals in value", "rojo=a=b"),
            ("control character", "rojo=a\u{1}b"),
            ("non-ascii", "rojo=é"),
            ("empty tenant", "@v=1"),
            ("system starts with digit", "t@1v=1"),
            ("duplicate key", "a=1,b=2,a=3"),
            ("value too long", long_value.as_str()),
            ("key too long", long_key.as_str()),
            ("system id too long", long_system.as_str()),
        ];
        for (why, input) in cases {
            assert_eq!(one(input), None, "{why}: {input:?}");
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
        assert_eq!(one(&list(32)), Some(list(32)));
        assert_eq!(one(&list(33)), None);
    }

    #[test]
    fn long_lists_are_cut_to_512_large_members_first_then_from_the_end() {
        // 10 members of 50 characters (509 with commas) and one of 200 in the middle.
        let member = |i: usize, len: usize| format!("k{i:02}={}", "v".repeat(len - 4));
        let mut members: Vec<String> = (0..10).map(|i| member(i, 50)).collect();
        members.insert(5, member(99, 200));
        let kept = one(&members.join(",")).unwrap();
        assert!(!kept.contains("k99="), "the large member goes first");
        assert_eq!(kept.len(), 509);

        // 12 members of 50: the last two go.
        let members: Vec<String> = (0..12).map(|i| member(i, 50)).collect();
        let kept = one(&members.join(",")).unwrap();
        assert_eq!(kept, members[..10].join(","));
        assert!(kept.len() <= MAX_LEN);
    }
}
