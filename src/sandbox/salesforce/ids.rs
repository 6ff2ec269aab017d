//! Salesforce record ids: 15 characters (key prefix, pod, record number in base 62)
//! plus the 3-character case checksum that makes the 18-character form.

/// The sandbox org's id.
pub const ORGANIZATION_ID: &str = "00D5g00000CoSyOEAV";
/// The integration (run-as) user the API acts as.
pub const INTEGRATION_USER_ID: &str = "0055g00000CoSyAAAV";
/// The person whose edits the admin API makes.
pub const SANDBOX_USER_ID: &str = "0055g00000CoSyUAAV";

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const CHECKSUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ012345";

/// The 3-character checksum suffix of a 15-character id.
pub(crate) fn checksum(id15: &str) -> String {
    id15.as_bytes()
        .chunks(5)
        .take(3)
        .map(|chunk| {
            let flags = chunk
                .iter()
                .enumerate()
                .filter(|(_, c)| c.is_ascii_uppercase())
                .fold(0usize, |acc, (i, _)| acc | (1 << i));
            char::from(CHECKSUM[flags])
        })
        .collect()
}

/// A new 18-character id with the key prefix and record number.
pub(crate) fn new_id(prefix: &str, number: u64) -> String {
    let mut digits = Vec::new();
    let mut n = number;
    while n > 0 {
        digits.push(BASE62[(n % 62) as usize]);
        n /= 62;
    }
    while digits.len() < 9 {
        digits.push(b'0');
    }
    digits.truncate(9);
    digits.reverse();
    let id15 = format!("{prefix}5g0{}", String::from_utf8_lossy(&digits));
    format!("{id15}{}", checksum(&id15))
}

/// The 18-character form of a 15- or 18-character id, if it is well formed.
pub(crate) fn normalize(id: &str) -> Option<String> {
    if !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    match id.len() {
        15 => Some(format!("{id}{}", checksum(id))),
        18 => Some(id.to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_length_and_checksum() {
        let id = new_id("006", 1);
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("0065g"));
        assert_eq!(&id[15..], checksum(&id[..15]));
        assert_eq!(normalize(&id[..15]), Some(id.clone()));
        assert_ne!(new_id("006", 62), new_id("006", 61));
        for constant in [ORGANIZATION_ID, INTEGRATION_USER_ID, SANDBOX_USER_ID] {
            assert_eq!(&constant[15..], checksum(&constant[..15]));
        }
        assert_eq!(normalize("abc"), None);
    }
}
