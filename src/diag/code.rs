//! Stable diagnostic codes. Each code names one rule; docs, tests and CI scripts
//! may rely on the spelling.

use serde::Serialize;

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, )*) => {
        /// The stable code of a diagnostic.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code.
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The code's stable spelling (`unknown-key`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Code::$variant => $name, )*
                }
            }
        }
    };
}

codes! {
    /// A file or folder could not be read.
    Io = "io",
    /// A file is not valid UTF-8.
    NotUtf8 = "not-utf8",
    /// A file is larger than cosync accepts.
    FileTooLarge = "file-too-large",
    /// A file holds no YAML document.
    EmptyFile = "empty-file",
    /// A file holds more than one YAML document.
    MultipleDocuments = "multiple-documents",
    /// YAML syntax error.
    YamlSyntax = "yaml-syntax",
    /// A tab character used for indentation.
    YamlTab = "yaml-tab",
    /// The same key twice in one mapping.
    DuplicateKey = "duplicate-key",
    /// Aliases expand past the safety limit (an alias bomb).
    AliasLimit = "alias-limit",
    /// A file whose top-level key names no cosync file kind.
    UnknownFileKind = "unknown-file-kind",
    /// A key the schema does not allow here.
    UnknownKey = "unknown-key",
    /// A required key is missing.
    MissingKey = "missing-key",
    /// A value of the wrong type.
    WrongType = "wrong-type",
    /// A value outside the allowed set.
    InvalidValue = "invalid-value",
    /// A step mapping with no (or several) step kind keys.
    UnknownStepKind = "unknown-step-kind",
    /// Any other schema violation.
    Schema = "schema",
    /// Two definitions of the same kind share a name.
    DuplicateName = "duplicate-name",
    /// A reference to a connector no file defines.
    UnknownConnector = "unknown-connector",
    /// A reference to an entity the connector does not define.
    UnknownEntity = "unknown-entity",
    /// A field the entity does not define.
    UnknownField = "unknown-field",
    /// A reference to an operation the connector does not offer.
    UnknownOperation = "unknown-operation",
    /// A reference to a mapping table no file defines.
    UnknownMapping = "unknown-mapping",
    /// A reference to a value map no file defines.
    UnknownValueMap = "unknown-value-map",
    /// A test file naming a flow no file defines.
    UnknownFlow = "unknown-flow",
    /// A reference to a step id the flow does not define.
    UnknownStep = "unknown-step",
    /// A reference to an environment the project does not define.
    UnknownEnvironment = "unknown-environment",
    /// Two steps of one flow share an id.
    DuplicateStepId = "duplicate-step-id",
    /// A step id or variable that shadows a predefined name.
    ReservedName = "reserved-name",
    /// A step output read before the step runs.
    StepUsedBeforeDefined = "step-used-before-defined",
    /// A step output read outside the block that defines it.
    StepOutOfScope = "step-out-of-scope",
    /// A template or expression reads a variable that is never declared.
    UndeclaredVariable = "undeclared-variable",
    /// A JSONPath that does not parse.
    InvalidJsonpath = "invalid-jsonpath",
    /// A template that does not parse.
    InvalidTemplate = "invalid-template",
    /// An expression that does not parse.
    InvalidExpression = "invalid-expression",
    /// A value map that misses values of the enumeration it maps.
    ValueMapIncomplete = "value-map-incomplete",
    /// A value map whose reverse direction is ambiguous.
    ValueMapAmbiguous = "value-map-ambiguous",
    /// A two-way mapping row that cannot be reversed.
    IrreversibleRow = "irreversible-row",
    /// A mapping row that is inconsistent (no source, wrong arity, ...).
    InvalidRow = "invalid-row",
    /// A secret written inline instead of as `${env:..}` / `${file:..}`.
    InlineSecret = "inline-secret",
    /// A step that can never run.
    UnreachableStep = "unreachable-step",
    /// A flow with no trigger.
    MissingTrigger = "missing-trigger",
    /// A step whose target side cannot be inferred.
    AmbiguousTarget = "ambiguous-target",
    /// A step that needs inputs it was not given (no values, no mapping).
    InvalidStep = "invalid-step",
    /// A malformed `${env:..}` / `${file:..}` reference.
    InvalidReference = "invalid-reference",
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            let s = code.as_str();
            assert!(seen.insert(s), "duplicate code {s}");
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
            );
        }
    }
}
