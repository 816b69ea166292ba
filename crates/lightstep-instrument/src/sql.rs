//! SQL query text sanitizing and the little parsing the database spans need.
//!
//! [`sanitize`] replaces every literal in a statement with `?` so that `db.query.text` carries the
//! shape of a query and none of its data. It is a single-pass, allocation-light lexer rather than a
//! parser: it must accept every dialect and every malformed input without failing, and it runs on
//! the request path. Why not `sqlparser`'s tokenizer: `docs/adr/301-sql-sanitizer-lexer.md`.
//!
//! What the lexer knows:
//! - string literals `'..'` (with `''`; backslash escapes in the MySQL family and in `E'..'`),
//!   prefixed literals (`E'..'`, `N'..'`, `X'..'`, `B'..'`), Oracle's `q'[..]'` and Postgres
//!   dollar-quoted strings (`$$..$$`, `$tag$..$tag$`);
//! - numbers: integers, decimals, exponents, hex (`0x1F`) and binary (`0b101`);
//! - double-quoted text, which is an identifier in standard SQL but a string in MySQL: see
//!   [`DoubleQuotes`];
//! - `-- line` and `/* block */` comments (nested block comments too), and MySQL's `# line`
//!   comments, which are removed because they can carry data (and high-cardinality tags such as
//!   sqlcommenter's);
//! - `IN (1, 2, 3)` lists of literals, which collapse to `IN (?)`;
//! - placeholders (`?`, `$1`, `:name`, `@name`, `%s`, `%(name)s`), which are not literals and
//!   pass through, so parameterized text comes out unchanged.
//!
//! An unterminated string or comment swallows the rest of the input: the output then holds less,
//! never more, than it should.

/// How double-quoted text is read, and with it the dialect family: [`DoubleQuotes::Identifier`]
/// is standard SQL (a backslash in `'..'` is an ordinary character, `#` is an operator);
/// [`DoubleQuotes::Literal`] is the MySQL family (backslash escapes, `#` comments), and the safe
/// reading when the dialect is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DoubleQuotes {
    /// `"name"` is a quoted identifier (standard SQL, PostgreSQL, SQLite, Oracle, SQL Server) and
    /// is kept.
    Identifier,
    /// `"text"` is a string literal (MySQL and MariaDB by default) and becomes `?`. The safe
    /// choice when the dialect is not known, and the default.
    #[default]
    Literal,
}

impl DoubleQuotes {
    /// The reading that suits a `db.system.name` value: identifiers for the systems that follow
    /// standard SQL here, literals for MySQL, MariaDB and anything unknown.
    pub fn for_system(system: &str) -> Self {
        match system {
            "postgresql"
            | "sqlite"
            | "oracle.db"
            | "microsoft.sql_server"
            | "ibm.db2"
            | "cockroachdb"
            | "h2database"
            | "hsqldb"
            | "trino"
            | "derby"
            | "duckdb"
            | "clickhouse"
            | "sap.hana" => Self::Identifier,
            _ => Self::Literal,
        }
    }
}

/// Replaces every literal in `sql` with `?`, removes comments and collapses `IN` lists of
/// literals, reading double-quoted text as a literal.
///
/// ```
/// use lightstep_instrument::sql::sanitize;
///
/// assert_eq!(
///     sanitize("SELECT * FROM users WHERE name = 'alice' AND age > 42 /* vip */"),
///     "SELECT * FROM users WHERE name = ? AND age > ? ",
/// );
/// assert_eq!(sanitize("DELETE FROM t WHERE id IN (1, 2, 3)"), "DELETE FROM t WHERE id IN (?)");
/// // Placeholders are not literals: parameterized text passes through.
/// assert_eq!(sanitize("SELECT * FROM t WHERE id = $1"), "SELECT * FROM t WHERE id = $1");
/// ```
pub fn sanitize(sql: &str) -> String {
    sanitize_with(sql, DoubleQuotes::Literal)
}

/// [`sanitize`], with the reading of double-quoted text chosen by the caller.
pub fn sanitize_with(sql: &str, double_quotes: DoubleQuotes) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut lexer = Lexer {
        src: sql.as_bytes(),
        pos: 0,
        double_quotes,
    };
    let mut list = InList::Idle;
    while let Some((token, start)) = lexer.next_token() {
        let text = &sql[start..lexer.pos];
        match token {
            Token::Literal => {
                list.on_value();
                out.push('?');
            }
            Token::Comment => {
                // Keep words apart: `a/**/b` must not become `ab`.
                if !out.is_empty() && !out.ends_with(|c: char| c.is_ascii_whitespace()) {
                    out.push(' ');
                }
            }
            Token::Space => out.push_str(text),
            Token::Word => {
                list = if text.eq_ignore_ascii_case("in") {
                    InList::AfterIn
                } else {
                    InList::Idle
                };
                out.push_str(text);
            }
            Token::Punct(b'(') => {
                list = match list {
                    InList::AfterIn => InList::Open {
                        start: out.len() + 1,
                        values: 0,
                        expect_value: true,
                    },
                    _ => InList::Idle,
                };
                out.push('(');
            }
            Token::Punct(b',') => {
                list.on_comma();
                out.push(',');
            }
            Token::Punct(b')') => {
                if let InList::Open {
                    start,
                    values,
                    expect_value: false,
                } = list
                    && values > 1
                {
                    out.truncate(start);
                    out.push('?');
                }
                list = InList::Idle;
                out.push(')');
            }
            Token::Punct(_) | Token::Other => {
                list = InList::Idle;
                out.push_str(text);
            }
        }
    }
    out
}

/// Where the sanitizer is in an `IN ( literal, literal, .. )` list.
#[derive(Debug, Clone, Copy)]
enum InList {
    Idle,
    AfterIn,
    Open {
        /// Output length just after the `(`.
        start: usize,
        values: usize,
        expect_value: bool,
    },
}

impl InList {
    fn on_value(&mut self) {
        match self {
            Self::Open {
                values,
                expect_value,
                ..
            } if *expect_value => {
                *values += 1;
                *expect_value = false;
            }
            _ => *self = Self::Idle,
        }
    }

    fn on_comma(&mut self) {
        match self {
            Self::Open { expect_value, .. } if !*expect_value => *expect_value = true,
            _ => *self = Self::Idle,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// A string, number or other constant: replaced.
    Literal,
    /// A comment: removed.
    Comment,
    /// Whitespace: kept.
    Space,
    /// A keyword or identifier (bare or quoted) or placeholder name: kept.
    Word,
    /// One ASCII punctuation byte: kept.
    Punct(u8),
    /// Anything else (non-ASCII text outside quotes, placeholders such as `$1`): kept.
    Other,
}

struct Lexer<'a> {
    src: &'a [u8],
    pos: usize,
    double_quotes: DoubleQuotes,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<u8> {
        self.src.get(self.pos + ahead).copied()
    }

    /// The next token and where it starts; `self.pos` is left just past it, always on a UTF-8
    /// boundary (tokens start and end at ASCII bytes or at the end of input).
    fn next_token(&mut self) -> Option<(Token, usize)> {
        let start = self.pos;
        let b = *self.src.get(self.pos)?;
        // The common cases first, as plain branches: a single space between words, and a word
        // that is not a typed-string prefix. They are most of a statement's tokens, and the
        // jump table below mispredicts on them.
        if b == b' ' && self.peek(1).is_none_or(|c| !c.is_ascii_whitespace()) {
            self.pos += 1;
            return Some((Token::Space, start));
        }
        if (b.is_ascii_alphabetic() || b == b'_')
            && self.peek(1) != Some(b'\'')
            && !(matches!(b, b'n' | b'N') && self.peek(2) == Some(b'\''))
        {
            self.skip_while(is_word_byte);
            return Some((Token::Word, start));
        }
        let token = match b {
            b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' => {
                self.skip_while(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'));
                Token::Space
            }
            b'-' if self.peek(1) == Some(b'-') => {
                self.skip_while(|c| c != b'\n');
                Token::Comment
            }
            b'/' if self.peek(1) == Some(b'*') => {
                self.block_comment();
                Token::Comment
            }
            b'\'' => {
                self.pos += 1;
                // A backslash escapes the next character only in the MySQL family (and in
                // Postgres' `E'..'`, below); in standard SQL it is an ordinary character, and
                // reading it as an escape would end the literal late and leak what follows.
                self.quoted(b'\'', self.double_quotes == DoubleQuotes::Literal);
                Token::Literal
            }
            b'#' if self.double_quotes == DoubleQuotes::Literal => {
                // MySQL's `# line` comment (in standard SQL dialects `#` is an operator).
                self.skip_while(|c| c != b'\n');
                Token::Comment
            }
            b'"' => {
                self.pos += 1;
                self.quoted(b'"', self.double_quotes == DoubleQuotes::Literal);
                match self.double_quotes {
                    DoubleQuotes::Identifier => Token::Word,
                    DoubleQuotes::Literal => Token::Literal,
                }
            }
            b'`' => {
                self.pos += 1;
                self.quoted(b'`', false);
                Token::Word
            }
            b'0'..=b'9' => {
                self.number();
                Token::Literal
            }
            b'.' if self.peek(1).is_some_and(|c| c.is_ascii_digit()) => {
                self.number();
                Token::Literal
            }
            b'$' => self.dollar(),
            b'?' => {
                // `?`, and SQLite's numbered `?1`: placeholders, kept whole.
                self.pos += 1;
                self.skip_while(|c| c.is_ascii_digit());
                Token::Other
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                // A one-letter prefix glued to a quote is a typed string: E'..', N'..', X'..', B'..'.
                if matches!(b, b'e' | b'E' | b'n' | b'N' | b'x' | b'X' | b'b' | b'B')
                    && self.peek(1) == Some(b'\'')
                {
                    self.pos += 2;
                    let escapes =
                        matches!(b, b'e' | b'E') || self.double_quotes == DoubleQuotes::Literal;
                    self.quoted(b'\'', escapes);
                    Token::Literal
                } else if let Some(skip) = self.oracle_quote_prefix() {
                    // Oracle's alternative quoting: q'[..]', q'{..}', q'!..!', nq'..'.
                    self.pos += skip;
                    self.alternative_quoted();
                    Token::Literal
                } else {
                    self.skip_while(is_word_byte);
                    Token::Word
                }
            }
            _ if b.is_ascii_punctuation() => {
                self.pos += 1;
                Token::Punct(b)
            }
            _ if b.is_ascii() => {
                self.pos += 1;
                Token::Other
            }
            _ => {
                // Non-ASCII outside quotes: identifiers in many dialects. Keep the whole run so
                // that `pos` stays on a character boundary.
                self.skip_while(|c| !c.is_ascii() || is_word_byte(c));
                Token::Word
            }
        };
        Some((token, start))
    }

    fn skip_while(&mut self, keep: impl Fn(u8) -> bool) {
        while self.src.get(self.pos).is_some_and(|&c| keep(c)) {
            self.pos += 1;
        }
    }

    /// Past the closing `quote` (a doubled quote is an escaped one); `backslash` escapes the
    /// next byte. Unterminated: to the end.
    fn quoted(&mut self, quote: u8, backslash: bool) {
        while let Some(&c) = self.src.get(self.pos) {
            self.pos += 1;
            if backslash && c == b'\\' {
                // Never step past the end (or into the middle of a character: the escaped
                // byte is skipped only when it is ASCII).
                if self.peek(0).is_some_and(|n| n.is_ascii()) {
                    self.pos += 1;
                }
            } else if c == quote {
                if self.peek(0) == Some(quote) {
                    self.pos += 1;
                } else {
                    return;
                }
            }
        }
    }

    /// The length of an Oracle `q'` / `nq'` prefix at the current position, if there is one
    /// followed by a delimiter.
    fn oracle_quote_prefix(&self) -> Option<usize> {
        let lower = |i: usize| self.peek(i).map(|c| c.to_ascii_lowercase());
        let prefix = match (lower(0), lower(1)) {
            (Some(b'q'), Some(b'\'')) => 2,
            (Some(b'n'), Some(b'q')) if self.peek(2) == Some(b'\'') => 3,
            _ => return None,
        };
        // The delimiter: any visible ASCII character but the quote itself and whitespace.
        self.peek(prefix)
            .filter(|c| c.is_ascii_graphic() && *c != b'\'')
            .map(|_| prefix)
    }

    /// Past `D ... D'` where `D` is the delimiter at the current position (`[`, `{`, `(` and
    /// `<` close with their pair). Unterminated: to the end.
    fn alternative_quoted(&mut self) {
        let Some(open) = self.peek(0) else { return };
        let close = match open {
            b'[' => b']',
            b'{' => b'}',
            b'(' => b')',
            b'<' => b'>',
            other => other,
        };
        self.pos += 1;
        while let Some(&c) = self.src.get(self.pos) {
            self.pos += 1;
            if c == close && self.peek(0) == Some(b'\'') {
                self.pos += 1;
                return;
            }
        }
    }

    fn block_comment(&mut self) {
        self.pos += 2;
        let mut depth = 1usize;
        while self.pos < self.src.len() {
            match (self.src[self.pos], self.peek(1)) {
                (b'*', Some(b'/')) => {
                    self.pos += 2;
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                (b'/', Some(b'*')) => {
                    self.pos += 2;
                    depth += 1;
                }
                _ => self.pos += 1,
            }
        }
    }

    fn number(&mut self) {
        if self.src[self.pos] == b'0' && matches!(self.peek(1), Some(b'x' | b'X' | b'b' | b'B')) {
            self.pos += 2;
            self.skip_while(|c| c.is_ascii_hexdigit() || c == b'_');
            return;
        }
        self.skip_while(|c| c.is_ascii_digit() || c == b'_');
        if self.peek(0) == Some(b'.') {
            self.pos += 1;
            self.skip_while(|c| c.is_ascii_digit());
        }
        if matches!(self.peek(0), Some(b'e' | b'E')) {
            let sign = usize::from(matches!(self.peek(1), Some(b'+' | b'-')));
            if self.peek(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1 + sign;
                self.skip_while(|c| c.is_ascii_digit());
            }
        }
        // A number glued to letters (`1st`, `10abc`) is still one literal.
        self.skip_while(is_word_byte);
    }

    /// `$1` is a placeholder; `$$..$$` and `$tag$..$tag$` are dollar-quoted strings.
    fn dollar(&mut self) -> Token {
        let start = self.pos;
        self.pos += 1;
        if self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            self.skip_while(|c| c.is_ascii_digit());
            return Token::Other;
        }
        // Tags may hold any letter, non-ASCII ones included (whole characters: every byte of a
        // multi-byte character is non-ASCII, so `pos` stays on a boundary).
        self.skip_while(|c| c.is_ascii_alphanumeric() || c == b'_' || !c.is_ascii());
        if self.peek(0) != Some(b'$') {
            // `$name` (a placeholder in some drivers) or a lone `$`.
            return Token::Other;
        }
        self.pos += 1;
        let tag = &self.src[start..self.pos];
        while self.pos < self.src.len() {
            if self.src[self.pos..].starts_with(tag) {
                self.pos += tag.len();
                return Token::Literal;
            }
            self.pos += 1;
        }
        Token::Literal
    }
}

fn is_word_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

/// What the sanitizer can tell about a statement for the span's name and attributes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Summary<'a> {
    /// `db.operation.name`: the statement's leading keyword, upper-cased (`SELECT`, `INSERT`, ..).
    pub operation: Option<&'static str>,
    /// `db.collection.name`: the one table the statement acts on, when there is exactly one.
    pub collection: Option<&'a str>,
}

/// Reads the operation and the single table of a statement, without sanitizing it.
///
/// Only the plain cases are answered: one statement, one table (`SELECT .. FROM t`, `INSERT INTO
/// t`, `UPDATE t`, `DELETE FROM t`, `CREATE|DROP|ALTER|TRUNCATE TABLE t`). Joins, sub-queries,
/// several statements or a comma-separated `FROM` list leave `collection` empty, as the
/// conventions ask; a statement of several operations leaves both empty.
///
/// ```
/// use lightstep_instrument::sql::summarize;
///
/// let summary = summarize("select id from app.users where id = ?");
/// assert_eq!(summary.operation, Some("SELECT"));
/// assert_eq!(summary.collection, Some("app.users"));
/// assert_eq!(summarize("SELECT * FROM a JOIN b ON a.id = b.id").collection, None);
/// ```
pub fn summarize(sql: &str) -> Summary<'_> {
    let mut lexer = Lexer {
        src: sql.as_bytes(),
        pos: 0,
        double_quotes: DoubleQuotes::Identifier,
    };
    // Significant tokens only.
    let mut words: Vec<Tok<'_>> = Vec::with_capacity(16);
    while let Some((token, start)) = lexer.next_token() {
        match token {
            Token::Space | Token::Comment => {}
            _ => words.push(Tok {
                token,
                start,
                text: &sql[start..lexer.pos],
            }),
        }
    }
    // A trailing `;` is fine; any other one means several statements.
    while words.last().is_some_and(|w| w.token == Token::Punct(b';')) {
        words.pop();
    }
    if words.iter().any(|w| w.token == Token::Punct(b';')) {
        return Summary::default();
    }
    let Some(first) = words.first().filter(|w| w.token == Token::Word) else {
        return Summary::default();
    };
    let Some(operation) = known_operation(first.text) else {
        return Summary::default();
    };
    let table = match operation {
        "SELECT" | "DELETE" => single_after(&words, "from"),
        "INSERT" | "REPLACE" => single_after(&words, "into"),
        "UPDATE" => table_at(&words, 1),
        "CREATE" | "DROP" | "ALTER" | "TRUNCATE" => {
            let mut at = 1;
            if word_is(&words, at, "table") {
                at += 1;
                if word_is(&words, at, "if") {
                    at += if word_is(&words, at + 1, "not") { 3 } else { 2 };
                }
                table_at(&words, at)
            } else if operation == "TRUNCATE" {
                table_at(&words, 1)
            } else {
                None
            }
        }
        _ => None,
    };
    Summary {
        operation: Some(operation),
        collection: table.map(|(first, len)| {
            let last = &words[first + len - 1];
            &sql[words[first].start..last.start + last.text.len()]
        }),
    }
}

/// A significant token of a statement, for [`summarize`].
#[derive(Debug, Clone, Copy)]
struct Tok<'a> {
    token: Token,
    start: usize,
    text: &'a str,
}

fn known_operation(word: &str) -> Option<&'static str> {
    // Not `WITH`: a common table expression names no operation; what follows it does, and
    // finding that needs a parser, so such statements get no operation rather than a guess.
    const OPERATIONS: [&str; 15] = [
        "SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "UPSERT", "REPLACE", "CREATE", "DROP",
        "ALTER", "TRUNCATE", "CALL", "EXEC", "EXECUTE", "SHOW",
    ];
    OPERATIONS
        .iter()
        .find(|op| op.eq_ignore_ascii_case(word))
        .copied()
}

fn word_is(words: &[Tok<'_>], at: usize, keyword: &str) -> bool {
    words
        .get(at)
        .is_some_and(|w| w.token == Token::Word && w.text.eq_ignore_ascii_case(keyword))
}

/// The table right after the only `keyword` in the statement, if the statement reads one table,
/// as (index of its first token, number of tokens).
fn single_after(words: &[Tok<'_>], keyword: &str) -> Option<(usize, usize)> {
    let mut found = None;
    for (i, w) in words.iter().enumerate() {
        if w.token == Token::Punct(b'(') && word_is(words, i + 1, "select") {
            // A sub-query anywhere: more than one table is involved.
            return None;
        }
        if w.token != Token::Word {
            continue;
        }
        if w.text.eq_ignore_ascii_case("join") {
            return None;
        }
        if w.text.eq_ignore_ascii_case(keyword) {
            if found.is_some() {
                return None;
            }
            found = Some(i + 1);
        }
    }
    let at = found?;
    let (_, len) = table_at(words, at)?;
    // `FROM a, b` or `FROM a AS x, b` reads two tables.
    let mut next = at + len;
    if word_is(words, next, "as") {
        next += 2;
    } else if words
        .get(next)
        .is_some_and(|w| w.token == Token::Word && !is_clause_keyword(w.text))
    {
        next += 1;
    }
    if keyword == "from"
        && words
            .get(next)
            .is_some_and(|w| w.token == Token::Punct(b','))
    {
        return None;
    }
    Some((at, len))
}

fn is_clause_keyword(word: &str) -> bool {
    const CLAUSES: [&str; 12] = [
        "where",
        "group",
        "order",
        "limit",
        "having",
        "union",
        "values",
        "set",
        "returning",
        "offset",
        "on",
        "using",
    ];
    CLAUSES.iter().any(|c| c.eq_ignore_ascii_case(word))
}

/// The (possibly qualified, possibly quoted) table name at `at`, as (index, number of tokens).
fn table_at(words: &[Tok<'_>], at: usize) -> Option<(usize, usize)> {
    let first = words.get(at)?;
    if first.token != Token::Word
        || is_clause_keyword(first.text)
        || first.text.eq_ignore_ascii_case("select")
    {
        return None;
    }
    let mut len = 1;
    while words
        .get(at + len)
        .is_some_and(|w| w.token == Token::Punct(b'.'))
        && words
            .get(at + len + 1)
            .is_some_and(|w| w.token == Token::Word)
    {
        len += 2;
    }
    // `t(` is a function call (`SELECT now()`-like), not a table.
    if words
        .get(at + len)
        .is_some_and(|w| w.token == Token::Punct(b'('))
        && !words[0].text.eq_ignore_ascii_case("insert")
        && !words[0].text.eq_ignore_ascii_case("create")
    {
        return None;
    }
    Some((at, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backslash_is_ordinary_in_standard_sql_and_an_escape_in_mysql() {
        let standard = DoubleQuotes::for_system("postgresql");
        assert_eq!(
            sanitize_with(
                "SELECT * FROM f WHERE dir = 'C:\\' AND owner = 'alice'",
                standard
            ),
            "SELECT * FROM f WHERE dir = ? AND owner = ?"
        );
        assert_eq!(
            sanitize_with("a = 'x\\' OR pw = 'hunter2'", standard),
            "a = ? OR pw = ?"
        );
        // Postgres' E'..' strings do take escapes.
        assert_eq!(
            sanitize_with("a = E'it\\'s' AND b = 1", standard),
            "a = ? AND b = ?"
        );
        let mysql = DoubleQuotes::for_system("mysql");
        assert_eq!(
            sanitize_with("a = 'it\\'s secret' AND b = 2", mysql),
            "a = ? AND b = ?"
        );
    }

    #[test]
    fn mysql_hash_comments_are_removed() {
        let mysql = DoubleQuotes::for_system("mysql");
        let out = sanitize_with(
            "SELECT * FROM users WHERE id = 1 # email=alice@example.com",
            mysql,
        );
        assert_eq!(out, "SELECT * FROM users WHERE id = ? ");
        // In Postgres `#` is XOR: kept.
        let pg = DoubleQuotes::for_system("postgresql");
        assert_eq!(sanitize_with("SELECT 5 # 3", pg), "SELECT ? # ?");
    }

    #[test]
    fn dollar_quote_tags_may_be_non_ascii() {
        assert_eq!(sanitize("x = $é$secret$é$ AND y = 1"), "x = ? AND y = ?");
    }

    #[test]
    fn oracle_alternative_quoting() {
        let oracle = DoubleQuotes::for_system("oracle.db");
        assert_eq!(
            sanitize_with("WHERE pw = q'[it's hunter2]' AND x = nq'{y}'", oracle),
            "WHERE pw = ? AND x = ?"
        );
        assert_eq!(sanitize_with("WHERE a = Q'!a'b!'", oracle), "WHERE a = ?");
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            ("SELECT 1", "SELECT ?"),
            (
                "select * from t where a = 'x''y' and b = 'z'",
                "select * from t where a = ? and b = ?",
            ),
            ("WHERE a = 'it\\'s' AND b = 1", "WHERE a = ? AND b = ?"),
            ("x = -12.5e-3 + .5 + 3.", "x = -? + ? + ?"),
            (
                "x = 0xDEADbeef OR y = X'0aF' OR z = b'101'",
                "x = ? OR y = ? OR z = ?",
            ),
            ("x = E'a\\nb' AND n = N'ünï'", "x = ? AND n = ?"),
            (
                "SELECT $$secret$$, $tag$ more $ secret $tag$",
                "SELECT ?, ?",
            ),
            (
                "SELECT * FROM t WHERE id = $1 AND b = ? AND c = :name AND d = @p1 AND e = %s",
                "SELECT * FROM t WHERE id = $1 AND b = ? AND c = :name AND d = @p1 AND e = %s",
            ),
            (
                "SELECT a1, t2.b3 FROM table9",
                "SELECT a1, t2.b3 FROM table9",
            ),
            ("id IN (1, 2, 3)", "id IN (?)"),
            ("id in ( 'a' , 'b' )", "id in (?)"),
            ("id IN (1)", "id IN (?)"),
            ("id IN ($1, $2)", "id IN ($1, $2)"),
            (
                "id IN (SELECT id FROM u WHERE x = 1)",
                "id IN (SELECT id FROM u WHERE x = ?)",
            ),
            ("id IN (1, x)", "id IN (?, x)"),
            ("VALUES (1, 'a'), (2, 'b')", "VALUES (?, ?), (?, ?)"),
            (
                "SELECT a -- the user is 'bob' 42\nFROM t",
                "SELECT a \nFROM t",
            ),
            ("SELECT /* 42 /* nested 'x' */ still */ a", "SELECT  a"),
            ("SELECT a/**/FROM t", "SELECT a FROM t"),
            ("SELECT \"col\" FROM t", "SELECT ? FROM t"),
            (
                "SELECT `col` FROM t WHERE n = 5",
                "SELECT `col` FROM t WHERE n = ?",
            ),
            ("SELECT 'unterminated", "SELECT ?"),
            ("SELECT /* unterminated 42", "SELECT "),
            ("x = 10abc", "x = ?"),
            ("x::int = 5", "x::int = ?"),
            (
                "a = ?1 AND b = ?23 AND c = ?",
                "a = ?1 AND b = ?23 AND c = ?",
            ),
            ("", ""),
            ("é = 'ü' AND ñ1 = 2", "é = ? AND ñ1 = ?"),
            ("TRUE AND NULL", "TRUE AND NULL"),
        ];
        for (input, want) in cases {
            assert_eq!(&sanitize(input), want, "input: {input}");
        }
    }

    #[test]
    fn double_quotes_as_identifiers() {
        assert_eq!(
            sanitize_with(
                "SELECT \"Col\" FROM \"T\" WHERE \"a\" = 'x'",
                DoubleQuotes::Identifier
            ),
            "SELECT \"Col\" FROM \"T\" WHERE \"a\" = ?"
        );
        assert_eq!(
            DoubleQuotes::for_system("postgresql"),
            DoubleQuotes::Identifier
        );
        assert_eq!(DoubleQuotes::for_system("mysql"), DoubleQuotes::Literal);
        assert_eq!(DoubleQuotes::for_system("something"), DoubleQuotes::Literal);
    }

    #[test]
    fn summaries() {
        let cases: &[(&str, Option<&str>, Option<&str>)] = &[
            (
                "SELECT * FROM users WHERE id = ?",
                Some("SELECT"),
                Some("users"),
            ),
            (
                "select * from app.users u where u.id = 1",
                Some("SELECT"),
                Some("app.users"),
            ),
            ("SELECT * FROM a, b", Some("SELECT"), None),
            ("SELECT * FROM a JOIN b ON a.x = b.x", Some("SELECT"), None),
            ("SELECT * FROM (SELECT * FROM b) x", Some("SELECT"), None),
            (
                "SELECT * FROM a WHERE id IN (SELECT id FROM b)",
                Some("SELECT"),
                None,
            ),
            (
                "INSERT INTO orders (id, total) VALUES (?, ?)",
                Some("INSERT"),
                Some("orders"),
            ),
            (
                "UPDATE accounts SET balance = 0",
                Some("UPDATE"),
                Some("accounts"),
            ),
            (
                "DELETE FROM sessions WHERE expired",
                Some("DELETE"),
                Some("sessions"),
            ),
            (
                "CREATE TABLE IF NOT EXISTS kv (k TEXT)",
                Some("CREATE"),
                Some("kv"),
            ),
            ("DROP TABLE IF EXISTS kv;", Some("DROP"), Some("kv")),
            ("CREATE INDEX i ON kv (k)", Some("CREATE"), None),
            ("SELECT 1; DROP TABLE x", None, None),
            ("  /* hint */ select now()", Some("SELECT"), None),
            ("VACUUM", None, None),
            ("WITH x AS (SELECT 1) SELECT * FROM x", None, None),
            ("", None, None),
        ];
        for (input, op, coll) in cases {
            let s = summarize(input);
            assert_eq!(s.operation, *op, "operation of {input}");
            assert_eq!(s.collection, *coll, "collection of {input}");
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// A literal of every kind the sanitizer knows, with digits and quotes inside.
        fn literal() -> impl Strategy<Value = String> {
            prop_oneof![
                any::<u64>().prop_map(|n| n.to_string()),
                (any::<u32>(), any::<u16>()).prop_map(|(a, b)| format!("{a}.{b}")),
                (any::<u16>(), any::<i8>()).prop_map(|(a, e)| format!("{a}e{e}")),
                any::<u32>().prop_map(|n| format!("0x{n:X}")),
                "[ -~]{0,12}"
                    .prop_map(|s| format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))),
                "[0-9a-f]{0,8}".prop_map(|s| format!("X'{s}'")),
                "[0-9a-z ']{0,8}".prop_map(|s| format!("$$ {s} $$")),
            ]
        }

        /// Keywords, identifiers (no digits), punctuation, placeholders and comments.
        fn other() -> impl Strategy<Value = String> {
            prop_oneof![
                "[a-zA-Z_]{1,8}".prop_map(String::from),
                Just("SELECT".to_owned()),
                Just("IN (".to_owned()),
                Just(",".to_owned()),
                Just(")".to_owned()),
                Just("=".to_owned()),
                Just("?".to_owned()),
                Just(":name".to_owned()),
                "[a-z0-9 ']{0,10}".prop_map(|s| format!("/* {s} */")),
                "[a-z0-9 ']{0,10}".prop_map(|s| format!("-- {s}\n")),
            ]
        }

        proptest! {
            #[test]
            fn never_panics(input in "\\PC*") {
                let _ = sanitize(&input);
                let _ = sanitize_with(&input, DoubleQuotes::Identifier);
                let _ = summarize(&input);
            }

            #[test]
            fn never_panics_on_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                let input = String::from_utf8_lossy(&bytes);
                let _ = sanitize(&input);
                let _ = summarize(&input);
            }

            #[test]
            fn no_literal_survives(
                parts in proptest::collection::vec(prop_oneof![literal(), other()], 0..30)
            ) {
                let query = parts.join(" ");
                let out = sanitize(&query);
                prop_assert!(!out.contains(|c: char| c.is_ascii_digit()), "{query:?} -> {out:?}");
                prop_assert!(!out.contains('\''), "{query:?} -> {out:?}");
            }
        }
    }
}
