//! Random passwords from the OS CSPRNG (generate-random-password).

use rand::{Rng, seq::SliceRandom};

use crate::domain::Rejection;
use crate::error::CsmsError;

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// The rules a generated password follows.
#[derive(Debug, Default, Clone)]
pub struct PasswordPolicy {
    /// 1-255 characters (absent: 32).
    pub length: Option<i64>,
    /// Characters never used.
    pub exclude_characters: String,
    /// No `a-z`.
    pub exclude_lowercase: bool,
    /// No `A-Z`.
    pub exclude_uppercase: bool,
    /// No `0-9`.
    pub exclude_numbers: bool,
    /// No ASCII punctuation.
    pub exclude_punctuation: bool,
    /// Space may be used.
    pub include_space: bool,
    /// At least one character of every class in use.
    pub require_each_included_type: bool,
}

/// A password following the policy.
pub fn generate(req: &PasswordPolicy) -> Result<String, CsmsError> {
    let length = match req.length.unwrap_or(32) {
        n @ 1..=255 => n as usize,
        _ => return Err(Rejection::InvalidParameter("length must be 1-255".into()).into()),
    };
    let excluded = |c: &char| req.exclude_characters.contains(*c);
    let mut classes: Vec<Vec<char>> = Vec::new();
    for (skip, set) in [
        (req.exclude_lowercase, LOWER),
        (req.exclude_uppercase, UPPER),
        (req.exclude_numbers, DIGITS),
        (req.exclude_punctuation, PUNCTUATION),
        (!req.include_space, " "),
    ] {
        let chars: Vec<char> = set.chars().filter(|c| !excluded(c)).collect();
        if !skip && !chars.is_empty() {
            classes.push(chars);
        }
    }
    let pool: Vec<char> = classes.iter().flatten().copied().collect();
    if pool.is_empty() {
        return Err(Rejection::InvalidParameter("no characters left to build a password from".into()).into());
    }
    if req.require_each_included_type && length < classes.len() {
        return Err(Rejection::InvalidParameter("length is below the number of required character types".into()).into());
    }
    let mut rng = rand::rngs::OsRng;
    let mut password: Vec<char> = Vec::with_capacity(length);
    if req.require_each_included_type {
        password.extend(classes.iter().map(|class| class[rng.gen_range(0..class.len())]));
    }
    while password.len() < length {
        password.push(pool[rng.gen_range(0..pool.len())]);
    }
    password.shuffle(&mut rng);
    Ok(password.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_honoured() {
        let req = PasswordPolicy {
            length: Some(40),
            exclude_punctuation: true,
            exclude_characters: "aA0".into(),
            ..Default::default()
        };
        let p = generate(&req).unwrap();
        assert_eq!(p.chars().count(), 40);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric() && !"aA0".contains(c)));
        assert_eq!(generate(&PasswordPolicy::default()).unwrap().len(), 32);
        let each = PasswordPolicy { length: Some(4), require_each_included_type: true, ..Default::default() };
        for _ in 0..50 {
            let p = generate(&each).unwrap();
            assert!(p.chars().any(|c| c.is_ascii_lowercase()) && p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()) && p.chars().any(|c| PUNCTUATION.contains(c)));
        }
        let none = PasswordPolicy {
            exclude_lowercase: true,
            exclude_uppercase: true,
            exclude_numbers: true,
            exclude_punctuation: true,
            ..Default::default()
        };
        assert!(generate(&none).is_err());
        assert!(generate(&PasswordPolicy { length: Some(256), ..Default::default() }).is_err());
        let spaced = PasswordPolicy {
            length: Some(3),
            require_each_included_type: true,
            include_space: true,
            ..Default::default()
        };
        assert!(generate(&spaced).is_err(), "five types do not fit in three characters");
    }
}
