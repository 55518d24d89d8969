//! Session ids are unguessable: 100,000 fresh ids are all distinct, have the documented form
//! (22 URL-safe base64 characters for 128 random bits, `ids.rs`), and show no bias that a
//! statistical test can see.
//!
//! # Where the randomness comes from
//!
//! `SessionId::random` fills 16 bytes from `rand::rng()`: rand's thread-local CSPRNG (ChaCha12,
//! seeded from the operating system's generator through `getrandom` and periodically reseeded
//! from it), then writes them as URL-safe base64 without padding.
//!
//! # The entropy bound
//!
//! Base64 puts 6 bits in each character, so 22 characters could hold 132 bits; an id has 128,
//! and the 4 surplus bits are the low bits of the last character, always 0. That character
//! therefore takes 4 values (`A`, `Q`, `g`, `w`: 2 bits) and the 21 others take 64 (6 bits
//! each). Each position comes from its own bits of the random bytes, so when every position is
//! uniform over the values it can take, an id carries
//!
//! ```text
//! 21 × log2(64) + log2(4) = 21 × 6 + 2 = 128 bits,
//! ```
//!
//! and a guesser who knows all of the above still needs 2^127 tries on average to hit one
//! given session. The tests check the premise: every position uniform (chi-square), every bit
//! fair and independent of the previous id's (binomial z-score), and the entropy estimated from
//! the observed frequencies close to the bound.
//!
//! # Thresholds
//!
//! Every statistic is compared with its critical value at z = 7 (p ≈ 1e-12; chi-square through
//! the Wilson–Hilferty approximation, which errs high in the far tail): a fair generator fails
//! one of these tests far less than once in a billion runs. What they catch is what real
//! mistakes look like: a counter or clock in the id, too few random bytes, a stuck bit or one
//! more than ~1.1 % away from even, a symbol ~30 % off its share, repeated ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use shoal_core::ids::SessionId;

const IDS: usize = 100_000;
const LEN: usize = 22;
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
/// The last character carries the top 2 bits of the last byte: its low 4 bits are 0.
const LAST_POSITION_SYMBOLS: &[u8; 4] = b"AQgw";
/// The z-score every test stays under (p ≈ 1e-12, two-sided ≈ 2.6e-12).
const Z: f64 = 7.0;

fn ids() -> Vec<String> {
    (0..IDS)
        .map(|_| SessionId::random().as_str().to_owned())
        .collect()
}

/// The chi-square value that `df` degrees of freedom exceed with the probability of a
/// standard normal exceeding `z` (Wilson–Hilferty).
fn chi_square_critical(df: f64, z: f64) -> f64 {
    let h = 2.0 / (9.0 * df);
    df * (1.0 - h + z * h.sqrt()).powi(3)
}

/// Pearson's statistic of `counts` against a uniform distribution over them.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&observed| (observed as f64 - expected).powi(2) / expected)
        .sum()
}

/// Plug-in Shannon entropy of `counts`, in bits.
fn entropy_bits(counts: &[u64]) -> f64 {
    let total = counts.iter().sum::<u64>() as f64;
    counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = n as f64 / total;
            -p * p.log2()
        })
        .sum()
}

/// Per position, how often each symbol of `symbols` occurs; panics on any other symbol.
fn symbol_counts(ids: &[String], position: usize, symbols: &[u8]) -> Vec<u64> {
    let mut counts = vec![0u64; symbols.len()];
    for id in ids {
        let byte = id.as_bytes()[position];
        let index = symbols
            .iter()
            .position(|&s| s == byte)
            .unwrap_or_else(|| panic!("{id:?} has {:?} at position {position}", byte as char));
        counts[index] += 1;
    }
    counts
}

#[test]
fn ids_are_distinct_and_well_formed() {
    let ids = ids();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), IDS, "a session id repeated");
    for id in &ids {
        assert_eq!(id.len(), LEN, "{id:?}");
        assert!(id.bytes().all(|b| ALPHABET.contains(&b)), "{id:?}");
        assert_eq!(id.parse::<SessionId>().unwrap().as_str(), id);
        assert_eq!(URL_SAFE_NO_PAD.decode(id).unwrap().len(), 16, "{id:?}");
    }
}

#[test]
fn every_position_is_uniform_and_the_entropy_reaches_128_bits() {
    let ids = ids();
    // The structural bound from the comment at the top.
    let bound = (LEN - 1) as f64 * (ALPHABET.len() as f64).log2()
        + (LAST_POSITION_SYMBOLS.len() as f64).log2();
    assert!(bound >= 128.0, "{bound} bits");

    let mut estimated = 0.0;
    for position in 0..LEN {
        let symbols: &[u8] = if position == LEN - 1 {
            LAST_POSITION_SYMBOLS
        } else {
            ALPHABET
        };
        let counts = symbol_counts(&ids, position, symbols);
        let statistic = chi_square(&counts);
        let critical = chi_square_critical((symbols.len() - 1) as f64, Z);
        assert!(
            statistic < critical,
            "position {position}: chi-square {statistic:.1} ≥ {critical:.1} ({counts:?})"
        );
        estimated += entropy_bits(&counts);
    }
    // The plug-in estimate falls short of the true entropy by about (k - 1) / (2 N ln 2) bits
    // per position of k symbols: 0.0095 bits in all here. 0.1 bits of slack is generous.
    assert!(
        estimated > bound - 0.1,
        "estimated entropy {estimated:.4} bits, bound {bound} bits"
    );
    println!("{IDS} session ids: estimated entropy {estimated:.4} bits (bound {bound} bits)");
}

#[test]
fn every_bit_is_fair_and_independent_of_the_previous_id() {
    let ids: Vec<[u8; 16]> = ids()
        .iter()
        .map(|id| URL_SAFE_NO_PAD.decode(id).unwrap().try_into().unwrap())
        .collect();
    let mut ones = [0u64; 128];
    let mut changed = [0u64; 128];
    for (i, id) in ids.iter().enumerate() {
        for bit in 0..128 {
            let value = (id[bit / 8] >> (bit % 8)) & 1;
            ones[bit] += u64::from(value);
            if i > 0 {
                let previous = (ids[i - 1][bit / 8] >> (bit % 8)) & 1;
                changed[bit] += u64::from(value != previous);
            }
        }
    }
    // Binomial(n, 1/2): mean n/2, standard deviation sqrt(n)/2.
    let z = |count: u64, n: usize| (count as f64 - n as f64 / 2.0) / ((n as f64).sqrt() / 2.0);
    for bit in 0..128 {
        let fair = z(ones[bit], IDS);
        assert!(
            fair.abs() < Z,
            "bit {bit}: {} ones, z = {fair:.2}",
            ones[bit]
        );
        let independent = z(changed[bit], IDS - 1);
        assert!(
            independent.abs() < Z,
            "bit {bit}: changed {} times from one id to the next, z = {independent:.2}",
            changed[bit]
        );
    }
}

#[test]
fn the_thresholds_reject_a_biased_generator() {
    // The same tests on ids whose first byte is a counter: each must fail.
    let biased: Vec<String> = (0..IDS)
        .map(|i| {
            let mut bytes: [u8; 16] = URL_SAFE_NO_PAD
                .decode(SessionId::random().as_str())
                .unwrap()
                .try_into()
                .unwrap();
            bytes[0] = (i / 4096) as u8;
            URL_SAFE_NO_PAD.encode(bytes)
        })
        .collect();
    let counts = symbol_counts(&biased, 0, ALPHABET);
    assert!(chi_square(&counts) > chi_square_critical(63.0, Z));
    assert!(entropy_bits(&counts) < 6.0 - 0.1);
}
