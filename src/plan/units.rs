//! Sizes with podman's binary units, and humantime durations.

use std::time::Duration;

/// Why a size did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SizeError {
    #[error("`{0}` is not a size")]
    NotANumber(String),
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
    #[error("the size is too large")]
    TooLarge,
    #[error("a size cannot be negative")]
    Negative,
}

/// The binary units a size may carry, lower-cased, with their multipliers (podman's units:
/// `k`, `kb`, `ki`, `kib` all mean 1024).
const UNITS: &[(&str, u64)] = &[
    ("", 1),
    ("b", 1),
    ("k", 1 << 10),
    ("m", 1 << 20),
    ("g", 1 << 30),
    ("t", 1 << 40),
    ("p", 1 << 50),
];

/// Parse `64m`, `64MiB`, `1.5g`, `512 KiB`, `4096` or `4096b` into bytes.
pub fn parse_size(text: &str) -> Result<u64, SizeError> {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('-') {
        if rest.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(SizeError::Negative);
        }
    }
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return Err(SizeError::NotANumber(text.to_string()));
    }
    let unit_lc = unit.trim_start().to_ascii_lowercase();
    let letter = unit_lc
        .strip_suffix("ib")
        .or_else(|| unit_lc.strip_suffix('b').filter(|l| !l.is_empty()))
        .or_else(|| unit_lc.strip_suffix('i').filter(|l| !l.is_empty()))
        .unwrap_or(&unit_lc);
    if letter.is_empty() && !unit_lc.is_empty() {
        return Err(SizeError::UnknownUnit(unit.trim().to_string()));
    }
    let mult = UNITS
        .iter()
        .find(|(u, _)| *u == letter)
        .map(|(_, m)| *m)
        .ok_or_else(|| SizeError::UnknownUnit(unit.trim().to_string()))?;
    match num.split_once('.') {
        None => num
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(mult))
            .ok_or(SizeError::TooLarge),
        Some((whole, frac)) => {
            // Exact decimal arithmetic: 1.5g is 1.5 * 2^30 bytes, floored to a whole byte.
            let whole: u64 = whole.parse().map_err(|_| SizeError::TooLarge)?;
            let frac = &frac[..frac.len().min(18)];
            let scale = 10u128.pow(frac.len() as u32);
            let frac_n: u128 = frac.parse().map_err(|_| SizeError::TooLarge)?;
            let total = (whole as u128)
                .checked_mul(mult as u128)
                .and_then(|w| w.checked_add(frac_n * mult as u128 / scale))
                .ok_or(SizeError::TooLarge)?;
            u64::try_from(total).map_err(|_| SizeError::TooLarge)
        }
    }
}

/// A byte count the way people read it: `64 MiB`, `1.5 GiB`, `512 B`.
pub fn format_size(bytes: u64) -> String {
    const NAMES: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    let mut i = 0;
    while i + 1 < NAMES.len() && bytes >= 1u64 << (10 * (i + 1)) {
        i += 1;
    }
    if i == 0 {
        return format!("{bytes} B");
    }
    let unit = 1u64 << (10 * i);
    if bytes.is_multiple_of(unit) {
        format!("{} {}", bytes / unit, NAMES[i])
    } else {
        format!("{:.2} {}", bytes as f64 / unit as f64, NAMES[i])
    }
}

/// Parse a humantime duration (`30s`, `1m30s`, `2h`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_binary_units_like_podman() {
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("64MB"), Ok(64 << 20));
        assert_eq!(parse_size("64 mi"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4096b"), Ok(4096));
        assert_eq!(parse_size("4096B"), Ok(4096));
    }

    #[test]
    fn bad_sizes_say_why() {
        assert_eq!(parse_size("64x"), Err(SizeError::UnknownUnit("x".into())));
        assert_eq!(
            parse_size("64mbb"),
            Err(SizeError::UnknownUnit("mbb".into()))
        );
        assert_eq!(parse_size("-1m"), Err(SizeError::Negative));
        assert_eq!(parse_size("64ib"), Err(SizeError::UnknownUnit("ib".into())));
        assert!(matches!(parse_size("m"), Err(SizeError::NotANumber(_))));
        assert!(matches!(parse_size(""), Err(SizeError::NotANumber(_))));
        assert!(matches!(parse_size("1..2m"), Err(SizeError::NotANumber(_))));
        assert_eq!(parse_size("99999999999p"), Err(SizeError::TooLarge));
        assert_eq!(parse_size("99999999999999999999"), Err(SizeError::TooLarge));
        assert_eq!(
            parse_size("1.99999999999999999999999p"),
            Ok(2 * (1 << 50) - 1)
        );
    }

    #[test]
    fn formats_sizes() {
        assert_eq!(format_size(64 << 20), "64 MiB");
        assert_eq!(format_size(3 << 29), "1.50 GiB");
        assert_eq!(format_size(100), "100 B");
        assert_eq!(format_size(u64::MAX), "16.00 EiB");
    }

    #[test]
    fn durations_are_humantime() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("30").is_err());
    }
}
