//! Secrets given on the command line or in configuration: literally, or as `env:VAR_NAME` to
//! read them from the environment (so they stay out of files and shell history).

use lunas_protocol::Secret;

/// Resolves `env:VAR` from the process environment; any other text is the secret itself.
pub fn resolve(value: &str) -> Result<Secret, String> {
    resolve_with(value, &|name| std::env::var(name).ok())
}

/// Resolves `env:VAR` through `lookup`.
pub fn resolve_with(
    value: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Secret, String> {
    match value.strip_prefix("env:") {
        Some(var) => match lookup(var) {
            Some(v) if !v.is_empty() => Ok(Secret::new(v)),
            Some(_) => Err(format!("environment variable {var} is empty")),
            None => Err(format!("environment variable {var} is not set")),
        },
        None => Ok(Secret::new(value)),
    }
}
