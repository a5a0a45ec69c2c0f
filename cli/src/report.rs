//! What `wasmgate check` found, printed for a reader (one line each) or for CI (`--format json`).

use serde_json::{json, Value};
use std::io::IsTerminal;

/// Colour for a reader at a terminal: green `ok`, red refusals, yellow warnings. None in a pipe
/// or a CI log, nor with `NO_COLOR` set (no-color.org).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paint(pub bool);

impl Paint {
    pub fn for_stdout() -> Self {
        Paint(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none())
    }

    fn wrap(self, sgr: &str, text: &str) -> String {
        if self.0 {
            format!("\x1b[{sgr}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// One configuration's verdict.
#[derive(Debug)]
pub struct Checked {
    /// `file:line`, or the file alone for a bare configuration.
    pub at: String,
    pub place: String,
    pub module: String,
    /// The line the module would log when refusing; `None` when it accepts.
    pub refused: Option<String>,
    /// (name, message) of every warning not silenced with `--allow`.
    pub warnings: Vec<(&'static str, String)>,
}

pub fn text(checked: &[Checked], paint: Paint) -> String {
    let mut out = String::new();
    for c in checked {
        let verdict = match &c.refused {
            Some(line) => paint.wrap("31", line),
            None => paint.wrap("32", "ok"),
        };
        out.push_str(&format!(
            "{}: {} ({}): {verdict}\n",
            c.at, c.place, c.module
        ));
        for (name, message) in &c.warnings {
            let label = paint.wrap("33", "warning:");
            out.push_str(&format!("{}: {label} {message} (--allow {name})\n", c.at));
        }
    }
    out
}

pub fn json(checked: &[Checked]) -> String {
    let items: Vec<Value> = checked
        .iter()
        .map(|c| {
            json!({
                "at": c.at,
                "place": c.place,
                "module": c.module,
                "ok": c.refused.is_none(),
                "refused": c.refused,
                "warnings": c.warnings.iter()
                    .map(|(name, message)| json!({"name": name, "message": message}))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let refused = checked.iter().filter(|c| c.refused.is_some()).count();
    format!("{}\n", json!({"configurations": items, "refused": refused}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_say_the_same() {
        let checked = [Checked {
            at: "gw.yaml:55".into(),
            place: "root_id gateway".into(),
            module: "gateway".into(),
            refused: Some("wasmgate gateway: invalid plugin configuration: x: y".into()),
            warnings: vec![("client-address", "rule r …".into())],
        }];
        assert_eq!(
            text(&checked, Paint(false)),
            "gw.yaml:55: root_id gateway (gateway): wasmgate gateway: invalid plugin configuration: x: y\n\
             gw.yaml:55: warning: rule r … (--allow client-address)\n"
        );
        let coloured = text(&checked, Paint(true));
        assert!(coloured
            .contains("\x1b[31mwasmgate gateway: invalid plugin configuration: x: y\x1b[0m"));
        assert!(coloured.contains("\x1b[33mwarning:\x1b[0m rule r"));
        let doc: Value = serde_json::from_str(&json(&checked)).unwrap_or_default();
        assert_eq!(doc["refused"], 1);
        assert_eq!(doc["configurations"][0]["ok"], false);
        assert_eq!(
            doc["configurations"][0]["warnings"][0]["name"],
            "client-address"
        );
    }
}
