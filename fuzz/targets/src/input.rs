//! The byte layout every target reads: a few fixed-size numbers, then fields ended by a NUL
//! byte, then the rest. Text stays text, so libFuzzer's dictionary and ASCII mutations land on
//! tokens, paths and headers; [`Seed`] writes the same layout.

/// Reads an input front to back; past the end every read is zero or empty.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }

    pub fn bool(&mut self) -> bool {
        self.byte() & 1 == 1
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }

    /// Bytes up to the next NUL (which is consumed), or to the end.
    pub fn field(&mut self) -> &'a [u8] {
        match self.data.iter().position(|&b| b == 0) {
            Some(i) => {
                let (field, rest) = self.data.split_at(i);
                self.data = rest.get(1..).unwrap_or_default();
                field
            }
            None => std::mem::take(&mut self.data),
        }
    }

    /// [`Input::field`] as text (invalid UTF-8 replaced, as a host hands strings over).
    pub fn text(&mut self) -> String {
        String::from_utf8_lossy(self.field()).into_owned()
    }

    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }

    pub fn rest_text(&mut self) -> String {
        String::from_utf8_lossy(self.rest()).into_owned()
    }
}

/// Builds an input in the layout [`Input`] reads.
#[derive(Default)]
pub struct Seed(Vec<u8>);

impl Seed {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn byte(mut self, b: u8) -> Self {
        self.0.push(b);
        self
    }

    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn field(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.0.extend_from_slice(bytes.as_ref());
        self.0.push(0);
        self
    }

    pub fn rest(mut self, bytes: impl AsRef<[u8]>) -> Vec<u8> {
        self.0.extend_from_slice(bytes.as_ref());
        self.0
    }

    pub fn build(self) -> Vec<u8> {
        self.0
    }
}
