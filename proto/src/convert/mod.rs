//! Validating conversions between wire messages and domain types, one file per message.

mod fragment_id;

/// A wire message that does not make a valid domain value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct ConvertError {
    pub field: &'static str,
    pub reason: String,
}

impl ConvertError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Self {
            field,
            reason: reason.into(),
        }
    }
}

/// Unwraps a required sub-message.
pub fn required<T>(v: Option<T>, field: &'static str) -> Result<T, ConvertError> {
    v.ok_or_else(|| ConvertError::new(field, "missing"))
}
