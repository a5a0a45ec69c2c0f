//! The JSON path (`rules[2].capacity`) of the value a parser was reading at a byte offset.
//!
//! serde_json reports where an error happened as a line and column; walking the document up to
//! that point names the field. This replaces wrapping every deserializer in a path tracker,
//! which cost each module ~10 % of its code (one tracked copy of every configuration type).

/// The path at `offset` in `json`: the keys and indices of the containers open there and,
/// inside an object, the key last read. Tolerant: a malformed document gives the path so far.
pub fn path_at(json: &[u8], offset: usize) -> String {
    let mut stack: Vec<Frame> = Vec::new();
    let mut at = 0;
    let end = offset.min(json.len());
    while at < end {
        match json.get(at).copied().unwrap_or(b' ') {
            b'"' => {
                let (text, next) = string(json, at + 1);
                if let Some(Frame::Object { key, in_value }) = stack.last_mut() {
                    if !*in_value {
                        *key = Some(text);
                    }
                }
                at = next;
                continue;
            }
            b'{' => stack.push(Frame::Object {
                key: None,
                in_value: false,
            }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b':' => {
                if let Some(Frame::Object { in_value, .. }) = stack.last_mut() {
                    *in_value = true;
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, in_value }) => {
                    *key = None;
                    *in_value = false;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            _ => {}
        }
        at += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(k), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

/// The byte offset of serde_json's 1-based `line` and its `column` (bytes into that line).
pub fn offset_of(json: &[u8], line: usize, column: usize) -> usize {
    let line_start = json
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .nth(line.saturating_sub(2))
        .map_or(0, |(i, _)| i + 1);
    let line_start = if line <= 1 { 0 } else { line_start };
    line_start + column
}

enum Frame {
    Object { key: Option<String>, in_value: bool },
    Array { index: usize },
}

/// A string's text (escapes other than `\"` and `\\` kept as written: keys in errors only)
/// and the offset after its closing quote.
fn string(json: &[u8], mut at: usize) -> (String, usize) {
    let mut text = Vec::new();
    while let Some(&b) = json.get(at) {
        at += 1;
        match b {
            b'"' => break,
            b'\\' => {
                if let Some(&escaped) = json.get(at) {
                    at += 1;
                    if !matches!(escaped, b'"' | b'\\') {
                        text.push(b'\\');
                    }
                    text.push(escaped);
                }
            }
            _ => text.push(b),
        }
    }
    (String::from_utf8_lossy(&text).into_owned(), at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at_marker(doc: &str) -> String {
        let offset = doc.find('¦').unwrap_or(doc.len());
        path_at(doc.replace('¦', "").as_bytes(), offset)
    }

    #[test]
    fn keys_and_indices_of_the_open_containers() {
        assert_eq!(
            at_marker(r#"{"rules":[{"a":1},{"capacty"¦:2}]}"#),
            "rules[1].capacty"
        );
        assert_eq!(at_marker(r#"{"ratio":"high"¦}"#), "ratio");
        assert_eq!(at_marker(r#"{"a":{"b":[1,2,[3,"x"¦]]}}"#), "a.b[2][1]");
        assert_eq!(at_marker(r#"{"p":[{"name":"x"}¦]}"#), "p[0]");
        assert_eq!(at_marker(r#"{"x":1}¦"#), "");
    }

    #[test]
    fn strings_with_brackets_and_escaped_quotes_are_text() {
        assert_eq!(at_marker(r#"{"a":"[{,\"}","b"¦:1}"#), "b");
    }

    #[test]
    fn offsets_from_line_and_column() {
        let doc = b"{\n  \"a\": 1,\n  \"b\": x\n}";
        assert_eq!(offset_of(doc, 1, 1), 1);
        assert_eq!(offset_of(doc, 3, 7), 12 + 7);
        assert_eq!(path_at(doc, offset_of(doc, 3, 7)), "b");
    }
}
