//! Folding of names for search and matching: "José García-López" and
//! "jose garcia lopez" must meet.

/// Lower-case ASCII with accents transliterated (`Zoë` → `zoe`, `Nguyễn` →
/// `nguyen`) and anything but letters, digits, spaces, hyphens and
/// apostrophes dropped.
pub fn fold(s: &str) -> String {
    deunicode::deunicode(s)
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | ' ' | '-' | '\'' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            '\t' | ',' | '.' | '/' => Some(' '),
            _ => None,
        })
        .collect()
}

/// The searchable tokens of a name: each part of a hyphenated or multi-word
/// name on its own, apostrophes removed (`O'Brien` → `obrien`), and for
/// multi-part names the parts run together (`De la Cruz` → `delacruz`), so
/// that however the front desk types it, a token matches.
pub fn name_tokens(name: &str) -> Vec<String> {
    let folded = fold(name).replace('\'', "");
    let parts: Vec<&str> = folded.split([' ', '-']).filter(|p| !p.is_empty()).collect();
    let mut tokens: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
    if parts.len() > 1 {
        tokens.push(parts.concat());
    }
    tokens.sort();
    tokens.dedup();
    tokens
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accents_case_and_punctuation_fold_away() {
        assert_eq!(fold("José"), "jose");
        assert_eq!(fold("ZOË"), "zoe");
        assert_eq!(fold("Nguyễn"), "nguyen");
        assert_eq!(fold("Smith, John"), "smith  john");
    }

    #[test]
    fn compound_names_give_each_part_and_the_whole() {
        assert_eq!(
            name_tokens("García-López"),
            vec!["garcia", "garcialopez", "lopez"]
        );
        assert_eq!(
            name_tokens("De la Cruz"),
            vec!["cruz", "de", "delacruz", "la"]
        );
        assert_eq!(name_tokens("O'Brien"), vec!["obrien"]);
        assert!(name_tokens("  ").is_empty());
    }
}
