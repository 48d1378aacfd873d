//! How kubectl writes times for people: ages (`45s`, `3m20s`, `5d3h`) and the
//! RFC 1123 timestamps of `describe`.

use jiff::{Timestamp, tz::TimeZone};

/// Parses a Kubernetes timestamp (RFC 3339, e.g. `2026-11-25T12:01:25Z`).
pub fn parse_time(text: &str) -> Option<Timestamp> {
    text.parse().ok()
}

/// `describe`'s timestamp format, Go's `time.RFC1123Z` in the local time zone:
/// `Wed, 25 Nov 2026 12:01:25 +0000`.
pub fn rfc1123z(ts: Timestamp) -> String {
    ts.to_zoned(TimeZone::system()).strftime("%a, %d %b %Y %H:%M:%S %z").to_string()
}

/// The age of a timestamp as kubectl prints it, or `<unknown>` without one.
pub fn age(ts: Option<Timestamp>, now: Timestamp) -> String {
    match ts {
        Some(ts) => human_duration(now.as_second() - ts.as_second()),
        None => "<unknown>".to_string(),
    }
}

/// Kubernetes' `duration.HumanDuration`: two or three significant figures.
/// A second of clock skew prints as `0s`; more than that as `<invalid>`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 { format!("{minutes}m") } else { format!("{minutes}m{s}s") };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 { format!("{hours}h") } else { format!("{hours}h{m}m") };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 { format!("{}d", hours / 24) } else { format!("{}d{h}h", hours / 24) };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 { format!("{}y", hours / 24 / 365) } else { format!("{}y{dy}d", hours / 24 / 365) };
    }
    format!("{}y", hours / 24 / 365)
}

/// Parses a duration flag like Go's `time.ParseDuration` for the common cases:
/// `30s`, `2m`, `1h30m`, `500ms`, or a bare number of seconds.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Some(std::time::Duration::from_secs(secs));
    }
    let mut total = std::time::Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (num, tail) = rest.split_at(digits);
        let num: f64 = num.parse().ok()?;
        let unit_len = tail.find(|c: char| c.is_ascii_digit()).unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let secs = match unit {
            "ms" => num / 1000.0,
            "s" => num,
            "m" => num * 60.0,
            "h" => num * 3600.0,
            _ => return None,
        };
        total += std::time::Duration::from_secs_f64(secs);
        rest = tail;
    }
    if text.is_empty() { None } else { Some(total) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        use std::time::Duration;
        assert_eq!(parse_duration("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn human_durations_match_kubernetes() {
        let cases = [
            (-5, "<invalid>"),
            (-1, "0s"),
            (45, "45s"),
            (119, "119s"),
            (200, "3m20s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600 + 5 * 60, "3h5m"),
            (20 * 3600, "20h"),
            (5 * 86400 + 3 * 3600, "5d3h"),
            (300 * 86400, "300d"),
            (2 * 365 * 86400 + 100 * 86400, "2y100d"),
            (9 * 365 * 86400, "9y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(secs), want, "{secs}s");
        }
    }

    #[test]
    fn ages_from_timestamps() {
        let now = parse_time("2026-11-25T12:10:00Z").unwrap();
        assert_eq!(age(parse_time("2026-11-25T12:00:00Z"), now), "10m");
        assert_eq!(age(None, now), "<unknown>");
        assert!(parse_time("yesterday").is_none());
    }
}
