//! How times read in tables: podman's "3 minutes ago".

/// Seconds since the epoch now (the clock records are stamped with).
pub use foxbox::store::clock::now_secs as now;

/// "About a minute ago", "3 hours ago", as podman prints them.
pub fn ago(then: u64) -> String {
    format!("{} ago", duration(now().saturating_sub(then)))
}

/// A span of seconds the way podman's STATUS column says it ("Up 3 minutes").
pub fn duration(s: u64) -> String {
    let plural = |n: u64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    match s {
        0 => "Less than a second".to_string(),
        1..=59 => plural(s, "second"),
        60..=119 => "About a minute".to_string(),
        120..=3599 => plural(s / 60, "minute"),
        3600..=7199 => "About an hour".to_string(),
        7200..=172_799 => plural(s / 3600, "hour"),
        172_800..=1_209_599 => plural(s / 86_400, "day"),
        1_209_600..=5_183_999 => plural(s / 604_800, "week"),
        _ => plural(s / 2_592_000, "month"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_podman() {
        assert_eq!(duration(0), "Less than a second");
        assert_eq!(duration(1), "1 second");
        assert_eq!(duration(90), "About a minute");
        assert_eq!(duration(180), "3 minutes");
        assert_eq!(duration(3600), "About an hour");
        assert_eq!(duration(7300), "2 hours");
        assert_eq!(duration(3 * 86_400), "3 days");
    }
}
