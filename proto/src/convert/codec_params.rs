//! `meta::CodecParams` ⇄ `common::codec::CodecParams`.
//!
//! The conversion checks what the wire can get wrong (an unknown codec number, k or m
//! above 255); whether the codec supports the combination (e.g. novelpoly needs a power
//! of two k) is the metadata service's business check, answered as a rejection.

use common::codec::{CodecId, CodecParams};

use super::ConvertError;
use crate::meta as pb;

impl TryFrom<&pb::CodecParams> for CodecParams {
    type Error = ConvertError;

    fn try_from(m: &pb::CodecParams) -> Result<Self, ConvertError> {
        let codec = u8::try_from(m.codec)
            .ok()
            .and_then(CodecId::from_u8)
            .ok_or_else(|| {
                ConvertError::new("codec.codec", format!("unknown codec {}", m.codec))
            })?;
        let k = u8::try_from(m.k)
            .map_err(|_| ConvertError::new("codec.k", format!("{} exceeds 255", m.k)))?;
        let mm = u8::try_from(m.m)
            .map_err(|_| ConvertError::new("codec.m", format!("{} exceeds 255", m.m)))?;
        Ok(CodecParams { codec, k, m: mm })
    }
}

impl From<CodecParams> for pb::CodecParams {
    fn from(p: CodecParams) -> Self {
        pb::CodecParams {
            codec: u32::from(p.codec.as_u8()),
            k: u32::from(p.k),
            m: u32::from(p.m),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_unknown_codecs_and_big_k_m() {
        let p = common::codec::DEFAULT_PARAMS;
        let wire: pb::CodecParams = p.into();
        assert_eq!(CodecParams::try_from(&wire), Ok(p));
        let unknown = pb::CodecParams { codec: 9, ..wire };
        assert_eq!(
            CodecParams::try_from(&unknown).unwrap_err().field,
            "codec.codec"
        );
        let huge = pb::CodecParams {
            codec: 256 + 1,
            ..wire
        };
        assert_eq!(
            CodecParams::try_from(&huge).unwrap_err().field,
            "codec.codec"
        );
        let big_k = pb::CodecParams { k: 256, ..wire };
        assert_eq!(CodecParams::try_from(&big_k).unwrap_err().field, "codec.k");
        let big_m = pb::CodecParams { m: 1000, ..wire };
        assert_eq!(CodecParams::try_from(&big_m).unwrap_err().field, "codec.m");
    }
}
