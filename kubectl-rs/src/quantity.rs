//! Kubernetes resource quantities (`100m`, `1.5`, `128Mi`, `1e3`): parsing, adding
//! and printing them in canonical form as `resource.Quantity.String()` does, for the
//! resource totals of `describe node`.

/// A quantity as an exact number of nano-units, with the format it prints in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quantity {
    /// The value × 10⁹ (so `100m` is 100_000_000 and `1Ki` is 1024 × 10⁹).
    nanos: i128,
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// `k`, `M`, `m`, … and no suffix.
    #[default]
    DecimalSI,
    /// `Ki`, `Mi`, `Gi`, …
    BinarySI,
    /// `1e3`.
    DecimalExponent,
}

const NANO: i128 = 1_000_000_000;

impl Quantity {
    /// Parses a quantity; `None` for text that is not one.
    pub fn parse(text: &str) -> Option<Quantity> {
        let text = text.trim();
        let split =
            text.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(text.len());
        let (number, suffix) = text.split_at(split);
        let (negative, number) = match number.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, number.strip_prefix('+').unwrap_or(number)),
        };
        let (int, frac) = number.split_once('.').unwrap_or((number, ""));
        if (int.is_empty() && frac.is_empty()) || !int.chars().chain(frac.chars()).all(|c| c.is_ascii_digit()) {
            return None;
        }
        // The number in nano-units before the suffix is applied.
        let mut nanos: i128 = int.parse::<i128>().unwrap_or(0).checked_mul(NANO)?;
        let frac_digits: String = frac.chars().take(9).collect();
        if !frac_digits.is_empty() {
            let scale = 10i128.pow(9 - frac_digits.len() as u32);
            nanos += frac_digits.parse::<i128>().ok()? * scale;
        }
        let (format, multiply, divide): (Format, i128, i128) = match suffix {
            "" => (Format::DecimalSI, 1, 1),
            "n" => (Format::DecimalSI, 1, 1_000_000_000),
            "u" => (Format::DecimalSI, 1, 1_000_000),
            "m" => (Format::DecimalSI, 1, 1_000),
            "k" => (Format::DecimalSI, 1_000, 1),
            "M" => (Format::DecimalSI, 1_000_000, 1),
            "G" => (Format::DecimalSI, 1_000_000_000, 1),
            "T" => (Format::DecimalSI, 1_000_000_000_000, 1),
            "P" => (Format::DecimalSI, 1_000_000_000_000_000, 1),
            "E" => (Format::DecimalSI, 1_000_000_000_000_000_000, 1),
            "Ki" => (Format::BinarySI, 1 << 10, 1),
            "Mi" => (Format::BinarySI, 1 << 20, 1),
            "Gi" => (Format::BinarySI, 1 << 30, 1),
            "Ti" => (Format::BinarySI, 1 << 40, 1),
            "Pi" => (Format::BinarySI, 1 << 50, 1),
            "Ei" => (Format::BinarySI, 1 << 60, 1),
            s if s.starts_with(['e', 'E']) => {
                let exp: i32 = s[1..].parse().ok()?;
                if exp >= 0 {
                    (Format::DecimalExponent, 10i128.checked_pow(exp as u32)?, 1)
                } else {
                    (Format::DecimalExponent, 1, 10i128.checked_pow((-exp) as u32)?)
                }
            }
            _ => return None,
        };
        // Anything finer than a nano-unit rounds up, as Kubernetes rounds.
        let scaled = nanos.checked_mul(multiply)?;
        let mut nanos = scaled / divide;
        if scaled % divide != 0 {
            nanos += 1;
        }
        Some(Quantity { nanos: if negative { -nanos } else { nanos }, format })
    }

    /// Reads a quantity from JSON (a string or a number).
    pub fn from_json(v: &serde_json::Value) -> Option<Quantity> {
        match v {
            serde_json::Value::String(s) => Quantity::parse(s),
            serde_json::Value::Number(n) => Quantity::parse(&n.to_string()),
            _ => None,
        }
    }

    pub fn max(self, other: Quantity) -> Quantity {
        if other.nanos > self.nanos { other } else { self }
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Thousandths of a unit, rounded up (`MilliValue`).
    pub fn milli_value(&self) -> i128 {
        ceil_div(self.nanos, 1_000_000)
    }

    /// Whole units, rounded up (`Value`).
    pub fn value(&self) -> i128 {
        ceil_div(self.nanos, NANO)
    }

    /// `part / self` in percent, truncated, or 0 when `self` is zero; `milli` compares
    /// milli-values (CPU), else whole values.
    pub fn percent_of(&self, part: &Quantity, milli: bool) -> i64 {
        let (p, whole) = if milli { (part.milli_value(), self.milli_value()) } else { (part.value(), self.value()) };
        if whole == 0 {
            return 0;
        }
        (p as f64 / whole as f64 * 100.0) as i64
    }
}

impl std::ops::Add for Quantity {
    type Output = Quantity;

    /// Keeps this quantity's format (as `Quantity.Add` does); a zero quantity takes
    /// the other's format.
    fn add(self, other: Quantity) -> Quantity {
        let format = if self.nanos == 0 && self.format == Format::DecimalSI { other.format } else { self.format };
        Quantity { nanos: self.nanos + other.nanos, format }
    }
}

fn ceil_div(a: i128, b: i128) -> i128 {
    let q = a / b;
    if a % b != 0 && a > 0 { q + 1 } else { q }
}

impl std::fmt::Display for Quantity {
    /// The canonical form: the largest suffix that keeps the number whole.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.nanos == 0 {
            return f.write_str("0");
        }
        let sign = if self.nanos < 0 { "-" } else { "" };
        let n = self.nanos.abs();
        let whole = n % NANO == 0;
        if self.format == Format::BinarySI && whole && n / NANO >= 1024 {
            let units = n / NANO;
            for (shift, suffix) in [(60, "Ei"), (50, "Pi"), (40, "Ti"), (30, "Gi"), (20, "Mi"), (10, "Ki")] {
                if units % (1i128 << shift) == 0 {
                    return write!(f, "{sign}{}{suffix}", units >> shift);
                }
            }
            return write!(f, "{sign}{units}");
        }
        // Decimal: n = m × 10^(3e) with the largest e keeping m whole (e from -3).
        let mut exp3 = -3i32;
        let mut m = n;
        while m % 1000 == 0 && exp3 < 6 {
            m /= 1000;
            exp3 += 1;
        }
        if self.format == Format::DecimalExponent {
            return if exp3 == 0 { write!(f, "{sign}{m}") } else { write!(f, "{sign}{m}e{}", exp3 * 3) };
        }
        let suffix = match exp3 {
            -3 => "n",
            -2 => "u",
            -1 => "m",
            0 => "",
            1 => "k",
            2 => "M",
            3 => "G",
            4 => "T",
            5 => "P",
            _ => "E",
        };
        write!(f, "{sign}{m}{suffix}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap_or_else(|| panic!("{s:?} should parse"))
    }

    #[test]
    fn canonical_forms() {
        for (input, want) in [
            ("100m", "100m"),
            ("1", "1"),
            ("1.5", "1500m"),
            ("2000m", "2"),
            ("0.1", "100m"),
            ("1000", "1k"),
            ("128Mi", "128Mi"),
            ("1024Ki", "1Mi"),
            ("1536Ki", "1536Ki"),
            ("512", "512"),
            ("1e3", "1e3"),
            ("1500", "1500"),
            ("0", "0"),
            ("3800808Ki", "3800808Ki"),
        ] {
            assert_eq!(q(input).to_string(), want, "{input}");
        }
        assert!(Quantity::parse("ten").is_none());
        assert!(Quantity::parse("1Zi").is_none());
    }

    #[test]
    fn sums_and_percentages() {
        let cpu = q("250m") + q("200m");
        assert_eq!(cpu.to_string(), "450m");
        assert_eq!(q("4").percent_of(&cpu, true), 11);
        let mem = Quantity::default() + q("90Mi") + q("70Mi");
        assert_eq!(mem.to_string(), "160Mi");
        assert_eq!(q("16Gi").percent_of(&mem, false), 0);
        assert_eq!(q("1Gi").percent_of(&mem, false), 15);
        assert_eq!(Quantity::default().percent_of(&mem, false), 0);
        assert_eq!(q("100m").max(q("1")).to_string(), "1");
    }
}
