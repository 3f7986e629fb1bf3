//! The low-precision *storage* types of ONNX: five float8 formats (the
//! fifth, e8m0, is a bare exponent: [`F8E8M0`]), float4 (e2m1), and the 4-
//! and 2-bit integers. onnxi holds each element in one byte (the 4- and
//! 2-bit types are unpacked when a tensor is read and packed again when one
//! is written). Cast and CastLike convert them, the ops that only move
//! elements (Identity, Reshape, Transpose, …) carry them from the opset
//! whose schema lists them, and every other op refuses them as it refuses
//! any dtype outside its schema.
//!
//! The float formats ([`MiniFloat`]) follow the ONNX spec
//! (<https://onnx.ai/onnx/technical/float8.html>,
//! <https://onnx.ai/onnx/technical/float4.html>):
//!
//! | type | exponent, mantissa bits | bias | max | inf | NaN | -0 |
//! |------|------------------|------|-----|-----|-----|----|
//! | float8e4m3fn   | 4, 3 | 7  | 448   | no  | `S.1111.111` | yes |
//! | float8e4m3fnuz | 4, 3 | 8  | 240   | no  | `0x80` only  | no  |
//! | float8e5m2     | 5, 2 | 15 | 57344 | yes | IEEE         | yes |
//! | float8e5m2fnuz | 5, 2 | 16 | 57344 | no  | `0x80` only  | no  |
//! | float4e2m1     | 2, 1 | 1  | 6     | no  | none         | yes |
//!
//! A conversion to one of them rounds to nearest-even from the exact value
//! (subnormals included). Out of range (±inf, or a rounded magnitude above
//! the max) it saturates to ±max when `saturate` is set (Cast's default);
//! otherwise it gives ±inf for float8e5m2 and NaN for the others, as the
//! tables in the Cast schema say. float4e2m1 has neither inf nor NaN and
//! always saturates; NaN, which it cannot hold, becomes a zero whose sign is
//! the opposite of the NaN's (what the ONNX reference, through `ml_dtypes`,
//! gives, and what the official test data holds).

use std::fmt;

/// How a minifloat format spends its top codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Specials {
    /// IEEE-like: the all-ones exponent holds ±inf (mantissa 0) and NaN.
    Ieee,
    /// "Finite": only the all-ones code (each sign) is NaN; no inf.
    Fn,
    /// "Finite, unsigned zero": `0x80` (negative zero's code) is the only
    /// NaN; no inf, no -0.
    Fnuz,
    /// No NaN, no inf (float4e2m1).
    None,
}

/// A binary floating-point format of at most 8 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MiniFloat {
    exp_bits: u32,
    man_bits: u32,
    bias: i32,
    specials: Specials,
}

/// float8e4m3fn.
pub const E4M3FN: MiniFloat = MiniFloat { exp_bits: 4, man_bits: 3, bias: 7, specials: Specials::Fn };
/// float8e4m3fnuz.
pub const E4M3FNUZ: MiniFloat = MiniFloat { exp_bits: 4, man_bits: 3, bias: 8, specials: Specials::Fnuz };
/// float8e5m2.
pub const E5M2: MiniFloat = MiniFloat { exp_bits: 5, man_bits: 2, bias: 15, specials: Specials::Ieee };
/// float8e5m2fnuz.
pub const E5M2FNUZ: MiniFloat = MiniFloat { exp_bits: 5, man_bits: 2, bias: 16, specials: Specials::Fnuz };
/// float4e2m1.
pub const E2M1: MiniFloat = MiniFloat { exp_bits: 2, man_bits: 1, bias: 1, specials: Specials::None };

impl MiniFloat {
    fn sign_bit(self) -> u8 {
        1 << (self.exp_bits + self.man_bits)
    }

    fn exp_max(self) -> u8 {
        (1 << self.exp_bits) - 1
    }

    fn man_mask(self) -> u8 {
        (1 << self.man_bits) - 1
    }

    /// The code of the largest finite value.
    fn max_code(self) -> u8 {
        match self.specials {
            Specials::Ieee => ((self.exp_max() - 1) << self.man_bits) | self.man_mask(),
            Specials::Fn => (self.exp_max() << self.man_bits) | (self.man_mask() - 1),
            Specials::Fnuz | Specials::None => (self.exp_max() << self.man_bits) | self.man_mask(),
        }
    }

    /// The largest finite value.
    pub fn max(self) -> f64 {
        self.to_f64(self.max_code())
    }

    /// The exact value of a code (its bits above the format's width are
    /// ignored).
    pub fn to_f64(self, code: u8) -> f64 {
        let code = code & (self.sign_bit() | (self.sign_bit() - 1));
        let negative = code & self.sign_bit() != 0;
        let exp = (code >> self.man_bits) & self.exp_max();
        let man = code & self.man_mask();
        match self.specials {
            Specials::Fnuz if code == self.sign_bit() => return f64::NAN,
            Specials::Fn if exp == self.exp_max() && man == self.man_mask() => return f64::NAN,
            Specials::Ieee if exp == self.exp_max() => {
                if man != 0 {
                    return f64::NAN;
                }
                return if negative { f64::NEG_INFINITY } else { f64::INFINITY };
            }
            _ => {}
        }
        let m = self.man_bits as i32;
        let magnitude = if exp == 0 {
            f64::from(man) * pow2(1 - self.bias - m)
        } else {
            f64::from((1u8 << self.man_bits) | man) * pow2(i32::from(exp) - self.bias - m)
        };
        if negative { -magnitude } else { magnitude }
    }

    /// The code of `value` rounded to nearest-even; see the module for
    /// out-of-range values and NaN.
    pub fn from_f64(self, value: f64, saturate: bool) -> u8 {
        let sign = if value.is_sign_negative() { self.sign_bit() } else { 0 };
        if value.is_nan() {
            return match self.specials {
                Specials::Fnuz => self.sign_bit(),
                Specials::Fn => sign | (self.exp_max() << self.man_bits) | self.man_mask(),
                // A quiet NaN: the top mantissa bit set.
                Specials::Ieee => sign | (self.exp_max() << self.man_bits) | (1 << (self.man_bits - 1)),
                Specials::None => sign ^ self.sign_bit(),
            };
        }
        let overflow = || {
            if saturate || self.specials == Specials::None {
                return sign | self.max_code();
            }
            match self.specials {
                Specials::Ieee => sign | (self.exp_max() << self.man_bits),
                Specials::Fn => sign | (self.exp_max() << self.man_bits) | self.man_mask(),
                _ => self.sign_bit(),
            }
        };
        let zero = if self.specials == Specials::Fnuz { 0 } else { sign };
        let magnitude = value.abs();
        if magnitude.is_infinite() {
            return overflow();
        }
        let emin = 1 - self.bias;
        let m = self.man_bits as i32;
        // Anything below a quarter of the smallest subnormal rounds to 0
        // (this also keeps f64 subnormals out of the exponent read below).
        if magnitude < pow2(emin - m - 2) {
            return zero;
        }
        let exponent = ((magnitude.to_bits() >> 52) & 0x7ff) as i32 - 1023;
        let quantum = exponent.max(emin) - m;
        // Scaling by a power of two is exact here; so is the rounding of
        // the scaled value to an integer.
        let steps = (magnitude * pow2(-quantum)).round_ties_even();
        if steps * pow2(quantum) > self.max() {
            return overflow();
        }
        if steps == 0.0 {
            return zero;
        }
        let steps = steps as u32;
        let (exp_field, man) = if steps < 1 << self.man_bits {
            (0, steps)
        } else if steps == 2 << self.man_bits {
            // Rounded up into the next binade.
            (exponent.max(emin) + 1 + self.bias, 0)
        } else {
            (exponent.max(emin) + self.bias, steps - (1 << self.man_bits))
        };
        sign | ((exp_field as u8) << self.man_bits) | man as u8
    }
}

fn pow2(exponent: i32) -> f64 {
    2f64.powi(exponent)
}

macro_rules! small_float {
    ($name:ident, $format:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Default)]
        #[repr(transparent)]
        pub struct $name(pub u8);

        impl $name {
            /// The format.
            pub const FORMAT: MiniFloat = $format;
            /// The exact value.
            pub fn to_f64(self) -> f64 {
                Self::FORMAT.to_f64(self.0)
            }
            /// `value` rounded to nearest-even, out-of-range values
            /// saturating or not (see the module).
            pub fn from_f64(value: f64, saturate: bool) -> Self {
                $name(Self::FORMAT.from_f64(value, saturate))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.to_f64())
            }
        }
    };
}

small_float!(F8E4M3FN, E4M3FN, "A float8e4m3fn value (its 8-bit code).");
small_float!(F8E4M3FNUZ, E4M3FNUZ, "A float8e4m3fnuz value (its 8-bit code).");
small_float!(F8E5M2, E5M2, "A float8e5m2 value (its 8-bit code).");
small_float!(F8E5M2FNUZ, E5M2FNUZ, "A float8e5m2fnuz value (its 8-bit code).");
small_float!(F4E2M1, E2M1, "A float4e2m1 value (its code in the low 4 bits).");

/// How a conversion to float8e8m0 rounds (Cast's `round_mode`, opset 24+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum E8M0Rounding {
    /// Away from zero (the default).
    #[default]
    Up,
    /// Toward zero.
    Down,
    /// To nearest, ties away from zero.
    Nearest,
}

/// A float8e8m0 value (its 8-bit code): an exponent only, `2^(code - 127)`
/// for codes 0 to 254, and NaN for 255; no sign, no zero, no inf. The
/// scale type of the OCP Microscaling formats.
///
/// A conversion to it follows the ONNX reference (`onnx.numpy_helper.
/// to_float8e8m0`), which the official test data holds: the value is first
/// rounded to float32, whose exponent field becomes the code, rounded by
/// the mantissa bits per [`E8M0Rounding`] (never past 254 when saturating;
/// a carry past 254 gives NaN otherwise). The sign is ignored (negative
/// inputs are undefined in the spec), ±0 and float32 subnormals give code 0
/// (`2^-127`), and NaN and ±inf give NaN.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct F8E8M0(pub u8);

impl F8E8M0 {
    /// The exact value (NaN for code 255).
    pub fn to_f64(self) -> f64 {
        if self.0 == 0xff { f64::NAN } else { (f64::from(self.0) - 127.0).exp2() }
    }

    /// `value` (through float32) as float8e8m0, by the reference's rules
    /// (see the type).
    pub fn from_f64(value: f64, saturate: bool, rounding: E8M0Rounding) -> Self {
        let bits = (value as f32).to_bits();
        let exponent = (bits >> 23) & 0xff;
        if exponent == 0xff {
            return F8E8M0(0xff);
        }
        let mantissa = bits & 0x7f_ffff;
        let round_up = match rounding {
            E8M0Rounding::Down => false,
            E8M0Rounding::Up => mantissa != 0,
            E8M0Rounding::Nearest => {
                // The reference's guard/round/sticky rule, with "lsb" the
                // test `exponent > 0`.
                let guard = bits & 0x40_0000 != 0;
                let round = bits & 0x20_0000 != 0;
                let sticky = bits & 0x1f_ffff != 0;
                guard && (round || sticky || exponent > 0)
            }
        };
        let saturated = saturate && exponent == 0xfe;
        let code = exponent + u32::from(round_up && !saturated);
        F8E8M0(u8::try_from(code).unwrap_or(0xff))
    }
}

impl fmt::Debug for F8E8M0 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_f64())
    }
}

macro_rules! small_int {
    ($name:ident, $repr:ty, $bits:expr, $signed:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
        #[repr(transparent)]
        pub struct $name(pub $repr);

        impl $name {
            /// Bits per element.
            pub const BITS: u32 = $bits;
            /// The low `BITS` bits of `value`, as two's complement when
            /// signed (how ONNX narrows integers).
            pub fn wrapping_from(value: i128) -> Self {
                let low = value.rem_euclid(1 << $bits);
                let value = if $signed && low >= 1 << ($bits - 1) { low - (1 << $bits) } else { low };
                $name(value as $repr)
            }
            /// The value from its code in the low `BITS` bits.
            pub fn from_code(code: u8) -> Self {
                Self::wrapping_from(i128::from(code))
            }
            /// The code: the value's low `BITS` bits.
            pub fn code(self) -> u8 {
                (self.0 as u8) & ((1 << $bits) - 1)
            }
        }
    };
}

small_int!(I4, i8, 4, true, "An int4 value, -8..=7.");
small_int!(U4, u8, 4, false, "A uint4 value, 0..=15.");
small_int!(I2, i8, 2, true, "An int2 value, -2..=1.");
small_int!(U2, u8, 2, false, "A uint2 value, 0..=3.");

/// Packs codes of `bits` bits (4 or 2), the first element in the lowest
/// bits of the first byte, as ONNX stores the 4- and 2-bit types.
pub fn pack(codes: impl ExactSizeIterator<Item = u8>, bits: u32) -> Vec<u8> {
    let per_byte = (8 / bits) as usize;
    let mut out = vec![0u8; codes.len().div_ceil(per_byte)];
    let mask = ((1u16 << bits) - 1) as u8;
    for (index, code) in codes.enumerate() {
        out[index / per_byte] |= (code & mask) << ((index % per_byte) as u32 * bits);
    }
    out
}

/// The first `n` codes of `bits` bits (4 or 2) packed as [`pack`] writes.
pub fn unpack(bytes: &[u8], n: usize, bits: u32) -> Vec<u8> {
    let per_byte = (8 / bits) as usize;
    let mask = ((1u16 << bits) - 1) as u8;
    (0..n).map(|index| (bytes[index / per_byte] >> ((index % per_byte) as u32 * bits)) & mask).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every finite non-negative value of a format, ascending, enumerated
    /// from the definition (subnormals `k * 2^(1-bias-m)`, normals
    /// `(2^m + k) * 2^(e-bias-m)`), with the top codes the format reserves
    /// left out, written without the module's decoder.
    fn finite_values(exp_bits: u32, man_bits: u32, bias: i32, reserved_top: u32) -> Vec<f64> {
        let mut values = Vec::new();
        for exp in 0..(1i32 << exp_bits) {
            for man in 0..(1i32 << man_bits) {
                let v = if exp == 0 {
                    f64::from(man) * 2f64.powi(1 - bias - man_bits as i32)
                } else {
                    f64::from((1 << man_bits) + man) * 2f64.powi(exp - bias - man_bits as i32)
                };
                values.push(v);
            }
        }
        values.truncate(values.len() - reserved_top as usize);
        values
    }

    /// (format, finite values, max, smallest subnormal).
    fn formats() -> Vec<(MiniFloat, Vec<f64>, f64, f64)> {
        vec![
            (E4M3FN, finite_values(4, 3, 7, 1), 448.0, 2f64.powi(-9)),
            (E4M3FNUZ, finite_values(4, 3, 8, 0), 240.0, 2f64.powi(-10)),
            (E5M2, finite_values(5, 2, 15, 4), 57344.0, 2f64.powi(-16)),
            (E5M2FNUZ, finite_values(5, 2, 16, 0), 57344.0, 2f64.powi(-17)),
            (E2M1, finite_values(2, 1, 1, 0), 6.0, 0.5),
        ]
    }

    #[test]
    fn every_code_decodes_to_its_value() {
        for (format, values, max, tiny) in formats() {
            assert_eq!(format.max(), max, "{format:?}");
            assert_eq!(values[1], tiny);
            assert_eq!(*values.last().unwrap(), max);
            let sign = format.sign_bit();
            for code in 0..=u8::MAX {
                let got = format.to_f64(code);
                let code = code & (sign | (sign - 1));
                let magnitude = usize::from(code & (sign - 1));
                let negative = code & sign != 0;
                let want = match format.specials {
                    Specials::Fnuz if code == sign => f64::NAN,
                    _ if magnitude >= values.len() => {
                        if format.specials == Specials::Ieee && magnitude == values.len() {
                            f64::INFINITY
                        } else {
                            f64::NAN
                        }
                    }
                    _ => values[magnitude],
                };
                let want = if negative { -want } else { want };
                assert!(
                    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan()),
                    "{format:?} {code:#04x}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn the_named_special_codes() {
        assert!(E4M3FN.to_f64(0x7f).is_nan() && E4M3FN.to_f64(0xff).is_nan());
        assert_eq!(E4M3FN.to_f64(0x7e), 448.0);
        assert_eq!(E4M3FN.to_f64(0x80).to_bits(), (-0f64).to_bits());
        assert!(E4M3FNUZ.to_f64(0x80).is_nan() && E5M2FNUZ.to_f64(0x80).is_nan());
        assert_eq!(E4M3FNUZ.to_f64(0xff), -240.0);
        assert_eq!(E5M2.to_f64(0x7c), f64::INFINITY);
        assert_eq!(E5M2.to_f64(0xfc), f64::NEG_INFINITY);
        assert!(E5M2.to_f64(0x7d).is_nan());
        assert_eq!(E2M1.to_f64(0x0f), -6.0);
        assert_eq!(E2M1.to_f64(0x01), 0.5);
    }

    #[test]
    fn every_value_round_trips_and_ties_go_to_even() {
        for (format, values, max, _) in formats() {
            for (index, &v) in values.iter().enumerate() {
                for (sign, value) in [(1.0, v), (-1.0, -v)] {
                    let code = format.from_f64(value, false);
                    let back = format.to_f64(code);
                    let want = if format.specials == Specials::Fnuz && v == 0.0 { 0.0 } else { value };
                    assert_eq!(back.to_bits(), want.to_bits(), "{format:?} {value}");
                    let Some(&next) = values.get(index + 1) else { continue };
                    let mid = (v + next) / 2.0;
                    // Even: the lower of two neighbours is even when its
                    // index (its code) is.
                    let even = if index % 2 == 0 { v } else { next };
                    let to = |x: f64| format.to_f64(format.from_f64(sign * x, false)).abs();
                    assert_eq!(to(mid), even, "{format:?} tie {mid}");
                    let step = (next - v) / 1024.0;
                    assert_eq!(to(mid - step), v, "{format:?} below {mid}");
                    assert_eq!(to(mid + step), next, "{format:?} above {mid}");
                }
            }
            // Just above the max: rounds down to it, or overflows past the
            // midpoint to the next (missing) value.
            let step = max - values[values.len() - 2];
            assert_eq!(format.to_f64(format.from_f64(max + step / 4.0, false)), max);
            let over = format.to_f64(format.from_f64(max + step, false));
            let over_saturated = format.to_f64(format.from_f64(max + step, true));
            assert_eq!(over_saturated, max);
            match format.specials {
                Specials::Ieee => assert_eq!(over, f64::INFINITY),
                Specials::None => assert_eq!(over, max),
                _ => assert!(over.is_nan()),
            }
        }
    }

    /// Bit patterns `ml_dtypes` (which the ONNX reference uses) gives for
    /// `[nan, -nan, inf, -inf, -0.0, 1e6, -1e6]` without saturation, and
    /// the saturating results of the Cast schema's table.
    #[test]
    fn special_values_follow_the_cast_tables() {
        let inputs = [f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, 1e6, -1e6];
        let cases: [(MiniFloat, [u8; 7], [u8; 7]); 4] = [
            (E4M3FN, [0x7f, 0xff, 0x7f, 0xff, 0x80, 0x7f, 0xff], [0x7f, 0xff, 0x7e, 0xfe, 0x80, 0x7e, 0xfe]),
            (E4M3FNUZ, [0x80, 0x80, 0x80, 0x80, 0, 0x80, 0x80], [0x80, 0x80, 0x7f, 0xff, 0, 0x7f, 0xff]),
            (E5M2, [0x7e, 0xfe, 0x7c, 0xfc, 0x80, 0x7c, 0xfc], [0x7e, 0xfe, 0x7b, 0xfb, 0x80, 0x7b, 0xfb]),
            (E5M2FNUZ, [0x80, 0x80, 0x80, 0x80, 0, 0x80, 0x80], [0x80, 0x80, 0x7f, 0xff, 0, 0x7f, 0xff]),
        ];
        for (format, plain, saturated) in cases {
            let got: Vec<u8> = inputs.iter().map(|&x| format.from_f64(x, false)).collect();
            assert_eq!(got, plain, "{format:?}");
            let got: Vec<u8> = inputs.iter().map(|&x| format.from_f64(x, true)).collect();
            assert_eq!(got, saturated, "{format:?} saturating");
        }
        // float4e2m1 (ml_dtypes): nan, -nan, inf, 2.7, -2.7, 0.25, 0.75,
        // 1.25, 5.0, 7.0, -0.0.
        let inputs = [f64::NAN, -f64::NAN, f64::INFINITY, 2.7, -2.7, 0.25, 0.75, 1.25, 5.0, 7.0, -0.0];
        let got: Vec<u8> = inputs.iter().map(|&x| E2M1.from_f64(x, false)).collect();
        assert_eq!(got, [8, 0, 7, 5, 13, 0, 2, 2, 6, 7, 8]);
        // Negative values too small for the fnuz types become +0.
        assert_eq!(E4M3FNUZ.from_f64(-1e-7, true), 0);
        assert_eq!(E4M3FN.from_f64(-1e-7, true), 0x80);
    }

    #[test]
    fn small_ints_wrap_and_pack() {
        assert_eq!(I4::wrapping_from(-9), I4(7));
        assert_eq!(I4::wrapping_from(8), I4(-8));
        assert_eq!(U4::wrapping_from(-1), U4(15));
        assert_eq!(I2::wrapping_from(2), I2(-2));
        assert_eq!(U2::wrapping_from(-3), U2(1));
        assert_eq!(I4(-1).code(), 0xf);
        assert_eq!(I4::from_code(0x8), I4(-8));
        assert_eq!(pack([1u8, 2, 3].into_iter(), 4), [0x21, 0x03]);
        assert_eq!(pack([1u8, 2, 3, 0, 1].into_iter(), 2), [0b0011_1001, 0b01]);
        assert_eq!(unpack(&[0x21, 0x03], 3, 4), [1, 2, 3]);
        assert_eq!(unpack(&[0b0011_1001, 0b01], 5, 2), [1, 2, 3, 0, 1]);
    }

    #[test]
    fn float8e8m0_follows_the_reference_rounding() {
        use super::{E8M0Rounding as R, F8E8M0};
        // Every code's value: 2^(code - 127), 255 NaN.
        assert_eq!(F8E8M0(127).to_f64(), 1.0);
        assert_eq!(F8E8M0(0).to_f64(), 2f64.powi(-127));
        assert_eq!(F8E8M0(254).to_f64(), 2f64.powi(127));
        assert!(F8E8M0(255).to_f64().is_nan());
        // Powers of two are exact in every mode.
        for code in 1..=254u8 {
            let value = F8E8M0(code).to_f64();
            for mode in [R::Up, R::Down, R::Nearest] {
                assert_eq!(F8E8M0::from_f64(value, true, mode), F8E8M0(code), "{value} {mode:?}");
            }
        }
        // 3 = 1.5 * 2^1: up 4, down 2, nearest 4 (a tie away from zero);
        // 2.5 = 1.25 * 2^1: up 4, down 2, nearest 2.
        let code = |v: f64, mode| F8E8M0::from_f64(v, true, mode).0;
        assert_eq!([code(3.0, R::Up), code(3.0, R::Down), code(3.0, R::Nearest)], [129, 128, 129]);
        assert_eq!([code(2.5, R::Up), code(2.5, R::Down), code(2.5, R::Nearest)], [129, 128, 128]);
        // Saturation at 2^127; without it the carry gives NaN.
        assert_eq!(code(3.0e38, R::Up), 254);
        assert_eq!(F8E8M0::from_f64(3.0e38, false, R::Up).0, 255);
        // 2^-127 (code 0) is a float32 subnormal: the reference reads its
        // exponent field (0) and rounds by its mantissa bits.
        let bottom = F8E8M0(0).to_f64();
        assert_eq!([code(bottom, R::Up), code(bottom, R::Down), code(bottom, R::Nearest)], [1, 0, 0]);
        // Specials: NaN and inf give NaN, zero code 0.
        assert_eq!([code(f64::NAN, R::Up), code(f64::INFINITY, R::Up), code(0.0, R::Up)], [255, 255, 0]);
    }
}
