//! The shipped co-sell solution (`mappings/`, without its tests), compiled into
//! the binary so that `cosync demo` needs nothing but the binary.

/// Relative path and text of every file of the shipped project.
pub const FILES: &[(&str, &str)] = &[
    (
        "connectors/dynamics365.yaml",
        include_str!("../../mappings/connectors/dynamics365.yaml"),
    ),
    (
        "connectors/partner-center.yaml",
        include_str!("../../mappings/connectors/partner-center.yaml"),
    ),
    (
        "connectors/salesforce.yaml",
        include_str!("../../mappings/connectors/salesforce.yaml"),
    ),
    ("cosync.yaml", include_str!("../../mappings/cosync.yaml")),
    (
        "flows/dynamics365-to-partner-center.yaml",
        include_str!("../../mappings/flows/dynamics365-to-partner-center.yaml"),
    ),
    (
        "flows/partner-center-to-dynamics365.yaml",
        include_str!("../../mappings/flows/partner-center-to-dynamics365.yaml"),
    ),
    (
        "flows/partner-center-to-salesforce.yaml",
        include_str!("../../mappings/flows/partner-center-to-salesforce.yaml"),
    ),
    (
        "flows/salesforce-to-partner-center.yaml",
        include_str!("../../mappings/flows/salesforce-to-partner-center.yaml"),
    ),
    (
        "flows/webhook-registration.yaml",
        include_str!("../../mappings/flows/webhook-registration.yaml"),
    ),
    (
        "mappings/referral-opportunity-dynamics365.yaml",
        include_str!("../../mappings/mappings/referral-opportunity-dynamics365.yaml"),
    ),
    (
        "mappings/referral-opportunity-salesforce.yaml",
        include_str!("../../mappings/mappings/referral-opportunity-salesforce.yaml"),
    ),
    (
        "value-maps/assistance-request-code-dynamics365.yaml",
        include_str!("../../mappings/value-maps/assistance-request-code-dynamics365.yaml"),
    ),
    (
        "value-maps/assistance-request-code-salesforce.yaml",
        include_str!("../../mappings/value-maps/assistance-request-code-salesforce.yaml"),
    ),
    (
        "value-maps/referral-status-dynamics365.yaml",
        include_str!("../../mappings/value-maps/referral-status-dynamics365.yaml"),
    ),
    (
        "value-maps/referral-status-salesforce.yaml",
        include_str!("../../mappings/value-maps/referral-status-salesforce.yaml"),
    ),
    (
        "value-maps/sales-stage-dynamics365.yaml",
        include_str!("../../mappings/value-maps/sales-stage-dynamics365.yaml"),
    ),
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_shipped_file_is_embedded() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
        let mut on_disk = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if path.file_name().is_some_and(|n| n != "tests") {
                        stack.push(path);
                    }
                } else if path.extension().is_some_and(|e| e == "yaml") {
                    let rel = path
                        .strip_prefix(&root)
                        .map(|p| p.to_string_lossy().replace('\\', "/"));
                    on_disk.extend(rel.ok());
                }
            }
        }
        on_disk.sort();
        let embedded: Vec<String> = super::FILES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(embedded, on_disk, "regenerate src/demo/embedded.rs");
    }
}
