//! Box ids and names: random hex ids as podman's, and fox-themed generated names.

use std::io;

const ADJECTIVES: &[&str] = &[
    "amber", "bold", "brave", "bright", "calm", "clever", "cunning", "dusky", "eager", "fleet",
    "gentle", "happy", "keen", "lively", "lucky", "misty", "nimble", "quick", "quiet", "rusty",
    "shy", "sly", "snowy", "sunny", "swift", "tawny", "wily", "wise", "witty", "young",
];

const FOXES: &[&str] = &[
    "arctic", "bengal", "blanford", "cape", "corsac", "culpeo", "darwin", "fennec", "grey",
    "hoary", "kit", "pale", "pampas", "red", "ruppell", "sechuran", "swift", "tibetan", "vulpes",
    "zorro",
];

/// `n` random bytes from the kernel (getrandom(2): no file to open, as /dev/urandom would be).
pub fn random_bytes(n: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut filled = 0;
    while filled < n {
        let rest = &mut buf[filled..];
        match rustix::rand::getrandom(&mut *rest, rustix::rand::GetRandomFlags::empty()) {
            Ok(k) => filled += k,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(buf)
}

/// A new 64-hex-digit box id.
pub fn new_id() -> io::Result<String> {
    Ok(hex::encode(random_bytes(32)?))
}

/// True for what [`new_id`] makes: 64 lowercase hex digits.
pub fn validate_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A generated name such as `nimble-fennec`; the caller retries on a clash. A dash, not
/// podman's underscore: the name is also the box's hostname, and hostnames have no `_`.
pub fn generate_name() -> io::Result<String> {
    let r = random_bytes(2)?;
    Ok(format!(
        "{}-{}",
        ADJECTIVES[r[0] as usize % ADJECTIVES.len()],
        FOXES[r[1] as usize % FOXES.len()]
    ))
}

pub use crate::plan::names::validate_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_64_hex_and_differ() {
        let a = new_id().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, new_id().unwrap());
    }

    #[test]
    fn generated_names_are_valid() {
        for _ in 0..50 {
            let n = generate_name().unwrap();
            assert!(validate_name(&n).is_ok(), "{n}");
            assert!(n.contains('-'));
        }
    }

    #[test]
    fn name_rules() {
        assert!(validate_name("web-1.a_b").is_ok());
        for bad in ["", "_x", "a/b", "a b", "..", "x:y"] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
    }
}
