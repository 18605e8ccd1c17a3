//! Java `SimpleDateFormat` patterns.
//!
//! Cloud Elements poller configurations describe dates with Java
//! `SimpleDateFormat` patterns, in two directions: to FORMAT the last poll time
//! into URL macros (`${date:EEE, dd MMM yyyy HH:mm:ss Z}`) and to PARSE the
//! timestamps vendors return (`Tue, 20 Nov 2012 00:00:00 +0000`). Existing
//! configurations were only ever run through Java, so this module reproduces
//! the Java behaviour those configurations rely on, including the quirks Java
//! tolerates (`EE` means the short day name) and one it does not but that real
//! configurations contain (a dangling quote at the end of the pattern).
//!
//! Where Java is lenient in a way that silently produces a wrong instant
//! (February 30 rolling over into March, 1234 milliseconds carrying into the
//! seconds) this module rejects the text instead: a poller that fails loudly
//! is better than one that quietly skips or repeats events.

use chrono::{
    DateTime, Datelike, FixedOffset, Months, NaiveDate, NaiveDateTime, NaiveTime, TimeZone,
    Timelike, Utc,
};

/// A compiled SimpleDateFormat pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JavaDateFormat {
    /// The pattern as written, for `pattern()` and error messages.
    pattern: String,
    /// Never empty: `compile` refuses patterns that produce nothing.
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JavaDateError {
    #[error("unsupported pattern letter '{0}'")]
    UnsupportedLetter(char),
    #[error("the pattern is empty")]
    Empty,
    #[error("'{text}' does not match the date format '{pattern}'")]
    NoMatch { text: String, pattern: String },
    #[error("unknown time zone '{0}'")]
    UnknownZone(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// Text copied verbatim when formatting and matched exactly when parsing.
    Literal(String),
    Field(Field),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    /// The pattern letter, normalised (`L` is stored as `M`).
    letter: char,
    /// How many times the letter was repeated.
    count: usize,
    /// Set when the next token is also a numeric field (`yyyyMMdd`): with no
    /// separator in between, the only way to know where this field ends is
    /// to read exactly `count` digits, as Java does for abutting fields.
    fixed_width: bool,
}

impl Field {
    fn is_numeric(&self) -> bool {
        match self.letter {
            'y' | 'd' | 'H' | 'k' | 'K' | 'h' | 'm' | 's' | 'S' | 'D' | 'u' => true,
            // MMM and longer are month names, not numbers.
            'M' => self.count <= 2,
            _ => false,
        }
    }

    fn is_zone(&self) -> bool {
        matches!(self.letter, 'Z' | 'X' | 'z')
    }
}

const SHORT_MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const FULL_MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
/// Monday first, matching chrono's `num_days_from_monday`.
const SHORT_DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const FULL_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

/// Zone names accepted inside date text. Beyond the UTC spellings these are
/// the North American names RFC 822 itself defines with fixed offsets, so a
/// vendor emitting strict RFC 822 dates (`... 10:15:30 EST`) is understood;
/// other abbreviations are ambiguous and would need a tz database.
const TEXT_ZONES: [(&str, i32); 11] = [
    // "UTC" before "UT" so the longer spelling wins.
    ("UTC", 0),
    ("GMT", 0),
    ("UT", 0),
    ("EST", -5),
    ("EDT", -4),
    ("CST", -6),
    ("CDT", -5),
    ("MST", -7),
    ("MDT", -6),
    ("PST", -8),
    ("PDT", -7),
];

/// Settings that mean UTC (IANA aliases of UTC, case-insensitive).
const UTC_ALIASES: [&str; 21] = [
    "utc",
    "gmt",
    "z",
    "ut",
    "uct",
    "zulu",
    "universal",
    "greenwich",
    "gmt0",
    "gmt+0",
    "gmt-0",
    "etc/utc",
    "etc/uct",
    "etc/gmt",
    "etc/gmt0",
    "etc/gmt+0",
    "etc/gmt-0",
    "etc/universal",
    "etc/zulu",
    "etc/greenwich",
    "etc/ut",
];

/// Error messages echo the offending text; vendor responses are untrusted and
/// unbounded, so only this many characters of it go into the error (and logs).
const MAX_ERROR_TEXT_CHARS: usize = 100;

impl JavaDateFormat {
    /// Compiles a pattern. Quoting follows Java: `'...'` is literal text, `''`
    /// (inside or outside quotes) is one quote, ASCII letters outside quotes
    /// are pattern letters and every other character is literal.
    ///
    /// An unterminated quote ends the pattern (the text after it is dropped):
    /// Java rejects such patterns, but real configurations contain
    /// `yyyy-MM-dd'T'HH:mm:ss'` and expect it to mean `yyyy-MM-dd'T'HH:mm:ss`.
    pub fn compile(pattern: &str) -> Result<Self, JavaDateError> {
        let mut tokens: Vec<Token> = Vec::new();
        // Literal characters are gathered into one token per run so parsing
        // compares whole strings instead of character by character.
        let mut literal = String::new();
        let mut chars = pattern.chars().peekable();

        'outer: while let Some(c) = chars.next() {
            if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                    literal.push('\'');
                    continue;
                }
                // Gather the quoted run separately so that an unterminated
                // one can be dropped as a whole.
                let mut quoted = String::new();
                loop {
                    match chars.next() {
                        None => break 'outer,
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            quoted.push('\'');
                        }
                        Some('\'') => break,
                        Some(q) => quoted.push(q),
                    }
                }
                literal.push_str(&quoted);
            } else if c.is_ascii_alphabetic() {
                let mut count = 1;
                while chars.peek() == Some(&c) {
                    chars.next();
                    count += 1;
                }
                let letter = supported_letter(c, count)?;
                if !literal.is_empty() {
                    tokens.push(Token::Literal(std::mem::take(&mut literal)));
                }
                tokens.push(Token::Field(Field {
                    letter,
                    count,
                    fixed_width: false,
                }));
            } else {
                literal.push(c);
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        if tokens.is_empty() {
            return Err(JavaDateError::Empty);
        }

        // A numeric field directly followed by another numeric field must be
        // read with a fixed width, or the first would swallow both.
        for i in 0..tokens.len().saturating_sub(1) {
            let next_numeric = matches!(&tokens[i + 1], Token::Field(f) if f.is_numeric());
            if let Token::Field(f) = &mut tokens[i] {
                f.fixed_width = next_numeric && f.is_numeric();
            }
        }

        Ok(Self {
            pattern: pattern.to_string(),
            tokens,
        })
    }

    /// The pattern as it was given to `compile`.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    /// True when the pattern carries a zone (Z, X or z).
    pub fn has_zone(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| matches!(t, Token::Field(f) if f.is_zone()))
    }

    /// Formats an instant in the given fixed offset (the caller converts zones).
    pub fn format(&self, t: DateTime<FixedOffset>) -> String {
        let mut out = String::new();
        for token in &self.tokens {
            match token {
                Token::Literal(s) => out.push_str(s),
                Token::Field(f) => format_field(&mut out, f, &t),
            }
        }
        out
    }

    /// Parses text. Fields absent from the pattern default to: date 1970-01-01,
    /// time 00:00:00.000. If the pattern has no zone field (Z, X, z), the text is
    /// read in `default_offset`.
    pub fn parse(
        &self,
        text: &str,
        default_offset: FixedOffset,
    ) -> Result<DateTime<FixedOffset>, JavaDateError> {
        self.parse_at(text, default_offset, Utc::now())
    }

    /// `parse` with the current time supplied, because two-digit years are
    /// resolved relative to it; tests pin it.
    fn parse_at(
        &self,
        text: &str,
        default_offset: FixedOffset,
        now: DateTime<Utc>,
    ) -> Result<DateTime<FixedOffset>, JavaDateError> {
        self.try_parse(text, default_offset, now)
            .ok_or_else(|| JavaDateError::NoMatch {
                text: truncate_for_error(text),
                pattern: self.pattern.clone(),
            })
    }

    fn try_parse(
        &self,
        text: &str,
        default_offset: FixedOffset,
        now: DateTime<Utc>,
    ) -> Option<DateTime<FixedOffset>> {
        let mut cursor = Cursor { text, pos: 0 };
        let mut fields = Parsed::default();
        for token in &self.tokens {
            match token {
                Token::Literal(s) => cursor.literal(s)?,
                Token::Field(f) => parse_field(&mut cursor, f, &mut fields)?,
            }
        }
        // Trailing whitespace is tolerated (vendors pad values); anything
        // else means the text is not in this format.
        if !cursor.rest().trim_start().is_empty() {
            return None;
        }
        fields.resolve(default_offset, now)
    }
}

/// Maps a pattern letter to the letter stored in the token, or refuses it.
fn supported_letter(c: char, count: usize) -> Result<char, JavaDateError> {
    match c {
        'y' | 'M' | 'd' | 'H' | 'k' | 'K' | 'h' | 'm' | 's' | 'S' | 'E' | 'a' | 'Z' | 'z' | 'D'
        | 'u' => Ok(c),
        // Java's stand-alone month; identical to M in English.
        'L' => Ok('M'),
        // Java itself rejects XXXX and longer.
        'X' if count <= 3 => Ok(c),
        // G (era), Y (week year), w/W/F (week-based fields) and the letters
        // Java does not define. Week fields cannot be honoured faithfully
        // without Java's locale week rules, so they are refused up front
        // rather than producing wrong dates later.
        _ => Err(JavaDateError::UnsupportedLetter(c)),
    }
}

fn truncate_for_error(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_TEXT_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text.to_string(),
    }
}

// ---------------------------------------------------------------- formatting

fn format_field(out: &mut String, f: &Field, t: &DateTime<FixedOffset>) {
    let n = f.count;
    match f.letter {
        'y' => {
            if n == 2 {
                // Java's yy prints the last two digits only.
                pad(out, i64::from(t.year().rem_euclid(100)), 2);
            } else {
                // y, yyy and yyyy print the whole year, padded to the count.
                pad(out, i64::from(t.year()), n);
            }
        }
        'M' => match n {
            1 | 2 => pad(out, i64::from(t.month()), n),
            3 => out.push_str(SHORT_MONTHS[t.month0() as usize]),
            _ => out.push_str(FULL_MONTHS[t.month0() as usize]),
        },
        'd' => pad(out, i64::from(t.day()), n),
        'H' => pad(out, i64::from(t.hour()), n),
        'k' => {
            // Hour 1-24: midnight is 24.
            let h = if t.hour() == 0 { 24 } else { t.hour() };
            pad(out, i64::from(h), n);
        }
        'K' => pad(out, i64::from(t.hour() % 12), n),
        'h' => {
            // Hour 1-12: midnight and noon are 12.
            let h = match t.hour() % 12 {
                0 => 12,
                h => h,
            };
            pad(out, i64::from(h), n);
        }
        'm' => pad(out, i64::from(t.minute()), n),
        's' => pad(out, i64::from(t.second()), n),
        // A leap second is stored as nanoseconds >= 1e9; print it within 999.
        'S' => pad(
            out,
            i64::from((t.nanosecond() % 1_000_000_000) / 1_000_000),
            n,
        ),
        'E' => {
            let i = t.weekday().num_days_from_monday() as usize;
            // 1-3 letters are the short name (so the common `EE` typo works,
            // as it does in Java), 4 or more the full name.
            out.push_str(if n <= 3 { SHORT_DAYS[i] } else { FULL_DAYS[i] });
        }
        'a' => out.push_str(if t.hour() < 12 { "AM" } else { "PM" }),
        'D' => pad(out, i64::from(t.ordinal()), n),
        'u' => pad(out, i64::from(t.weekday().number_from_monday()), n),
        'Z' => push_offset(out, t.offset(), false, true),
        'X' => {
            if t.offset().local_minus_utc() == 0 {
                out.push('Z');
            } else {
                // X is hours only, XX +hhmm, XXX +hh:mm.
                push_offset(out, t.offset(), n == 3, n >= 2);
            }
        }
        'z' => {
            out.push_str("GMT");
            if t.offset().local_minus_utc() != 0 {
                push_offset(out, t.offset(), true, true);
            }
        }
        // `compile` admits no other letters.
        _ => {}
    }
}

/// Zero-pads a number to `width` digits (the sign, if any, counts).
fn pad(out: &mut String, value: i64, width: usize) {
    use std::fmt::Write;
    // Writing into a String cannot fail.
    let _ = write!(out, "{value:0width$}");
}

/// Writes `+hh`, `+hhmm` or `+hh:mm`. Offset seconds are dropped: none of the
/// Java forms can express them.
fn push_offset(out: &mut String, offset: &FixedOffset, colon: bool, minutes: bool) {
    let secs = offset.local_minus_utc();
    out.push(if secs < 0 { '-' } else { '+' });
    let abs = secs.unsigned_abs();
    pad(out, i64::from(abs / 3600), 2);
    if minutes {
        if colon {
            out.push(':');
        }
        pad(out, i64::from(abs % 3600 / 60), 2);
    }
}

// ------------------------------------------------------------------- parsing

/// A position in the text being parsed. `pos` only ever advances past whole
/// characters, so slicing at it cannot panic.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl Cursor<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    /// Java skips spaces and tabs before every field (not before literals),
    /// so `Tue,  20 Nov` with two spaces still matches `EEE, dd MMM`.
    fn skip_blanks(&mut self) {
        let skipped = self.rest().len() - self.rest().trim_start_matches([' ', '\t']).len();
        self.pos += skipped;
    }

    fn literal(&mut self, s: &str) -> Option<()> {
        if self.rest().starts_with(s) {
            self.pos += s.len();
            Some(())
        } else {
            None
        }
    }

    /// Reads an unsigned number: exactly `width` digits for abutting fields,
    /// otherwise every digit available (at least one), like Java's lenient
    /// number parsing. Returns the value and the number of digits read.
    fn number(&mut self, width: Option<usize>) -> Option<(u64, usize)> {
        let available = self
            .rest()
            .bytes()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let take = match width {
            Some(w) if available >= w => w,
            Some(_) => return None,
            None if available >= 1 => available,
            None => return None,
        };
        let mut value: u64 = 0;
        for b in &self.rest().as_bytes()[..take] {
            // Overlong digit runs are not dates; refuse rather than wrap.
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        }
        self.pos += take;
        Some((value, take))
    }

    /// Matches the first of `names` that the text starts with, ignoring ASCII
    /// case, and returns its index. Callers list longer names first.
    fn name<'n>(&mut self, names: impl IntoIterator<Item = &'n str>) -> Option<usize> {
        for (i, name) in names.into_iter().enumerate() {
            // `get` is None when the cut is not on a char boundary, which also
            // means the text does not start with this ASCII name.
            if let Some(head) = self.rest().get(..name.len()) {
                if head.eq_ignore_ascii_case(name) {
                    self.pos += name.len();
                    return Some(i);
                }
            }
        }
        None
    }

    /// Reads a zone in any of the forms the three zone letters produce or
    /// vendors send: `Z`, `+hh`, `+hhmm`, `+hh:mm`, `GMT`/`UTC`/`UT` with or
    /// without such an offset, and the RFC 822 names. Each letter accepts all
    /// of them because vendors are inconsistent and the forms do not overlap.
    fn zone(&mut self) -> Option<FixedOffset> {
        let rest = self.rest();
        if rest.starts_with(['Z', 'z']) {
            self.pos += 1;
            return FixedOffset::east_opt(0);
        }
        if let Some(i) = self.name(TEXT_ZONES.iter().map(|(n, _)| *n)) {
            let base = TEXT_ZONES[i].1 * 3600;
            // Only the UTC spellings take an offset suffix (`GMT+05:30`).
            if i <= 2 {
                if let Some((secs, used)) = offset_prefix(self.rest()) {
                    self.pos += used;
                    return FixedOffset::east_opt(secs);
                }
            }
            return FixedOffset::east_opt(base);
        }
        let (secs, used) = offset_prefix(self.rest())?;
        self.pos += used;
        FixedOffset::east_opt(secs)
    }
}

/// Reads a signed offset at the start of `s`: `+h`, `+hh`, `+hmm`, `+hhmm`,
/// `+h:mm` or `+hh:mm`. Returns the offset in seconds and the bytes used.
fn offset_prefix(s: &str) -> Option<(i32, usize)> {
    let b = s.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digit = |i: usize| i32::from(b[i] - b'0');
    // At most four digits belong to the offset; anything after is the next
    // token's business.
    let digits = b[1..]
        .iter()
        .take(4)
        .take_while(|c| c.is_ascii_digit())
        .count();
    let (hours, mut minutes, mut used) = match digits {
        1 => (digit(1), 0, 2),
        2 => (digit(1) * 10 + digit(2), 0, 3),
        3 => (digit(1), digit(2) * 10 + digit(3), 4),
        4 => (digit(1) * 10 + digit(2), digit(3) * 10 + digit(4), 5),
        _ => return None,
    };
    if digits <= 2
        && b.get(used) == Some(&b':')
        && b.get(used + 1).is_some_and(u8::is_ascii_digit)
        && b.get(used + 2).is_some_and(u8::is_ascii_digit)
    {
        minutes = digit(used + 1) * 10 + digit(used + 2);
        used += 3;
    }
    // FixedOffset cannot represent a day or more; minutes past 59 are typos.
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some((sign * (hours * 3600 + minutes * 60), used))
}

/// The fields read from the text, before they are combined into an instant.
#[derive(Debug, Default)]
struct Parsed {
    year: Option<i64>,
    /// Set when `y`/`yy` read exactly two digits: the century is chosen later,
    /// relative to now, as Java does.
    two_digit_year: Option<i64>,
    month: Option<u32>,
    day: Option<u32>,
    day_of_year: Option<u32>,
    /// From H or k, already 0-23.
    hour_of_day: Option<u32>,
    /// From h or K, already 0-11; combined with `pm`.
    hour_of_half_day: Option<u32>,
    pm: Option<bool>,
    minute: Option<u32>,
    second: Option<u32>,
    millis: Option<u32>,
    offset: Option<FixedOffset>,
}

/// Reads one field into `p`. Values are range-checked here: Java would roll
/// an hour of 25 into the next day, which is never what a vendor meant.
fn parse_field(c: &mut Cursor<'_>, f: &Field, p: &mut Parsed) -> Option<()> {
    c.skip_blanks();
    let width = f.fixed_width.then_some(f.count);
    // Reads a number and checks it lies within `lo..=hi`.
    let ranged = |c: &mut Cursor<'_>, lo: u64, hi: u64| -> Option<u32> {
        let (v, _) = c.number(width)?;
        ((lo..=hi).contains(&v)).then_some(v as u32)
    };
    match f.letter {
        'y' => {
            let (v, digits) = c.number(width)?;
            // Java applies the two-digit rule to `y` and `yy` when exactly two
            // digits were read; `yy` reading "2012" is simply the year 2012.
            if f.count <= 2 && digits == 2 {
                p.two_digit_year = Some(v as i64);
                p.year = None;
            } else {
                p.year = Some(i64::try_from(v).ok()?);
                p.two_digit_year = None;
            }
        }
        'M' if f.count <= 2 => p.month = Some(ranged(c, 1, 12)?),
        'M' => {
            // Full names first: "Jun" is a prefix of "June".
            let i = c.name(FULL_MONTHS).or_else(|| c.name(SHORT_MONTHS))?;
            p.month = Some(i as u32 + 1);
        }
        'd' => p.day = Some(ranged(c, 1, 31)?),
        'D' => p.day_of_year = Some(ranged(c, 1, 366)?),
        'H' => p.hour_of_day = Some(ranged(c, 0, 23)?),
        // Java reads k=24 as midnight of the same day.
        'k' => p.hour_of_day = Some(ranged(c, 1, 24)? % 24),
        'K' => p.hour_of_half_day = Some(ranged(c, 0, 11)?),
        'h' => p.hour_of_half_day = Some(ranged(c, 1, 12)? % 12),
        'm' => p.minute = Some(ranged(c, 0, 59)?),
        's' => p.second = Some(ranged(c, 0, 59)?),
        // Like Java, the digits are a count of milliseconds whatever their
        // number ("5" is 5 ms, not 500). Java would carry 1234 into the
        // seconds; a value that large means the text has micro- or
        // nanoseconds, and reading those as milliseconds would move the
        // instant by minutes, so it is refused.
        'S' => p.millis = Some(ranged(c, 0, 999)?),
        // Day names are matched but not checked against the date: Java's
        // lenient parser ignores them too, and vendors get them wrong.
        'E' => {
            c.name(FULL_DAYS).or_else(|| c.name(SHORT_DAYS))?;
        }
        'u' => {
            ranged(c, 1, 7)?;
        }
        'a' => p.pm = Some(c.name(["AM", "PM"])? == 1),
        'Z' | 'X' | 'z' => p.offset = Some(c.zone()?),
        _ => return None,
    }
    Some(())
}

impl Parsed {
    fn resolve(
        &self,
        default_offset: FixedOffset,
        now: DateTime<Utc>,
    ) -> Option<DateTime<FixedOffset>> {
        let offset = self.offset.unwrap_or(default_offset);
        let hour = match (self.hour_of_day, self.hour_of_half_day, self.pm) {
            // An explicit 24-hour field wins over any AM/PM marker.
            (Some(h), _, _) => h,
            (None, h, pm) => h.unwrap_or(0) + if pm == Some(true) { 12 } else { 0 },
        };
        let time = NaiveTime::from_hms_milli_opt(
            hour,
            self.minute.unwrap_or(0),
            self.second.unwrap_or(0),
            self.millis.unwrap_or(0),
        )?;
        let at_year = |year: i64| -> Option<DateTime<FixedOffset>> {
            let year = i32::try_from(year).ok()?;
            // The day of year is only used when the pattern has no month or
            // day; otherwise it is ignored, like the day name.
            let date = match (self.month, self.day, self.day_of_year) {
                (None, None, Some(doy)) => NaiveDate::from_yo_opt(year, doy)?,
                (m, d, _) => NaiveDate::from_ymd_opt(year, m.unwrap_or(1), d.unwrap_or(1))?,
            };
            let local: NaiveDateTime = date.and_time(time);
            offset.from_local_datetime(&local).single()
        };

        let Some(yy) = self.two_digit_year else {
            return at_year(self.year.unwrap_or(1970));
        };
        // Java's rule: the date lands within 80 years before and 20 years
        // after now. The window starts at now - 80 years; two-digit values
        // below that start year's last two digits belong to the next century.
        let start = now.checked_sub_months(Months::new(80 * 12))?;
        let start_year = i64::from(start.year());
        let ambiguous = start_year.rem_euclid(100);
        let year = start_year.div_euclid(100) * 100 + yy + if yy < ambiguous { 100 } else { 0 };
        let dt = at_year(year)?;
        // When the value equals the start year's digits, the whole instant
        // decides: earlier than the window start means the next century.
        if yy == ambiguous && dt < start {
            return at_year(year + 100);
        }
        Some(dt)
    }
}

// ------------------------------------------------------------------- zones

/// Resolves a Cloud Elements timezone setting to a fixed offset: "UTC", "GMT", "Z", "Etc/UTC",
/// "GMT+05:30", "UTC-8", "+0200", "-03:00". Named IANA zones other than UTC aliases are not
/// supported without a tz database: return UnknownZone for them (e.g. "America/New_York").
pub fn parse_zone(name: &str) -> Result<FixedOffset, JavaDateError> {
    let unknown = || JavaDateError::UnknownZone(name.to_string());
    let trimmed = name.trim();
    if UTC_ALIASES
        .iter()
        .any(|alias| trimmed.eq_ignore_ascii_case(alias))
    {
        return FixedOffset::east_opt(0).ok_or_else(unknown);
    }
    // "GMT+05:30", "UTC-8", "UT+1". Etc/GMT+5 is deliberately not handled
    // here: its sign is inverted (it means UTC-5), and guessing wrong would
    // shift every poll by hours, so it stays an unknown zone.
    let offset_text = ["UTC", "GMT", "UT"]
        .iter()
        .find_map(|prefix| {
            trimmed
                .get(..prefix.len())
                .filter(|head| head.eq_ignore_ascii_case(prefix))
                .map(|_| &trimmed[prefix.len()..])
        })
        .unwrap_or(trimmed);
    match offset_prefix(offset_text) {
        Some((secs, used)) if used == offset_text.len() => {
            FixedOffset::east_opt(secs).ok_or_else(unknown)
        }
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    fn offset(hours: i32, minutes: i32) -> FixedOffset {
        FixedOffset::east_opt(hours * 3600 + hours.signum() * minutes * 60).unwrap()
    }

    fn fmt(pattern: &str) -> JavaDateFormat {
        JavaDateFormat::compile(pattern).unwrap()
    }

    /// 2026-11-23T10:15:30Z, a Monday.
    fn seed() -> DateTime<FixedOffset> {
        utc().with_ymd_and_hms(2026, 11, 23, 10, 15, 30).unwrap()
    }

    fn no_match(f: &JavaDateFormat, text: &str) -> bool {
        matches!(f.parse(text, utc()), Err(JavaDateError::NoMatch { .. }))
    }

    #[test]
    fn dangling_quote_is_dropped() {
        let f = fmt("yyyy-MM-dd'T'HH:mm:ss'");
        assert_eq!(f, {
            let mut g = fmt("yyyy-MM-dd'T'HH:mm:ss");
            g.pattern = f.pattern.clone();
            g
        });
        assert_eq!(f.pattern(), "yyyy-MM-dd'T'HH:mm:ss'");
        assert_eq!(f.format(seed()), "2026-11-23T10:15:30");
        assert_eq!(f.parse("2026-11-23T10:15:30", utc()).unwrap(), seed());
        assert!(!f.has_zone());
        // Unterminated quoted text is dropped along with the quote.
        assert_eq!(fmt("yyyy'abc").format(seed()), "2026");
    }

    #[test]
    fn quoted_z_is_literal() {
        let f = fmt("yyyy-MM-dd'T'HH:mm:ss'Z'");
        assert_eq!(f.format(seed()), "2026-11-23T10:15:30Z");
        assert!(!f.has_zone());
        // Without a zone field the text is read in the default offset.
        let plus2 = offset(2, 0);
        let parsed = f.parse("2026-11-23T10:15:30Z", plus2).unwrap();
        assert_eq!(
            parsed,
            plus2.with_ymd_and_hms(2026, 11, 23, 10, 15, 30).unwrap()
        );
        assert_eq!(parsed.offset(), &plus2);
    }

    #[test]
    fn rfc_822_dates() {
        let f = fmt("EEE, dd MMM yyyy HH:mm:ss Z");
        assert!(f.has_zone());
        assert_eq!(f.format(seed()), "Mon, 23 Nov 2026 10:15:30 +0000");
        // BigCommerce's documented example.
        let parsed = f.parse("Tue, 20 Nov 2012 00:00:00 +0000", utc()).unwrap();
        assert_eq!(
            parsed,
            utc().with_ymd_and_hms(2012, 11, 20, 0, 0, 0).unwrap()
        );
        // Other offset spellings, names in any case, a wrong day name, and
        // a doubled space are all accepted.
        let minus5 = offset(-5, 0);
        let expected = minus5.with_ymd_and_hms(2012, 11, 20, 0, 0, 0).unwrap();
        for text in [
            "Tue, 20 Nov 2012 00:00:00 -0500",
            "Tue, 20 Nov 2012 00:00:00 -05:00",
            "TUESDAY, 20 nov 2012 00:00:00 EST",
            "Fri,  20 Nov 2012 00:00:00 GMT-05:00",
        ] {
            let parsed = f.parse(text, utc()).unwrap();
            assert_eq!(parsed, expected, "{text}");
            assert_eq!(parsed.offset(), &minus5, "{text}");
        }
        assert_eq!(
            f.parse("Tue, 20 Nov 2012 00:00:00 Z", minus5).unwrap(),
            utc().with_ymd_and_hms(2012, 11, 20, 0, 0, 0).unwrap()
        );
        assert_eq!(
            fmt("EEEE d MMMM yyyy").format(seed()),
            "Monday 23 November 2026"
        );
    }

    #[test]
    fn ee_is_the_short_day_name() {
        let ee = fmt("EE, dd MMM yyyy HH:mm:ss Z");
        let eee = fmt("EEE, dd MMM yyyy HH:mm:ss Z");
        assert_eq!(ee.format(seed()), eee.format(seed()));
        assert_eq!(fmt("E").format(seed()), "Mon");
        assert_eq!(
            ee.parse("Tue, 20 Nov 2012 00:00:00 +0000", utc()).unwrap(),
            utc().with_ymd_and_hms(2012, 11, 20, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn iso_with_millis_and_offset_round_trips() {
        let f = fmt("yyyy-MM-dd'T'HH:mm:ss.SSSXXX");
        let ist = offset(5, 30);
        let t = ist
            .with_ymd_and_hms(2026, 11, 23, 15, 45, 30)
            .unwrap()
            .with_nanosecond(7_000_000)
            .unwrap();
        let text = f.format(t);
        assert_eq!(text, "2026-11-23T15:45:30.007+05:30");
        let back = f.parse(&text, utc()).unwrap();
        assert_eq!(back, t);
        assert_eq!(back.offset(), &ist);
        assert_eq!(
            f.format(seed().with_nanosecond(0).unwrap()),
            "2026-11-23T10:15:30.000Z"
        );
        assert_eq!(f.parse("2026-11-23T10:15:30.000Z", ist).unwrap(), seed());
    }

    #[test]
    fn iso_offset_widths() {
        let t = seed().with_timezone(&offset(-3, 30));
        assert_eq!(fmt("X").format(t), "-03");
        assert_eq!(fmt("XX").format(t), "-0330");
        assert_eq!(fmt("XXX").format(t), "-03:30");
        assert_eq!(fmt("z").format(t), "GMT-03:30");
        assert_eq!(fmt("z").format(seed()), "GMT");
        assert_eq!(fmt("X").format(seed()), "Z");
        assert!(matches!(
            JavaDateFormat::compile("XXXX"),
            Err(JavaDateError::UnsupportedLetter('X'))
        ));
        let f = fmt("HH:mm X");
        for (text, secs) in [
            ("10:00 +08", 8 * 3600),
            ("10:00 +0800", 8 * 3600),
            ("10:00 +08:00", 8 * 3600),
            ("10:00 Z", 0),
            ("10:00 UTC+8", 8 * 3600),
        ] {
            assert_eq!(
                f.parse(text, utc()).unwrap().offset().local_minus_utc(),
                secs,
                "{text}"
            );
        }
    }

    #[test]
    fn doubled_quote_is_a_literal_quote() {
        assert_eq!(fmt("''").format(seed()), "'");
        assert_eq!(fmt("h 'o''clock' a").format(seed()), "10 o'clock AM");
        assert_eq!(fmt("yyyy''MM").format(seed()), "2026'11");
        assert_eq!(
            fmt("yyyy''MM").parse("2026'11", utc()).unwrap(),
            utc().with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
        );
        // Non-letters outside quotes are literal, including non-ASCII ones.
        assert_eq!(fmt("dd.MM.yyyy — HH").format(seed()), "23.11.2026 — 10");
    }

    #[test]
    fn abutting_numeric_fields() {
        let f = fmt("yyyyMMddHHmmss");
        assert_eq!(f.format(seed()), "20261123101530");
        assert_eq!(f.parse("20261123101530", utc()).unwrap(), seed());
        // Every field but the last needs its full width; the last, like any
        // field not followed by another number, takes what is there.
        assert!(no_match(&f, "20261123101"));
        assert_eq!(
            f.parse("2026112310153", utc()).unwrap(),
            utc().with_ymd_and_hms(2026, 11, 23, 10, 15, 3).unwrap()
        );
        let f = fmt("yyyyMMddHHmmssSSSZ");
        let t = seed().with_nanosecond(45_000_000).unwrap();
        assert_eq!(f.format(t), "20261123101530045+0000");
        assert_eq!(f.parse("20261123101530045+0000", utc()).unwrap(), t);
    }

    #[test]
    fn lenient_digit_counts() {
        // Without an abutting field, numbers take as many digits as there are.
        let f = fmt("d/M/yyyy H:m:s.S");
        let parsed = f.parse("5/7/2021 3:04:5.5", utc()).unwrap();
        assert_eq!(
            parsed,
            utc()
                .with_ymd_and_hms(2021, 7, 5, 3, 4, 5)
                .unwrap()
                .with_nanosecond(5_000_000)
                .unwrap()
        );
        // More than 999 ms is refused rather than carried into the seconds.
        assert!(no_match(&f, "5/7/2021 3:04:5.123456"));
        assert_eq!(fmt("d/M/y").format(seed()), "23/11/2026");
        assert_eq!(
            fmt("SSSS").format(seed().with_nanosecond(5_000_000).unwrap()),
            "0005"
        );
    }

    #[test]
    fn twelve_hour_clock() {
        let f = fmt("hh:mm a");
        assert_eq!(f.format(seed()), "10:15 AM");
        assert_eq!(
            f.format(utc().with_ymd_and_hms(2026, 1, 1, 0, 5, 0).unwrap()),
            "12:05 AM"
        );
        assert_eq!(
            f.format(utc().with_ymd_and_hms(2026, 1, 1, 12, 5, 0).unwrap()),
            "12:05 PM"
        );
        assert_eq!(
            f.format(utc().with_ymd_and_hms(2026, 1, 1, 23, 5, 0).unwrap()),
            "11:05 PM"
        );
        let at = |h, m| utc().with_ymd_and_hms(1970, 1, 1, h, m, 0).unwrap();
        assert_eq!(f.parse("12:05 AM", utc()).unwrap(), at(0, 5));
        assert_eq!(f.parse("12:05 pm", utc()).unwrap(), at(12, 5));
        assert_eq!(f.parse("11:05 PM", utc()).unwrap(), at(23, 5));
        assert!(no_match(&f, "13:05 PM"));
        assert!(no_match(&f, "00:05 AM"));
        assert_eq!(
            fmt("K a").format(utc().with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()),
            "0 PM"
        );
        // k is 1-24 with midnight as 24.
        let k = fmt("kk:mm");
        assert_eq!(k.format(at(0, 7)), "24:07");
        assert_eq!(k.parse("24:07", utc()).unwrap(), at(0, 7));
    }

    #[test]
    fn day_of_year_and_weekday_number() {
        assert_eq!(fmt("yyyy-DDD u").format(seed()), "2026-327 1");
        assert_eq!(
            fmt("yyyy-DDD").parse("2024-060", utc()).unwrap(),
            utc().with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap()
        );
        assert!(no_match(&fmt("yyyy-DDD"), "2026-366"));
    }

    #[test]
    fn two_digit_years_follow_java() {
        let f = fmt("dd/MM/yy");
        assert_eq!(f.format(seed()), "23/11/26");
        let now = utc()
            .with_ymd_and_hms(2026, 6, 15, 0, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        let year = |text: &str| f.parse_at(text, utc(), now).unwrap().year();
        assert_eq!(year("01/01/12"), 2012);
        assert_eq!(year("01/01/45"), 2045);
        assert_eq!(year("01/01/47"), 1947);
        assert_eq!(year("01/01/99"), 1999);
        // 46 is the window's own start year: the instant decides.
        assert_eq!(year("01/07/46"), 1946);
        assert_eq!(year("01/06/46"), 2046);
        // Other digit counts are literal years.
        assert_eq!(year("01/01/2012"), 2012);
        assert_eq!(year("01/01/5"), 5);
    }

    #[test]
    fn parse_errors() {
        let f = fmt("yyyy-MM-dd'T'HH:mm:ss");
        assert!(no_match(&f, "garbage"));
        assert!(no_match(&f, ""));
        assert!(no_match(&f, "2026-11-23T10:15:30 extra"));
        assert!(no_match(&f, "2026-02-30T10:15:30"));
        assert!(no_match(&f, "2026-13-01T10:15:30"));
        assert!(no_match(&f, "2026-11-23T25:15:30"));
        assert!(no_match(&f, "2026-11-23T10:60:30"));
        assert!(no_match(&f, "2026-11-23t10:15:30"));
        assert!(no_match(&f, "99999999999999999999999-11-23T10:15:30"));
        // Trailing whitespace is fine.
        assert_eq!(f.parse("2026-11-23T10:15:30 \n", utc()).unwrap(), seed());
        let err = f.parse("nope", utc()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "'nope' does not match the date format 'yyyy-MM-dd'T'HH:mm:ss'"
        );
        // Long text is cut short in the error.
        let long = "x".repeat(1000);
        match f.parse(&long, utc()).unwrap_err() {
            JavaDateError::NoMatch { text, .. } => assert!(text.len() < 110),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn compile_errors() {
        assert_eq!(JavaDateFormat::compile(""), Err(JavaDateError::Empty));
        assert_eq!(JavaDateFormat::compile("'"), Err(JavaDateError::Empty));
        for (pattern, letter) in [("G yyyy", 'G'), ("YYYY", 'Y'), ("w", 'w'), ("yyyy-Q", 'Q')] {
            assert_eq!(
                JavaDateFormat::compile(pattern),
                Err(JavaDateError::UnsupportedLetter(letter)),
                "{pattern}"
            );
        }
        // Letters inside quotes are text, even unsupported ones.
        assert_eq!(fmt("'Week of' yyyy").format(seed()), "Week of 2026");
    }

    #[test]
    fn defaults_for_missing_fields() {
        assert_eq!(
            fmt("HH:mm").parse("10:15", utc()).unwrap(),
            utc().with_ymd_and_hms(1970, 1, 1, 10, 15, 0).unwrap()
        );
        assert_eq!(
            fmt("yyyy").parse("2026", offset(1, 0)).unwrap(),
            offset(1, 0).with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn zones() {
        for name in [
            "UTC", "GMT", "Z", "Etc/UTC", "utc", " UTC ", "Etc/GMT", "Zulu",
        ] {
            assert_eq!(parse_zone(name), Ok(utc()), "{name}");
        }
        assert_eq!(parse_zone("GMT+05:30"), Ok(offset(5, 30)));
        assert_eq!(parse_zone("UTC-8"), Ok(offset(-8, 0)));
        assert_eq!(parse_zone("+0200"), Ok(offset(2, 0)));
        assert_eq!(parse_zone("-03:00"), Ok(offset(-3, 0)));
        assert_eq!(parse_zone("GMT-0330"), Ok(offset(-3, 30)));
        for name in [
            "America/New_York",
            "Etc/GMT+5",
            "",
            "GMT+24",
            "+05:60",
            "UTC+",
            "+05:30x",
            "EST",
        ] {
            assert_eq!(
                parse_zone(name),
                Err(JavaDateError::UnknownZone(name.to_string())),
                "{name}"
            );
        }
    }

    /// Patterns that carry a full instant, so format-then-parse is lossless.
    const FULL_PATTERNS: [&str; 6] = [
        "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
        "EEE, dd MMM yyyy HH:mm:ss.SSS Z",
        "yyyyMMddHHmmssSSSZ",
        "EEEE, MMMM d, yyyy h:mm:ss.SSS a z",
        "yyyy DDD kk:mm:ss.SSS XX",
        "yyyy-MM-dd'T'HH:mm:ss.SSS'",
    ];

    proptest! {
        #[test]
        fn format_then_parse_is_identity(
            millis in 0i64..4_102_444_800_000, // 1970 up to 2100
            offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59),
            pattern in proptest::sample::select(FULL_PATTERNS.to_vec()),
        ) {
            let zone = FixedOffset::east_opt(offset_minutes * 60).unwrap();
            let t = DateTime::from_timestamp_millis(millis).unwrap().with_timezone(&zone);
            let f = JavaDateFormat::compile(pattern).unwrap();
            let text = f.format(t);
            // Zone-less patterns are read back in the same offset.
            let back = f.parse(&text, zone).unwrap();
            prop_assert_eq!(back, t, "{} -> {}", pattern, text);
            prop_assert_eq!(back.offset(), t.offset());
        }

        #[test]
        fn compile_never_panics(pattern in any::<String>()) {
            let _ = JavaDateFormat::compile(&pattern);
        }

        #[test]
        fn compile_of_pattern_like_text_never_panics(pattern in "[yMdHkKhmsSEaZXzDu' :,.TG-]{0,24}") {
            if let Ok(f) = JavaDateFormat::compile(&pattern) {
                let _ = f.format(DateTime::from_timestamp_millis(0).unwrap().fixed_offset());
            }
        }

        #[test]
        fn parse_never_panics(
            text in any::<String>(),
            pattern in proptest::sample::select(FULL_PATTERNS.to_vec()),
        ) {
            let f = JavaDateFormat::compile(pattern).unwrap();
            let _ = f.parse(&text, FixedOffset::east_opt(0).unwrap());
        }

        #[test]
        fn parse_of_date_like_text_never_panics(
            text in "[0-9A-Za-z+:., '-]{0,40}",
            pattern in proptest::sample::select(FULL_PATTERNS.to_vec()),
        ) {
            let f = JavaDateFormat::compile(pattern).unwrap();
            let _ = f.parse(&text, FixedOffset::east_opt(0).unwrap());
        }

        #[test]
        fn parse_zone_never_panics(name in any::<String>()) {
            let _ = parse_zone(&name);
        }
    }
}
