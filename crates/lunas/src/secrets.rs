//! Secrets given on the command line or in configuration: literally, or as `env:VAR_NAME` to
//! read them from the environment (so they stay out of files and shell history).

use lunas_protocol::Secret;

/// Resolves `env:VAR` to the variable's value; any other text is the secret itself.
pub fn resolve(value: &str) -> Result<Secret, String> {
    match value.strip_prefix("env:") {
        Some(var) => match std::env::var(var) {
            Ok(v) if !v.is_empty() => Ok(Secret::new(v)),
            Ok(_) => Err(format!("environment variable {var} is empty")),
            Err(_) => Err(format!("environment variable {var} is not set")),
        },
        None => Ok(Secret::new(value)),
    }
}
