//! The SQL sanitizer on arbitrary text (no panic), and on queries built from the input out of
//! literals of every kind next to keywords, identifiers, placeholders and comments: no digit and
//! no quote of a literal may survive into `db.query.text`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lightstep_instrument::sql::{DoubleQuotes, sanitize, sanitize_with, summarize};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = sanitize(&text);
    let _ = sanitize_with(&text, DoubleQuotes::Identifier);
    let _ = sanitize_with(&text, DoubleQuotes::Literal);
    let _ = summarize(&text);

    let query = query(data);
    let out = sanitize(&query);
    assert!(
        !out.contains(|c: char| c.is_ascii_digit() || c == '\''),
        "a literal survived: {query:?} -> {out:?}"
    );
});

/// A query of tokens chosen by the input: each token takes a kind byte and up to eight bytes of
/// content. Only literals and comments hold digits or quotes.
fn query(data: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some((&kind, tail)) = rest.split_first() {
        let take = tail.len().min(8);
        let (content, tail) = tail.split_at(take);
        rest = tail;
        let number = content
            .iter()
            .fold(0u64, |n, &b| n.wrapping_mul(251).wrapping_add(u64::from(b)));
        // Printable ASCII from the content (no backslash: its meaning depends on the dialect).
        let printable: String = content
            .iter()
            .map(|&b| char::from(b' ' + b % 95))
            .map(|c| if c == '\\' { '/' } else { c })
            .collect();
        let hex: String = content.iter().map(|b| format!("{:x}", b % 16)).collect();
        let word: String = content.iter().map(|&b| char::from(b'a' + b % 26)).collect();
        parts.push(match kind % 16 {
            0 => number.to_string(),
            1 => format!("{}.{}", number % 100_000, number % 977),
            2 => format!(
                "{}e{}",
                number % 1000,
                i8::try_from(number % 100).unwrap_or(0) - 50
            ),
            3 => format!("0x{number:X}"),
            4 => format!("'{}'", printable.replace('\'', "''")),
            5 => format!("X'{hex}'"),
            6 => format!("$$ {} $$", word.replace('$', "")),
            7 => format!("-{number}"),
            // No `*` inside: removing `*/` could make a new one (`**//`).
            8 => format!("/* {} */", printable.replace('*', ".")),
            9 => format!("-- {}\n", printable.replace('\n', " ")),
            10 => "SELECT".to_owned(),
            11 => "IN (".to_owned(),
            12 => ",".to_owned(),
            13 => ")".to_owned(),
            14 => ["=", "?", ":name"][usize::from(content.first().copied().unwrap_or(0) % 3)]
                .to_owned(),
            _ => {
                if word.is_empty() {
                    "users".to_owned()
                } else {
                    word
                }
            }
        });
    }
    parts.join(" ")
}
