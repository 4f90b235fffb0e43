//! Number words → integers: Swahili (`elfu mbili na mia tano`), Sheng (`thao mbili`, `soo tano`,
//! `ngiri`) and English (`two thousand five hundred`).
//!
//! Swahili reads largest magnitude first and joins groups with `na`: the multiplier *follows* its
//! magnitude word (`elfu mbili` = 2 × 1000), and `kumi na mbili` binds as 12 inside a multiplier
//! (`elfu kumi na mbili` = 12 000, not 10 002). A digit may stand in for the multiplier
//! (`elfu 2`, `soo 5`). `na nusu` after a group adds half of that group's magnitude
//! (`elfu moja na nusu` = 1 500); `nusu` alone is not a number.
//!
//! The functions work on already lower-cased word tokens and never panic.

/// 1–9 (Swahili and English).
pub(crate) fn unit(w: &str) -> Option<u64> {
    Some(match w {
        "moja" | "one" => 1,
        "mbili" | "two" => 2,
        "tatu" | "three" => 3,
        "nne" | "four" => 4,
        "tano" | "five" => 5,
        "sita" | "six" => 6,
        "saba" | "seven" => 7,
        "nane" | "eight" => 8,
        "tisa" | "nine" => 9,
        _ => return None,
    })
}

/// 10, 20 … 90 (Swahili) — English teens and tens are handled by [`en_small`].
pub(crate) fn sw_tens(w: &str) -> Option<u64> {
    Some(match w {
        "kumi" => 10,
        "ishirini" => 20,
        "thelathini" | "thelasini" => 30,
        "arobaini" | "arubaini" => 40,
        "hamsini" | "hamsin" => 50,
        "sitini" => 60,
        "sabini" => 70,
        "themanini" => 80,
        "tisini" => 90,
        _ => return None,
    })
}

/// Swahili/Sheng magnitude words that take a following multiplier.
fn sw_big(w: &str) -> Option<u64> {
    Some(match w {
        "milioni" => 1_000_000,
        "laki" => 100_000,
        "elfu" | "thao" | "thaos" | "ngiri" => 1_000,
        _ => return None,
    })
}

fn sw_hundred(w: &str) -> bool {
    matches!(w, "mia" | "soo")
}

fn en_small(w: &str) -> Option<u64> {
    if is_en_unit(w) {
        return unit(w);
    }
    Some(match w {
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "thirteen" => 13,
        "fourteen" => 14,
        "fifteen" => 15,
        "sixteen" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        "twenty" => 20,
        "thirty" => 30,
        "forty" | "fourty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        _ => return None,
    })
}

/// Is `w` a word that can start or continue a Swahili number phrase?
pub(crate) fn is_sw_number_word(w: &str) -> bool {
    unit(w).is_some() && !is_en_unit(w) || sw_tens(w).is_some() || sw_big(w).is_some() || sw_hundred(w)
}

fn is_en_unit(w: &str) -> bool {
    matches!(w, "one" | "two" | "three" | "four" | "five" | "six" | "seven" | "eight" | "nine")
}

fn sw_unit(w: &str) -> Option<u64> {
    if is_en_unit(w) {
        None
    } else {
        unit(w)
    }
}

/// A small multiplier: digits (`2`, `2.5`), a Swahili unit, or `tens [na unit]`.
fn below_100(t: &[&str], i: usize) -> Option<(f64, usize)> {
    let w = *t.get(i)?;
    if let Some(v) = sw_tens(w) {
        if t.get(i + 1) == Some(&"na") {
            if let Some(u) = t.get(i + 2).and_then(|w| sw_unit(w)) {
                return Some(((v + u) as f64, i + 3));
            }
        }
        return Some((v as f64, i + 1));
    }
    if let Some(u) = sw_unit(w) {
        return Some((u as f64, i + 1));
    }
    if !w.is_empty() && w.len() <= 6 && w.bytes().all(|b| b.is_ascii_digit() || b == b'.') && w.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        if let Ok(v) = w.parse::<f64>() {
            if v > 0.0 && v < 1000.0 {
                return Some((v, i + 1));
            }
        }
    }
    None
}

/// `mia X [na Y]` or a [`below_100`] value.
fn below_1000(t: &[&str], i: usize) -> Option<(f64, usize)> {
    let w = *t.get(i)?;
    if sw_hundred(w) {
        let (mult, mut j) = below_100(t, i + 1).unwrap_or((1.0, i + 1));
        let mut v = 100.0 * mult;
        if t.get(j) == Some(&"na") {
            if let Some(w2) = t.get(j + 1) {
                if sw_tens(w2).is_some() || sw_unit(w2).is_some() {
                    if let Some((r, j2)) = below_100(t, j + 1) {
                        v += r;
                        j = j2;
                    }
                }
            }
        }
        return Some((v, j));
    }
    below_100(t, i)
}

/// Parse a Swahili/Sheng number phrase starting at `t[i]`.
///
/// Returns `(value, index after the phrase, has_magnitude)` where `has_magnitude` tells whether a
/// word like `mia`/`elfu`/`laki`/`thao`/`soo` took part (a bare `tano` is rarely an amount).
pub(crate) fn parse_sw(t: &[&str], i: usize) -> Option<(u64, usize, bool)> {
    let mut total = 0.0f64;
    let mut j = i;
    let mut any = false;
    let mut has_mag = false;
    let mut last_mag = 0.0f64;
    while let Some(&w) = t.get(j) {
        if let Some(m) = sw_big(w) {
            let (mult, j2) = below_1000(t, j + 1).unwrap_or((1.0, j + 1));
            total += m as f64 * mult;
            last_mag = m as f64;
            j = j2;
            has_mag = true;
        } else if sw_hundred(w) {
            let (v, j2) = below_1000(t, j)?;
            total += v;
            last_mag = 100.0;
            j = j2;
            has_mag = true;
        } else if sw_tens(w).is_some() || sw_unit(w).is_some() {
            if any && !has_mag {
                break;
            }
            let (v, j2) = below_100(t, j)?;
            total += v;
            last_mag = 1.0;
            j = j2;
        } else if w == "nusu" && any && last_mag >= 100.0 {
            total += last_mag / 2.0;
            j += 1;
            break;
        } else {
            break;
        }
        any = true;
        // "elfu tatu mia tano": a smaller magnitude may follow without "na".
        if let Some(next) = t.get(j) {
            if (sw_hundred(next) && last_mag > 100.0) || sw_big(next).is_some_and(|m| (m as f64) < last_mag) {
                continue;
            }
        }
        if t.get(j) == Some(&"na") {
            if let Some(next) = t.get(j + 1) {
                if is_sw_number_word(next) || (*next == "nusu" && last_mag >= 100.0) {
                    j += 1;
                    continue;
                }
            }
        }
        break;
    }
    if !any || !(1.0..=1e12).contains(&total) {
        return None;
    }
    Some((total.round() as u64, j, has_mag))
}

/// Parse an English number phrase (`two thousand five hundred`, `a thousand`).
/// Returns `(value, index after, has_magnitude)`.
pub(crate) fn parse_en(t: &[&str], i: usize) -> Option<(u64, usize, bool)> {
    let mut total: u64 = 0;
    let mut current: u64 = 0;
    let mut j = i;
    let mut any = false;
    let mut has_mag = false;
    while let Some(w) = t.get(j) {
        let w = *w;
        if let Some(v) = en_small(w) {
            current = current.saturating_add(v);
            any = true;
        } else if w == "a" && j == i && matches!(t.get(j + 1), Some(&("hundred" | "thousand" | "million"))) {
            current = 1;
            any = true;
        } else if w == "hundred" && any {
            current = current.max(1).saturating_mul(100);
            has_mag = true;
        } else if (w == "thousand" || w == "million") && any {
            let m = if w == "thousand" { 1_000 } else { 1_000_000 };
            total = total.saturating_add(current.max(1).saturating_mul(m));
            current = 0;
            has_mag = true;
        } else if w == "and" && any {
            match t.get(j + 1) {
                Some(n) if en_small(n).is_some() => {}
                _ => break,
            }
        } else {
            break;
        }
        j += 1;
    }
    let v = total.saturating_add(current);
    if !any || v == 0 {
        return None;
    }
    Some((v, j, has_mag))
}

/// A small count (`tatu`, `3`, `three`, `kumi na mbili`) used for durations like `siku tatu`.
pub(crate) fn small_count(t: &[&str], i: usize) -> Option<(u64, usize)> {
    let w = *t.get(i)?;
    if let Ok(n) = w.parse::<u64>() {
        return (n > 0 && n < 400).then_some((n, i + 1));
    }
    if matches!(w, "a" | "one" | "moja") {
        return Some((1, i + 1));
    }
    if let Some((v, j)) = below_100(t, i) {
        return Some((v as u64, j));
    }
    en_small(w).map(|v| (v, i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sw(s: &str) -> Option<u64> {
        let t: Vec<&str> = s.split_whitespace().collect();
        parse_sw(&t, 0).map(|(v, _, _)| v)
    }
    fn en(s: &str) -> Option<u64> {
        let t: Vec<&str> = s.split_whitespace().collect();
        parse_en(&t, 0).map(|(v, _, _)| v)
    }

    #[test]
    fn swahili_compounds() {
        assert_eq!(sw("elfu mbili na mia tano"), Some(2500));
        assert_eq!(sw("mia tatu na hamsini"), Some(350));
        assert_eq!(sw("elfu kumi na mbili"), Some(12000));
        assert_eq!(sw("laki moja na elfu ishirini"), Some(120000));
        assert_eq!(sw("elfu moja na nusu"), Some(1500));
        assert_eq!(sw("mia tano"), Some(500));
        assert_eq!(sw("elfu sita"), Some(6000));
        assert_eq!(sw("elfu"), Some(1000));
        assert_eq!(sw("laki tano"), Some(500000));
        assert_eq!(sw("milioni moja"), Some(1_000_000));
        assert_eq!(sw("elfu tatu mia tano"), Some(3500));
        assert_eq!(sw("mia moja na ishirini na tano"), Some(125));
    }

    #[test]
    fn sheng_and_digits() {
        assert_eq!(sw("thao mbili"), Some(2000));
        assert_eq!(sw("soo tano"), Some(500));
        assert_eq!(sw("ngiri tatu"), Some(3000));
        assert_eq!(sw("elfu 2"), Some(2000));
        assert_eq!(sw("elfu 2.5"), Some(2500));
        assert_eq!(sw("mia 5"), Some(500));
    }

    #[test]
    fn half_alone_is_not_a_number() {
        assert_eq!(sw("nusu"), None);
        assert_eq!(sw("na nusu"), None);
    }

    #[test]
    fn magnitude_flag() {
        let t = ["tano"];
        assert_eq!(parse_sw(&t, 0), Some((5, 1, false)));
        let t = ["elfu", "tano", "kesho"];
        assert_eq!(parse_sw(&t, 0), Some((5000, 2, true)));
    }

    #[test]
    fn english_words() {
        assert_eq!(en("two thousand five hundred"), Some(2500));
        assert_eq!(en("five hundred"), Some(500));
        assert_eq!(en("a thousand"), Some(1000));
        assert_eq!(en("one thousand and fifty"), Some(1050));
        assert_eq!(en("twelve thousand"), Some(12000));
        assert_eq!(en("and"), None);
        assert_eq!(en("million"), None);
        assert_eq!(en("thousand"), None);
        assert_eq!(en("mbili"), None);
    }

    #[test]
    fn counts() {
        let t = ["tatu"];
        assert_eq!(small_count(&t, 0), Some((3, 1)));
        let t = ["3"];
        assert_eq!(small_count(&t, 0), Some((3, 1)));
        let t = ["two"];
        assert_eq!(small_count(&t, 0), Some((2, 1)));
    }
}
