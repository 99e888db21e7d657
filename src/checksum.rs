//! Checksums: CRC-32 for the index's data files (format 3), and 64-bit FNV-1a, formats
//! 1 and 2's own, which also fingerprints what a generator has learned.

/// CRC-32 (the one of zlib, gzip and PNG): format 3's checksum, which any CRC tool can
/// check. It guards against damage (truncation, flipped bits), not an adversary.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// 64-bit FNV-1a over 8-byte words, formats 1 and 2's own checksum: kept to verify
/// indexes saved in those formats.
pub(crate) fn fnv_words(bytes: &[u8]) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ bytes.len() as u64;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = (h ^ u64::from_le_bytes(w.try_into().unwrap())).wrapping_mul(PRIME);
    }
    for &b in words.remainder() {
        h = (h ^ b as u64).wrapping_mul(PRIME);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_see_truncation_and_flips() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        // The standard CRC-32 check value.
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        for sum in [|b: &[u8]| crc32(b) as u64, fnv_words] {
            let c = sum(&data);
            assert_ne!(c, sum(&data[..999]));
            let mut flipped = data.clone();
            flipped[500] ^= 1;
            assert_ne!(c, sum(&flipped));
        }
    }
}
