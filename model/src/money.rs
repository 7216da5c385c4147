//! Money: integer micro-USD inside (1 USD = 1,000,000), shown the way each API dialect shows it.
//!
//! Per-minute usage is tiny ($0.0042/h is 70 micro-USD a minute), so amounts are never rounded
//! inside; rounding happens only when a value is displayed.

use serde::{Deserialize, Serialize};

pub const MICROS_PER_USD: i64 = 1_000_000;

/// The largest amount any single input may name (one billion USD); keeps arithmetic far from
/// overflow and rejects nonsense early.
pub const MAX_INPUT_USD: f64 = 1_000_000_000.0;

/// `10.5000`: four decimals, as `X-Balance-Remaining` and the `/api` dialect show a balance.
pub fn usd4(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    // Round half up at the fifth decimal.
    let tenths_of_cents = (abs + 50) / 100;
    format!(
        "{sign}{}.{:04}",
        tenths_of_cents / 10_000,
        tenths_of_cents % 10_000
    )
}

/// An hourly rate in USD: four decimals like [`usd4`], more when the rate has them (a stopped
/// machine's disk costs fractions of a hundredth of a cent an hour: `0.00006`, not `0.0001`).
pub fn usd_rate(micros: i64) -> String {
    if micros % 100 == 0 {
        return usd4(micros);
    }
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let mut text = format!("{sign}{}.{:06}", abs / 1_000_000, abs % 1_000_000);
    while text.ends_with('0') {
        text.pop();
    }
    text
}

/// `70.00`: two decimals, as the `/api/v1` dialect shows rental amounts.
pub fn usd2(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let cents = (abs + 5_000) / 10_000;
    format!("{sign}{}.{:02}", cents / 100, cents % 100)
}

/// Converts a USD amount given by a client (a JSON number) to micro-USD, exactly to the micro.
/// Refuses NaN, infinities, negative values and values above [`MAX_INPUT_USD`].
pub fn micros_from_usd(usd: f64) -> Result<i64, &'static str> {
    if !usd.is_finite() {
        return Err("Amount must be a number");
    }
    if usd < 0.0 {
        return Err("Amount must not be negative");
    }
    if usd > MAX_INPUT_USD {
        return Err("Amount is too large");
    }
    Ok((usd * MICROS_PER_USD as f64).round() as i64)
}

/// A USD amount that serialises as a JSON number with exactly four decimals (`10.5000`), as
/// the `/api` dialect prints balances. Deserialises from any JSON number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usd4(pub i64);

impl Serialize for Usd4 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(usd4(self.0))
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Usd4 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let usd = f64::deserialize(d)?;
        micros_from_usd(usd.abs())
            .map(|m| Usd4(if usd < 0.0 { -m } else { m }))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn rates_keep_the_digits_they_have() {
        assert_eq!(super::usd_rate(60), "0.00006");
        assert_eq!(super::usd_rate(1400), "0.0014");
        assert_eq!(super::usd_rate(2060), "0.00206");
        assert_eq!(super::usd_rate(4200), "0.0042");
        assert_eq!(super::usd_rate(0), "0.0000");
    }

    use super::*;

    #[test]
    fn formats_round_at_the_last_shown_digit() {
        assert_eq!(usd4(10_500_000), "10.5000");
        assert_eq!(usd4(42_000), "0.0420");
        assert_eq!(usd4(70), "0.0001");
        assert_eq!(usd4(49), "0.0000");
        assert_eq!(usd4(-166_700), "-0.1667");
        assert_eq!(usd2(70_000_000), "70.00");
        assert_eq!(usd2(4_995), "0.00");
        assert_eq!(usd2(5_000), "0.01");
    }

    #[test]
    fn client_amounts_convert_exactly() {
        assert_eq!(micros_from_usd(0.1), Ok(100_000));
        assert_eq!(micros_from_usd(10.0), Ok(10_000_000));
        assert_eq!(micros_from_usd(0.0042), Ok(4_200));
        assert!(micros_from_usd(-1.0).is_err());
        assert!(micros_from_usd(f64::NAN).is_err());
        assert!(micros_from_usd(2e9).is_err());
    }

    #[test]
    fn usd4_serialises_with_four_decimals() {
        #[derive(Serialize)]
        struct B {
            balance: Usd4,
        }
        let json = serde_json::to_string(&B {
            balance: Usd4(10_500_000),
        })
        .unwrap();
        assert_eq!(json, r#"{"balance":10.5000}"#);
        let back: Usd4 = serde_json::from_str("0.1667").unwrap();
        assert_eq!(back, Usd4(166_700));
    }
}

#[cfg(feature = "openapi")]
mod schema {
    use utoipa::openapi::{
        schema::SchemaType, KnownFormat, ObjectBuilder, RefOr, Schema, SchemaFormat, Type,
    };

    impl utoipa::PartialSchema for super::Usd4 {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Number))
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Double)))
                .description(Some("US dollars, printed with four decimals"))
                .examples([serde_json::json!(10.5)])
                .into()
        }
    }

    impl utoipa::ToSchema for super::Usd4 {}
}

/// `70` / `70.5` / `0.000042`: USD as a JSON number with no trailing zeros, as the `/api/v1` dialect
/// prints transaction amounts.
pub fn usd_plain(micros: i64) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let whole = abs / 1_000_000;
    let frac = abs % 1_000_000;
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{frac:06}");
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

/// A USD amount serialised as a plain JSON number (`70`, `70.5`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsdNum(pub i64);

impl Serialize for UsdNum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(usd_plain(self.0))
            .map_err(serde::ser::Error::custom)?;
        raw.serialize(s)
    }
}

impl<'de> Deserialize<'de> for UsdNum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Usd4::deserialize(d).map(|u| UsdNum(u.0))
    }
}

#[cfg(feature = "openapi")]
mod schema_num {
    use utoipa::openapi::{schema::SchemaType, ObjectBuilder, RefOr, Schema, Type};

    impl utoipa::PartialSchema for super::UsdNum {
        fn schema() -> RefOr<Schema> {
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Number))
                .description(Some("US dollars"))
                .into()
        }
    }

    impl utoipa::ToSchema for super::UsdNum {}
}

#[cfg(test)]
mod plain_tests {
    #[test]
    fn plain_amounts_drop_trailing_zeros() {
        assert_eq!(super::usd_plain(70_000_000), "70");
        assert_eq!(super::usd_plain(70_500_000), "70.5");
        assert_eq!(super::usd_plain(42), "0.000042");
        assert_eq!(super::usd_plain(-1_250_000), "-1.25");
    }
}
