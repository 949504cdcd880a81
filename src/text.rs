//! Bounded text: what the service echoes back in answers or records on entries
//! is cut to a known number of characters, never inside a character.

/// The first `max_chars` characters of `text` (all of it when shorter).
pub fn prefix(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

/// `text` cut to `max_chars` characters, with `...` added where it was cut.
pub fn truncated(text: &str, max_chars: usize) -> String {
    let kept = prefix(text, max_chars);
    if kept.len() == text.len() {
        text.to_owned()
    } else {
        format!("{kept}...")
    }
}

/// Serializes a value as its `Display` text (`#[serde(serialize_with)]`).
pub fn display<T: std::fmt::Display, S: serde::Serializer>(
    value: &T,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_str(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_characters_not_bytes() {
        assert_eq!(prefix("ab", 5), "ab");
        assert_eq!(prefix("éèêë", 2), "éè");
        assert_eq!(truncated("éèêë", 2), "éè...");
        assert_eq!(truncated("éè", 2), "éè");
    }
}
