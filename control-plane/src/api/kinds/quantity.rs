//! Kubernetes resource quantities (`resource.Quantity`): parsing, the canonical
//! string Kubernetes stores and prints (`"0.5"` becomes `"500m"`, `"1024Mi"` becomes
//! `"1Gi"`), comparison, and the milli-unit rounding applied to resource lists.
//!
//! A value is held exactly as an `i128` count of nano-units (10^-9), the smallest
//! scale Kubernetes keeps: the largest suffix, `Ei` (2^60), times 10^9 is about
//! 1.2e27, far inside `i128`'s range. Anything that does not fit is rejected rather
//! than rounded.

use std::cmp::Ordering;
use std::fmt;

/// The message Kubernetes' decoder gives for a quantity that is not a number and
/// suffix at all.
pub const PARSE_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// ... and for one whose suffix is not a unit it knows (`1K`, `5e`).
pub const SUFFIX_ERROR: &str = "unable to parse quantity's suffix";
/// ... and for one too large to hold.
pub const NUMERIC_ERROR: &str = "unable to parse numeric part of quantity";

const NANO: i128 = 1_000_000_000;

/// How a quantity was written, which decides how it is printed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `500m`, `2`, `3k`, `1G`.
    DecimalSI,
    /// `128Mi`, `1Gi`.
    BinarySI,
    /// `1e3`, `5E-3`.
    DecimalExponent,
}

/// A parsed quantity.
#[derive(Debug, Clone, Copy)]
pub struct Quantity {
    nanos: i128,
    format: Format,
}

impl PartialEq for Quantity {
    fn eq(&self, other: &Self) -> bool {
        self.nanos == other.nanos
    }
}

impl Eq for Quantity {}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.nanos.cmp(&other.nanos)
    }
}

/// Divides rounding away from zero, as Kubernetes rounds quantities "up".
fn div_away(n: i128, d: i128) -> i128 {
    let q = n / d;
    if n % d == 0 {
        q
    } else if n > 0 {
        q + 1
    } else {
        q - 1
    }
}

fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

impl Quantity {
    /// Parses a quantity string; `None` if Kubernetes would reject it.
    pub fn parse(s: &str) -> Option<Quantity> {
        Self::parse_explained(s).ok()
    }

    /// Parses a quantity string, or says why Kubernetes would reject it.
    pub fn parse_explained(s: &str) -> Result<Quantity, &'static str> {
        let s = s.trim();
        // The shape Kubernetes' regular expression allows, checked before the details.
        let body = s.strip_prefix(['+', '-']).unwrap_or(s);
        let num_len = body.bytes().take_while(|c| c.is_ascii_digit() || *c == b'.').count();
        let rest = &body[num_len..];
        let unit_len = rest.bytes().take_while(|c| b"eEinumkKMGTP".contains(c)).count();
        let exp = &rest[unit_len..];
        let exp_digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
        let dots = body[..num_len].bytes().filter(|c| *c == b'.').count();
        if num_len == 0 || dots > 1 || !exp_digits.bytes().all(|c| c.is_ascii_digit()) {
            return Err(PARSE_ERROR);
        }
        Self::parse_inner(s).ok_or(SUFFIX_ERROR).and_then(|q| q.ok_or(NUMERIC_ERROR))
    }

    /// `None`: the number or suffix is malformed; `Some(None)`: well formed but too
    /// large to hold.
    fn parse_inner(s: &str) -> Option<Option<Quantity>> {
        let b = s.as_bytes();
        let mut i = 0;
        let negative = match b.first() {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let mut mantissa: i128 = 0;
        let mut frac_digits: u32 = 0;
        let mut seen_dot = false;
        let mut digits = 0;
        while i < b.len() {
            match b[i] {
                c @ b'0'..=b'9' => {
                    digits += 1;
                    // Leading zeros never overflow; significant digits beyond i128 do.
                    let Some(m) = mantissa.checked_mul(10).and_then(|m| m.checked_add(i128::from(c - b'0'))) else {
                        return Some(None);
                    };
                    mantissa = m;
                    if seen_dot {
                        frac_digits += 1;
                    }
                }
                b'.' if !seen_dot => seen_dot = true,
                _ => break,
            }
            i += 1;
        }
        if digits == 0 {
            return Some(Some(Quantity::zero()));
        }
        let suffix = &s[i..];
        let (format, pow2, pow10_exp): (Format, u32, i32) = match suffix {
            "" => (Format::DecimalSI, 0, 0),
            "n" => (Format::DecimalSI, 0, -9),
            "u" => (Format::DecimalSI, 0, -6),
            "m" => (Format::DecimalSI, 0, -3),
            "k" => (Format::DecimalSI, 0, 3),
            "M" => (Format::DecimalSI, 0, 6),
            "G" => (Format::DecimalSI, 0, 9),
            "T" => (Format::DecimalSI, 0, 12),
            "P" => (Format::DecimalSI, 0, 15),
            "E" => (Format::DecimalSI, 0, 18),
            "Ki" => (Format::BinarySI, 10, 0),
            "Mi" => (Format::BinarySI, 20, 0),
            "Gi" => (Format::BinarySI, 30, 0),
            "Ti" => (Format::BinarySI, 40, 0),
            "Pi" => (Format::BinarySI, 50, 0),
            "Ei" => (Format::BinarySI, 60, 0),
            _ => {
                let rest = suffix.strip_prefix('e').or_else(|| suffix.strip_prefix('E'))?;
                let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
                if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
                    return None;
                }
                let e: i32 = rest.parse().ok()?;
                (Format::DecimalExponent, 0, e)
            }
        };
        Some(Self::scale(mantissa, frac_digits, pow2, pow10_exp, negative, format))
    }

    /// value = mantissa * 2^pow2 * 10^(pow10_exp - frac_digits), in nano-units (add
    /// 9 to the decimal exponent), rounding up anything finer than a nano-unit.
    fn scale(
        mantissa: i128,
        frac_digits: u32,
        pow2: u32,
        pow10_exp: i32,
        negative: bool,
        format: Format,
    ) -> Option<Quantity> {
        let mut n = mantissa.checked_mul(1i128.checked_shl(pow2)?)?;
        let e10 = pow10_exp.checked_add(9)?.checked_sub(i32::try_from(frac_digits).ok()?)?;
        if e10 >= 0 {
            n = n.checked_mul(pow10(e10.unsigned_abs())?)?;
        } else {
            n = match pow10(e10.unsigned_abs()) {
                Some(d) => div_away(n, d),
                // Smaller than any nano-unit: a non-zero amount rounds up to 1n.
                None => i128::from(n != 0),
            };
        }
        if negative {
            n = -n;
        }
        Some(Quantity { nanos: n, format })
    }

    pub fn is_negative(&self) -> bool {
        self.nanos < 0
    }

    /// Whether the value is a whole number (integer resources must be).
    pub fn is_integer(&self) -> bool {
        self.nanos % NANO == 0
    }

    /// Rounds up (away from zero) to milli-units, as Kubernetes does to every
    /// resource list while defaulting.
    pub fn round_up_milli(self) -> Quantity {
        Quantity { nanos: div_away(self.nanos, 1_000_000) * 1_000_000, format: self.format }
    }

    /// The sum of two quantities, keeping the first one's format.
    pub fn plus(self, other: Quantity) -> Quantity {
        Quantity { nanos: self.nanos.saturating_add(other.nanos), format: self.format }
    }

    pub fn zero() -> Quantity {
        Quantity { nanos: 0, format: Format::DecimalSI }
    }
}

/// Removes every factor `base` from `v`; returns what is left and how many.
fn remove_factors(mut v: i128, base: i128) -> (i128, i32) {
    let mut times = 0;
    while v != 0 && v % base == 0 {
        v /= base;
        times += 1;
    }
    (v, times)
}

/// The canonical form, as `resource.Quantity.String()` prints it.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let mut format = self.format;
        if format == Format::BinarySI && (self.nanos.abs() < 1024 * NANO || self.nanos % NANO != 0) {
            // Small or fractional binary amounts print in decimal rather than round.
            format = Format::DecimalSI;
        }
        if format == Format::BinarySI {
            let (amount, times) = remove_factors(self.nanos / NANO, 1024);
            let suffix = match times {
                0 => "",
                1 => "Ki",
                2 => "Mi",
                3 => "Gi",
                4 => "Ti",
                5 => "Pi",
                _ => "Ei",
            };
            // Past Ei the remaining factors of 1024 stay in the number.
            let amount = if times > 6 { amount * 1024i128.pow((times - 6).unsigned_abs()) } else { amount };
            return write!(f, "{amount}{suffix}");
        }
        let (mut amount, times) = remove_factors(self.nanos, 10);
        let mut exponent = times - 9;
        // Kubernetes keeps the exponent a multiple of three (Go's % keeps the sign).
        match exponent % 3 {
            1 | -2 => {
                amount *= 10;
                exponent -= 1;
            }
            2 | -1 => {
                amount *= 100;
                exponent -= 2;
            }
            _ => {}
        }
        if format == Format::DecimalExponent {
            return if exponent == 0 { write!(f, "{amount}") } else { write!(f, "{amount}e{exponent}") };
        }
        let suffix = match exponent {
            -9 => "n",
            -6 => "u",
            -3 => "m",
            0 => "",
            3 => "k",
            6 => "M",
            9 => "G",
            12 => "T",
            15 => "P",
            18 => "E",
            _ => return write!(f, "{amount}e{exponent}"),
        };
        write!(f, "{amount}{suffix}")
    }
}

/// Parses and canonicalizes a quantity string (`Err` carries Kubernetes' decoding
/// message), rounding up to milli-units when `round` is set.
pub fn canonical(s: &str, round: bool) -> Result<String, String> {
    let q = Quantity::parse_explained(s).map_err(str::to_string)?;
    Ok(if round { q.round_up_milli() } else { q }.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        Quantity::parse(s).unwrap().to_string()
    }

    #[test]
    fn canonical_forms_match_kubernetes() {
        assert_eq!(c("0.5"), "500m");
        assert_eq!(c("1000m"), "1");
        assert_eq!(c("100m"), "100m");
        assert_eq!(c("1000"), "1k");
        assert_eq!(c("1500"), "1500");
        assert_eq!(c("1024Mi"), "1Gi");
        assert_eq!(c("1.5Gi"), "1536Mi");
        assert_eq!(c("512"), "512");
        assert_eq!(c("1e3"), "1e3");
        assert_eq!(c("0"), "0");
        assert_eq!(c("128974848"), "128974848");
        assert_eq!(c("129e6"), "129e6");
        assert_eq!(c("123Mi"), "123Mi");
        assert_eq!(c("1Ki"), "1Ki");
        assert_eq!(c("0.5Ki"), "512");
        assert_eq!(c("-1"), "-1");
        assert_eq!(c("2k"), "2k");
        assert_eq!(c("1.5"), "1500m");
    }

    #[test]
    fn rejects_what_kubernetes_rejects() {
        for bad in ["", "abc", "1K", "1.2.3", "m", "1e", "1Gb", "--1", "1 Gi"] {
            assert!(Quantity::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(canonical("x", false).unwrap_err(), PARSE_ERROR);
        assert_eq!(canonical("1.2.3", false).unwrap_err(), PARSE_ERROR);
        assert_eq!(canonical("1K", false).unwrap_err(), SUFFIX_ERROR);
        assert_eq!(canonical("99999999999999999999999999999999999999999", false).unwrap_err(), NUMERIC_ERROR);
    }

    #[test]
    fn compares_and_rounds() {
        let a = Quantity::parse("500m").unwrap();
        let b = Quantity::parse("0.5").unwrap();
        assert_eq!(a, b);
        assert!(Quantity::parse("1Gi").unwrap() > Quantity::parse("1G").unwrap());
        assert_eq!(Quantity::parse("0.0001").unwrap().round_up_milli().to_string(), "1m");
        assert_eq!(canonical("1.0001", true).unwrap(), "1001m");
        assert!(Quantity::parse("2").unwrap().is_integer());
        assert!(!Quantity::parse("1500m").unwrap().is_integer());
        assert_eq!(a.plus(b).to_string(), "1");
    }
}
