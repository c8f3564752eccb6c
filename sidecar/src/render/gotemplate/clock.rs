//! `timestamp [LAYOUT]`: the current time in UTC, RFC 3339 by default, `"unix"` for seconds, or
//! formatted by a Go reference layout (`Mon Jan 2 15:04:05 -0700 MST 2006`).

use std::time::{SystemTime, UNIX_EPOCH};

use gotmpl::{TemplateError, Value};

use super::value::{Args, string};

pub fn timestamp(values: &[Value]) -> Result<Value, TemplateError> {
    let args = Args::new("timestamp", values, 0, 1)?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let layout = if args.count() == 0 { "2006-01-02T15:04:05Z07:00" } else { args.str(0)? };
    if layout == "unix" {
        return Ok(string(now.as_secs().to_string()));
    }
    Ok(string(format(&Civil::utc(now.as_secs() as i64, now.subsec_nanos()), layout)))
}

/// A UTC instant broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    nanos: u32,
    weekday: usize,
    year_day: u32,
}

const MONTHS: [&str; 12] = [
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
const DAYS: [&str; 7] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

impl Civil {
    /// From seconds since the epoch (days to a proleptic Gregorian date by the era method).
    pub fn utc(secs: i64, nanos: u32) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let before: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let year_day = before[month as usize - 1] + day + u32::from(leap && month > 2);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
            nanos,
            weekday: (days + 4).rem_euclid(7) as usize,
            year_day,
        }
    }
}

/// Formats `t` by a Go layout; text that is not a layout element is copied.
pub fn format(t: &Civil, layout: &str) -> String {
    let hour12 = if t.hour.is_multiple_of(12) { 12 } else { t.hour % 12 };
    let month = MONTHS[t.month as usize - 1];
    let day = DAYS[t.weekday];
    let mut out = String::new();
    let mut rest = layout;
    while !rest.is_empty() {
        // Fractional seconds: `.000` (fixed) or `.999` (trailing zeros dropped).
        if let Some(digits) = fraction(rest) {
            let n = digits.len().min(9);
            let text = format!("{:09}", t.nanos)[..n].to_string();
            if digits.starts_with('9') {
                let trimmed = text.trim_end_matches('0');
                if !trimmed.is_empty() {
                    out.push('.');
                    out.push_str(trimmed);
                }
            } else {
                out.push('.');
                out.push_str(&text);
            }
            rest = &rest[1 + digits.len()..];
            continue;
        }
        let elements: [(&str, String); 27] = [
            ("January", month.to_string()),
            ("Monday", day.to_string()),
            ("2006", format!("{:04}", t.year)),
            ("Z07:00", "Z".into()),
            ("-07:00", "+00:00".into()),
            ("Z0700", "Z".into()),
            ("-0700", "+0000".into()),
            ("Jan", month[..3].to_string()),
            ("Mon", day[..3].to_string()),
            ("MST", "UTC".into()),
            ("002", format!("{:03}", t.year_day)),
            ("_2", format!("{:>2}", t.day)),
            ("01", format!("{:02}", t.month)),
            ("02", format!("{:02}", t.day)),
            ("03", format!("{hour12:02}")),
            ("04", format!("{:02}", t.minute)),
            ("05", format!("{:02}", t.second)),
            ("06", format!("{:02}", t.year.rem_euclid(100))),
            ("15", format!("{:02}", t.hour)),
            ("PM", if t.hour >= 12 { "PM" } else { "AM" }.into()),
            ("pm", if t.hour >= 12 { "pm" } else { "am" }.into()),
            ("Z07", "Z".into()),
            ("-07", "+00".into()),
            ("1", t.month.to_string()),
            ("2", t.day.to_string()),
            ("3", hour12.to_string()),
            ("4", t.minute.to_string()),
        ];
        let found = elements.iter().find(|(token, _)| rest.starts_with(token));
        match found {
            Some((token, text)) => {
                out.push_str(text);
                rest = &rest[token.len()..];
            }
            None if rest.starts_with('5') => {
                out.push_str(&t.second.to_string());
                rest = &rest[1..];
            }
            None => {
                let c = rest.chars().next().unwrap_or(' ');
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// `.000…` or `.999…` at the start of `s`: the digits.
fn fraction(s: &str) -> Option<&str> {
    let digits = s.strip_prefix(['.', ','])?;
    let first = digits.chars().next().filter(|c| *c == '0' || *c == '9')?;
    let len = digits.chars().take_while(|c| *c == first).count();
    let after = digits[len..].chars().next();
    (!after.is_some_and(|c| c.is_ascii_digit())).then_some(&digits[..len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_layouts() {
        // 2009-11-10 23:04:05.120 UTC, a Tuesday (Go's playground time, plus seconds).
        let t = Civil::utc(1_257_894_245, 120_000_000);
        assert_eq!(format(&t, "2006-01-02T15:04:05Z07:00"), "2009-11-10T23:04:05Z");
        assert_eq!(format(&t, "Mon Jan _2 3:04PM 2006 MST"), "Tue Nov 10 11:04PM 2009 UTC");
        assert_eq!(format(&t, "02/01/06 15:04:05.000 -0700"), "10/11/09 23:04:05.120 +0000");
        assert_eq!(format(&t, "Monday, January 2 (day 002) .999"), "Tuesday, November 10 (day 314) .12");
        assert_eq!(format(&Civil::utc(0, 0), "2006-01-02"), "1970-01-01");
        assert_eq!(format(&Civil::utc(951_782_400, 0), "2006-01-02 002"), "2000-02-29 060");
    }
}
