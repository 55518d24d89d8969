//! Small binary payloads the built-in tools return, base64-encoded (standard alphabet, padded).
//!
//! They are the conformance suite's reference fixtures: clients check that image, audio and blob
//! data decode, not what they show.

/// A 1×1 PNG image.
pub(super) const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

/// The header of a WAV file (PCM, 8 kHz, 16-bit mono) with no samples. Its `data` chunk
/// announces one sample the payload leaves out; players may complain, the suite does not.
pub(super) const WAV_MINIMAL: &str = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA=";

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    #[test]
    fn png_decodes_to_a_png() {
        let bytes = STANDARD.decode(PNG_1X1).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        // The IHDR chunk: width 1, height 1.
        assert_eq!(&bytes[12..16], b"IHDR");
        assert_eq!(&bytes[16..24], &[0, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(&bytes[bytes.len() - 8..bytes.len() - 4], b"IEND");
    }

    #[test]
    fn wav_decodes_to_a_wav() {
        let bytes = STANDARD.decode(WAV_MINIMAL).unwrap();
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(&bytes[8..16], b"WAVEfmt ");
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let u32_at =
            |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
        // PCM, one channel, 8000 Hz, 16 bits per sample.
        assert_eq!(
            (u16_at(20), u16_at(22), u32_at(24), u16_at(34)),
            (1, 1, 8000, 16)
        );
        assert_eq!(&bytes[36..40], b"data");
    }
}
