//! [`SpanNotes`]: what the stages decided about a request, for the gateway's own span. A stage
//! writes notes into the request view whatever module it runs in; only the tracing stage of
//! the same module reads them, and only when the request's span is exported (otherwise a
//! note costs one branch). Values are configuration words (an outcome, a provider or rule
//! name) or durations: never a token or a claim.

use crate::host::unix_nanos;
use std::time::SystemTime;

/// An attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteValue {
    Text(String),
    Int(i64),
}

impl From<&str> for NoteValue {
    fn from(text: &str) -> Self {
        NoteValue::Text(text.to_string())
    }
}

impl From<String> for NoteValue {
    fn from(text: String) -> Self {
        NoteValue::Text(text)
    }
}

impl From<i64> for NoteValue {
    fn from(n: i64) -> Self {
        NoteValue::Int(n)
    }
}

pub type Attribute = (&'static str, NoteValue);

/// Something that happened at a point in the request's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteEvent {
    pub name: &'static str,
    pub unix_nanos: u64,
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpanNotes {
    recording: bool,
    attributes: Vec<Attribute>,
    events: Vec<NoteEvent>,
}

impl SpanNotes {
    /// The tracing stage exports this request's span: notes are kept from now on.
    pub fn start_recording(&mut self) {
        self.recording = true;
    }

    pub fn is_recording(&self) -> bool {
        self.recording
    }

    /// Sets span attribute `key`, replacing an earlier value (a request judged twice, after a
    /// wait, keeps the final word).
    pub fn attribute(&mut self, key: &'static str, value: impl Into<NoteValue>) {
        if !self.recording {
            return;
        }
        let value = value.into();
        match self.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.attributes.push((key, value)),
        }
    }

    pub fn event(&mut self, name: &'static str, at: SystemTime, attributes: Vec<Attribute>) {
        if self.recording {
            self.events.push(NoteEvent {
                name,
                unix_nanos: unix_nanos(at),
                attributes,
            });
        }
    }

    pub fn attributes(&self) -> &[Attribute] {
        &self.attributes
    }

    pub fn events(&self) -> &[NoteEvent] {
        &self.events
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn notes_are_kept_only_while_recording() {
        let mut notes = SpanNotes::default();
        notes.attribute("a", "dropped");
        notes.event("e", UNIX_EPOCH, Vec::new());
        assert!(notes.attributes().is_empty() && notes.events().is_empty());

        notes.start_recording();
        notes.attribute("a", "first");
        notes.attribute("b", 7);
        notes.attribute("a", "final");
        let at = UNIX_EPOCH + Duration::from_millis(1500);
        notes.event("e", at, vec![("n", NoteValue::Int(1))]);
        assert_eq!(
            notes.attributes(),
            [("a", "final".into()), ("b", NoteValue::Int(7))]
        );
        assert_eq!(notes.events()[0].unix_nanos, 1_500_000_000);
    }
}
