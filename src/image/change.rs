//! podman's `import --change 'INSTRUCTION'`: the Dockerfile instructions that set an imported
//! image's config (`CMD`, `ENTRYPOINT`, `ENV`, `WORKDIR`, `USER`), applied in order.

use super::store::ImageConfig;

/// The instructions `--change` takes.
pub const KNOWN: &[&str] = &["CMD", "ENTRYPOINT", "ENV", "WORKDIR", "USER"];

/// Apply one instruction to `config`. `Err` says what is wrong with it, for the user.
pub fn apply(config: &mut ImageConfig, change: &str) -> Result<(), String> {
    let change = change.trim();
    let (word, rest) = change
        .split_once(char::is_whitespace)
        .map_or((change, ""), |(w, r)| (w, r.trim()));
    let word = word.to_ascii_uppercase();
    if rest.is_empty() {
        return Err(format!("`{change}` has no value"));
    }
    match word.as_str() {
        "CMD" => config.cmd = argv(rest)?,
        "ENTRYPOINT" => config.entrypoint = argv(rest)?,
        "ENV" => {
            // `ENV K=V K2="V 2"` or the old `ENV K V`.
            let pairs = if rest.contains('=') {
                env_pairs(rest)?
            } else {
                let (k, v) = rest
                    .split_once(char::is_whitespace)
                    .ok_or_else(|| format!("`ENV {rest}` has no value: write `ENV KEY=VALUE`"))?;
                vec![(k.to_string(), v.trim().to_string())]
            };
            for (k, v) in pairs {
                config
                    .env
                    .retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
                config.env.push(format!("{k}={v}"));
            }
        }
        "WORKDIR" => {
            if !rest.starts_with('/') {
                return Err(format!("`WORKDIR {rest}` is not an absolute path"));
            }
            config.workdir = Some(rest.to_string());
        }
        "USER" => config.user = Some(rest.to_string()),
        _ => {
            return Err(format!(
                "`{word}` is not an instruction --change takes (it takes {})",
                KNOWN.join(", ")
            ))
        }
    }
    Ok(())
}

/// The exec form (`["/bin/sh", "-c"]`), or the shell form run by `/bin/sh -c`, as a
/// Dockerfile's.
fn argv(rest: &str) -> Result<Vec<String>, String> {
    if rest.starts_with('[') {
        serde_json::from_str::<Vec<String>>(rest)
            .map_err(|e| format!("`{rest}` is not a JSON array of strings ({e})"))
    } else {
        Ok(vec!["/bin/sh".into(), "-c".into(), rest.into()])
    }
}

/// `K=V K2="two words"` (double quotes group, a backslash escapes).
fn env_pairs(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|&c| c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        if chars.next() != Some('=') || key.is_empty() {
            return Err(format!("`ENV {text}`: write KEY=VALUE pairs"));
        }
        let mut value = String::new();
        let mut quoted = false;
        while let Some(c) = chars.next() {
            match c {
                '"' => quoted = !quoted,
                '\\' => value.extend(chars.next()),
                c if c.is_whitespace() && !quoted => break,
                c => value.push(c),
            }
        }
        if quoted {
            return Err(format!("`ENV {text}`: a quote is not closed"));
        }
        out.push((key, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_set_the_config() {
        let mut c = ImageConfig::default();
        apply(&mut c, r#"CMD ["/bin/sh"]"#).unwrap();
        apply(&mut c, "entrypoint /init --x").unwrap();
        apply(&mut c, r#"ENV A=1 B="two words" C=x\ y"#).unwrap();
        apply(&mut c, "ENV A 3").unwrap();
        apply(&mut c, "WORKDIR /srv").unwrap();
        apply(&mut c, "USER 1000:1000").unwrap();
        assert_eq!(c.cmd, ["/bin/sh"]);
        assert_eq!(c.entrypoint, ["/bin/sh", "-c", "/init --x"]);
        assert_eq!(c.env, ["B=two words", "C=x y", "A=3"]);
        assert_eq!(c.workdir.as_deref(), Some("/srv"));
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
    }

    #[test]
    fn bad_ones_say_why() {
        let mut c = ImageConfig::default();
        for (bad, says) in [
            ("EXPOSE 80", "CMD, ENTRYPOINT"),
            ("CMD", "no value"),
            ("CMD [1]", "JSON array"),
            ("ENV =1", "KEY=VALUE"),
            ("ENV A=\"x", "not closed"),
            ("WORKDIR srv", "absolute"),
        ] {
            let e = apply(&mut c, bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        assert_eq!(c, ImageConfig::default());
    }
}
