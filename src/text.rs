//! One rule for free text, used by every field a person types (names, addresses, reasons,
//! counters, messages): a length in characters as sent, and no control characters or invisible
//! format characters (zero-width spaces, bidirectional overrides, soft hyphens…), which hide
//! what a text says from the person reading it and defeat duplicate checks.

/// Unicode's format characters (general category Cf) and the line and paragraph separators.
const INVISIBLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x2028, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

/// Code points that show nothing where they stand: Unicode's Default_Ignorable_Code_Point set
/// (variation selectors, Hangul and Mongolian fillers, joiners, tags…) and the blanks that are
/// letters or symbols by category yet draw no ink (the braille blank, the Khitan filler). Text
/// may carry them — some scripts need them — but they never tell two names apart.
const IGNORABLE: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x034F, 0x034F),
    (0x061C, 0x061C),
    (0x115F, 0x1160),
    (0x17B4, 0x17B5),
    (0x180B, 0x180F),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x206F),
    (0x2800, 0x2800),
    (0x3164, 0x3164),
    (0xFE00, 0xFE0F),
    (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0),
    (0xFFF0, 0xFFF8),
    (0x16FE4, 0x16FE4),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
];

/// Whether `c` draws nothing: default-ignorable, or a filler or blank (see [`IGNORABLE`]).
pub fn ignorable(c: char) -> bool {
    let n = c as u32;
    IGNORABLE.iter().any(|(lo, hi)| (*lo..=*hi).contains(&n))
}

/// `s` without the code points that draw nothing.
pub fn without_ignorable(s: &str) -> String {
    s.chars().filter(|c| !ignorable(*c)).collect()
}

/// Whether `s` shows nothing at all: only whitespace, fillers and default-ignorable code points.
pub fn shows_nothing(s: &str) -> bool {
    s.chars().all(|c| c.is_whitespace() || ignorable(c))
}

/// Whether `c` may not appear in typed text (`\n` is allowed where `multiline`).
pub fn forbidden(c: char, multiline: bool) -> bool {
    if c == '\n' && multiline {
        return false;
    }
    let n = c as u32;
    c.is_control() || INVISIBLE.iter().any(|(lo, hi)| (*lo..=*hi).contains(&n))
}

/// The message every broken text field reports.
pub fn rule(max: usize) -> String {
    format!("1 to {max} characters, without control or invisible formatting characters")
}

/// A required one-line text: 1 to `max` characters as sent, not blank, nothing forbidden.
/// Returns it trimmed.
pub fn line(raw: &str, max: usize) -> Result<String, String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() || raw.chars().count() > max || raw.chars().any(|c| forbidden(c, false)) {
        return Err(rule(max));
    }
    Ok(trimmed.to_string())
}

/// Optional text (it may be empty), at most `max` characters as sent, nothing forbidden.
pub fn optional(raw: &str, max: usize, multiline: bool) -> Result<String, String> {
    if raw.chars().count() > max || raw.chars().any(|c| forbidden(c, multiline)) {
        return Err(format!(
            "at most {max} characters, without control or invisible formatting characters"
        ));
    }
    Ok(raw.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invisible_and_control_characters_are_refused_and_plain_text_kept() {
        for bad in [
            "Al\u{200b}ice",
            "\u{202e}ecila",
            "a\u{0}b",
            "a\r\nb",
            "soft\u{ad}hyphen",
            "\u{feff}x",
        ] {
            assert!(line(bad, 100).is_err(), "{bad:?}");
        }
        assert_eq!(
            line("  Zoë O'Brien-Núñez  ", 100).unwrap(),
            "Zoë O'Brien-Núñez"
        );
        assert_eq!(line("李小龍", 100).unwrap(), "李小龍");
        assert!(line("   ", 100).is_err());
        assert!(line(&"x".repeat(101), 100).is_err());
        assert!(optional("Main St 1\nVienna", 500, true).is_ok());
        assert!(optional("Main St 1\nVienna", 500, false).is_err());
        assert!(optional("", 500, true).is_ok());
    }

    #[test]
    fn fillers_and_default_ignorables_show_nothing_and_letters_do() {
        for blank in [
            "\u{3164}",
            "\u{115F}\u{1160}",
            "\u{2800} \u{FFA0}",
            "\u{FE0F}",
            "\u{E0100}",
        ] {
            assert!(shows_nothing(blank), "{blank:?}");
        }
        assert!(!shows_nothing("A\u{3164}"));
        assert_eq!(without_ignorable("Po\u{FE0F}nd\u{2800}"), "Pond");
    }
}
