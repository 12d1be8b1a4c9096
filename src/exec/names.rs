//! Fox-themed names for boxes that were not given one ("swift-fennec").

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "bright", "clever", "copper", "curious", "dusky", "eager", "fleet", "gentle",
    "golden", "hidden", "keen", "lively", "nimble", "quick", "quiet", "russet", "silver", "sly",
    "snowy", "swift", "tawny", "wily", "wise", "misty", "sunny", "velvet", "wild", "brave",
];

const FOXES: &[&str] = &[
    "arctic", "bengal", "blanford", "cape", "corsac", "culpeo", "darwin", "fennec", "grey",
    "hoary", "kit", "pale", "pampas", "red", "ruppell", "sechuran", "swift", "tibetan", "vixen",
    "kit", "reynard", "kitsune", "tod", "cub",
];

fn random_u64() -> u64 {
    crate::sys::process::random_u64().unwrap_or_else(|| {
        // Entropy is not critical for a name: fall back to the clock and pid.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ (std::process::id() as u64) << 32
    })
}

/// A new name such as `swift-fennec`.
pub fn generate() -> String {
    let r = random_u64();
    let a = ADJECTIVES[(r % ADJECTIVES.len() as u64) as usize];
    let f = FOXES[((r >> 16) % FOXES.len() as u64) as usize];
    format!("{a}-{f}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_two_lowercase_words() {
        for _ in 0..20 {
            let n = super::generate();
            let parts: Vec<&str> = n.split('-').collect();
            assert_eq!(parts.len(), 2, "{n}");
            assert!(n.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{n}");
        }
    }
}
