//! How much a region reserves when it outgrows its reservation.

use crate::{PAGE_SIZE, round_up_to_page};

/// One gibibyte.
const GIB: u64 = 1 << 30;

/// How much a growing region reserves once its length passes its reservation.
///
/// Every policy reserves at least the needed length rounded up to a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GrowthPolicy {
    /// Reserve exactly the needed length, rounded up to a page.
    Exact,
    /// Grow the reservation by `percent` percent of itself, by at most
    /// `max_step` bytes per growth (rounded down to a page, at least a page).
    Geometric {
        /// Growth per step in percent of the current reservation.
        percent: u64,
        /// Upper bound of one growth step in bytes.
        max_step: u64,
    },
    /// Double while the reservation is small, but add at most `max_step`
    /// bytes per growth, unless `large_percent` percent of the reservation
    /// is more: small regions double, large ones grow by a fixed fraction
    /// so that copying a moved region stays proportional to its size.
    Tiered {
        /// Upper bound of a doubling step in bytes.
        max_step: u64,
        /// Growth per step in percent for reservations past `max_step * 100 / large_percent`.
        large_percent: u64,
    },
}

impl GrowthPolicy {
    /// The default: double, adding at most 1 GiB per step, but at least
    /// half the reservation (so regions past 2 GiB grow by 50%).
    pub const DEFAULT: GrowthPolicy = GrowthPolicy::Tiered {
        max_step: GIB,
        large_percent: 50,
    };

    /// The reservation for a region holding `reserved` bytes that needs
    /// `needed` bytes (`needed` page-aligned and larger than `reserved`).
    /// Never less than `needed`; saturates instead of overflowing.
    pub fn next_reserved(&self, reserved: u64, needed: u64) -> u64 {
        match *self {
            GrowthPolicy::Exact => needed,
            GrowthPolicy::Geometric { percent, max_step } => grown(
                reserved,
                percent_of(reserved, percent).min(max_step),
                needed,
            ),
            GrowthPolicy::Tiered {
                max_step,
                large_percent,
            } => {
                let step = reserved
                    .min(max_step)
                    .max(percent_of(reserved, large_percent));
                grown(reserved, step, needed)
            }
        }
    }

    /// Parses a policy name: `exact`, `double` (uncapped), `double-cap-<N>m`
    /// or `double-cap-<N>g` (doubling capped at N MiB or GiB per step),
    /// `grow-<P>` (P percent per step, capped at 1 GiB), or
    /// `tiered-<N>g-<P>` (doubling capped at N GiB per step, but at least P
    /// percent).
    pub fn from_name(name: &str) -> Option<GrowthPolicy> {
        if name == "exact" {
            return Some(GrowthPolicy::Exact);
        }
        if name == "double" {
            return Some(GrowthPolicy::Geometric {
                percent: 100,
                max_step: u64::MAX,
            });
        }
        if let Some(cap) = name.strip_prefix("double-cap-") {
            let (number, unit) = cap.split_at(cap.len().checked_sub(1)?);
            let unit = match unit {
                "m" => 1 << 20,
                "g" => GIB,
                _ => return None,
            };
            let max_step = number.parse::<u64>().ok()?.checked_mul(unit)?;
            return Some(GrowthPolicy::Geometric {
                percent: 100,
                max_step,
            });
        }
        if let Some(rest) = name.strip_prefix("tiered-") {
            let (cap, percent) = rest.split_once('-')?;
            let max_step = cap
                .strip_suffix('g')?
                .parse::<u64>()
                .ok()?
                .checked_mul(GIB)?;
            let large_percent = percent.parse::<u64>().ok()?;
            return Some(GrowthPolicy::Tiered {
                max_step,
                large_percent,
            });
        }
        let percent = name.strip_prefix("grow-")?.parse::<u64>().ok()?;
        Some(GrowthPolicy::Geometric {
            percent,
            max_step: GIB,
        })
    }
}

/// `percent` percent of `reserved`, saturating.
fn percent_of(reserved: u64, percent: u64) -> u64 {
    let step = u128::from(reserved) * u128::from(percent) / 100;
    u64::try_from(step).unwrap_or(u64::MAX)
}

/// `reserved + step`, the step rounded down to a page (at least one page),
/// never less than `needed`; `needed` when the sum overflows.
fn grown(reserved: u64, step: u64, needed: u64) -> u64 {
    let step = (step & !(PAGE_SIZE - 1)).max(PAGE_SIZE);
    reserved
        .checked_add(step)
        .and_then(round_up_to_page)
        .unwrap_or(needed)
        .max(needed)
}

impl Default for GrowthPolicy {
    fn default() -> Self {
        GrowthPolicy::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_doubles_small_and_grows_large_by_half() {
        let policy = GrowthPolicy::DEFAULT;
        assert_eq!(
            policy.next_reserved(PAGE_SIZE, 2 * PAGE_SIZE),
            2 * PAGE_SIZE
        );
        assert_eq!(
            policy.next_reserved(8 * PAGE_SIZE, 9 * PAGE_SIZE),
            16 * PAGE_SIZE
        );
        assert_eq!(policy.next_reserved(GIB, GIB + PAGE_SIZE), 2 * GIB);
        assert_eq!(policy.next_reserved(3 * GIB / 2, 2 * GIB), 5 * GIB / 2);
        assert_eq!(policy.next_reserved(4 * GIB, 4 * GIB + PAGE_SIZE), 6 * GIB);
        assert_eq!(
            policy.next_reserved(PAGE_SIZE, 100 * PAGE_SIZE),
            100 * PAGE_SIZE
        );
    }

    #[test]
    fn capped_doubling_adds_at_most_the_cap() {
        let policy = GrowthPolicy::from_name("double-cap-1g").expect("valid name");
        assert_eq!(
            policy.next_reserved(PAGE_SIZE, 2 * PAGE_SIZE),
            2 * PAGE_SIZE
        );
        assert_eq!(
            policy.next_reserved(8 * PAGE_SIZE, 9 * PAGE_SIZE),
            16 * PAGE_SIZE
        );
        assert_eq!(policy.next_reserved(4 * GIB, 4 * GIB + PAGE_SIZE), 5 * GIB);
        assert_eq!(
            policy.next_reserved(PAGE_SIZE, 100 * PAGE_SIZE),
            100 * PAGE_SIZE
        );
    }

    #[test]
    fn exact_reserves_what_is_needed() {
        assert_eq!(
            GrowthPolicy::Exact.next_reserved(PAGE_SIZE, 3 * PAGE_SIZE),
            3 * PAGE_SIZE
        );
    }

    #[test]
    fn saturates_near_the_top() {
        let top = !(PAGE_SIZE - 1);
        let needed = top - PAGE_SIZE;
        assert_eq!(
            GrowthPolicy::DEFAULT.next_reserved(needed - PAGE_SIZE, needed),
            needed
        );
    }

    #[test]
    fn names_parse() {
        assert_eq!(GrowthPolicy::from_name("exact"), Some(GrowthPolicy::Exact));
        assert_eq!(
            GrowthPolicy::from_name("double-cap-64m"),
            Some(GrowthPolicy::Geometric {
                percent: 100,
                max_step: 64 << 20
            })
        );
        assert_eq!(
            GrowthPolicy::from_name("grow-50"),
            Some(GrowthPolicy::Geometric {
                percent: 50,
                max_step: GIB
            })
        );
        assert_eq!(
            GrowthPolicy::from_name("tiered-1g-50"),
            Some(GrowthPolicy::DEFAULT)
        );
        assert_eq!(GrowthPolicy::from_name("tiered-1-50"), None);
        assert_eq!(GrowthPolicy::from_name("double-cap-"), None);
        assert_eq!(GrowthPolicy::from_name("nonsense"), None);
    }
}
