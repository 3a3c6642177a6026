//! Config files: TOML parsed into a typed struct, with errors that name the file and the
//! offending field (for parse errors, toml's message names the field and the line).

use std::path::Path;

use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config file {path}: field `{field}`: {message}")]
    Invalid {
        path: String,
        field: String,
        message: String,
    },
}

impl ConfigError {
    /// A semantic error in `field` of the file `origin`.
    pub fn invalid(origin: &str, field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: origin.to_string(),
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Parses TOML text; `origin` names the file in errors.
pub fn parse_toml<T: DeserializeOwned>(text: &str, origin: &str) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Parse {
        path: origin.to_string(),
        message: e.to_string().trim().replace('\n', " "),
    })
}

/// Reads a file; returns its text and its display name for errors.
pub fn read_file(path: &Path) -> Result<(String, String), ConfigError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: origin.clone(),
        source,
    })?;
    Ok((text, origin))
}
