//! The rule for box and volume names: a value rule, shared by the spec resolver and the
//! stores, so parsing a spec needs nothing of the box store.

/// podman's rule for box names: a letter or digit, then letters, digits, `_`, `.`, `-`.
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => return Err("it is empty"),
        Some(c) if !c.is_ascii_alphanumeric() => {
            return Err("it must start with a letter or digit")
        }
        _ => {}
    }
    if name.len() > 128 {
        return Err("it is longer than 128 characters");
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
        return Err("only letters, digits, '_', '.' and '-' are allowed");
    }
    Ok(())
}
