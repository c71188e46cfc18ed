//! Numbers for people: byte counts in binary units.

/// `bytes` in the largest binary unit that keeps the number at least 1, e.g. `1.50 MiB`.
pub fn bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// `bytes` in a binary unit followed by the exact count, e.g. `1.50 MiB (1572864 bytes)`.
pub fn bytes_exact(count: u64) -> String {
    if count < 1024 {
        bytes(count)
    } else {
        format!("{} ({count} bytes)", bytes(count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1024), "1.00 KiB");
        assert_eq!(bytes(3 << 19), "1.50 MiB");
        assert_eq!(bytes(u64::MAX), "16.00 EiB");
        assert_eq!(bytes_exact(4096), "4.00 KiB (4096 bytes)");
        assert_eq!(bytes_exact(5), "5 B");
    }
}
