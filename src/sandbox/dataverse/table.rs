//! One Dataverse table: rows by key, plus equality indexes that queries build on
//! first use (`$filter=column eq 'literal'`) and every write keeps current, so that
//! finding a row by a column value does not test every row.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;

use super::Row;
use super::schema::Attribute;

/// The rows of one entity, by key, with the equality indexes built so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    rows: BTreeMap<String, Row>,
    /// By attribute logical name.
    indexes: HashMap<&'static str, ColumnIndex>,
}

/// Row keys by the lowercase text a column compares as.
///
/// OData `eq` against a text or GUID literal matches a string value when both
/// lowercase forms are equal, and a number when the literal parses to it; no other
/// value (null, boolean, object) can match. So the rows that may match `column eq
/// 'x'` are `by_text["x".to_lowercase()]` plus `numbers`.
#[derive(Debug, Clone, Default)]
struct ColumnIndex {
    /// A lookup compares as its target id (`_name_value`).
    lookup: bool,
    by_text: HashMap<String, BTreeSet<String>>,
    numbers: BTreeSet<String>,
}

/// What an indexed column holds in one row.
enum Slot {
    Text(String),
    Number,
    Never,
}

impl ColumnIndex {
    fn slot(&self, name: &str, row: &Row) -> Slot {
        let stored = row.attributes.get(name);
        let value = if self.lookup {
            stored.and_then(|v| v.get("id"))
        } else {
            stored
        };
        match value {
            Some(Value::String(text)) => Slot::Text(text.to_lowercase()),
            Some(Value::Number(_)) => Slot::Number,
            _ => Slot::Never,
        }
    }

    fn add(&mut self, name: &str, id: &str, row: &Row) {
        match self.slot(name, row) {
            Slot::Text(text) => {
                self.by_text.entry(text).or_default().insert(id.to_owned());
            }
            Slot::Number => {
                self.numbers.insert(id.to_owned());
            }
            Slot::Never => {}
        }
    }

    fn remove(&mut self, name: &str, id: &str, row: &Row) {
        match self.slot(name, row) {
            Slot::Text(text) => {
                if let Some(ids) = self.by_text.get_mut(&text) {
                    ids.remove(id);
                    if ids.is_empty() {
                        self.by_text.remove(&text);
                    }
                }
            }
            Slot::Number => {
                self.numbers.remove(id);
            }
            Slot::Never => {}
        }
    }
}

impl Table {
    /// The row with this key.
    pub(crate) fn get(&self, id: &str) -> Option<&Row> {
        self.rows.get(id)
    }

    /// True when a row has this key.
    pub(crate) fn contains_key(&self, id: &str) -> bool {
        self.rows.contains_key(id)
    }

    /// Every row, in key order.
    pub(crate) fn values(&self) -> impl Iterator<Item = &Row> {
        self.rows.values()
    }

    /// How many rows there are.
    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when there is no row.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Stores a row (new or replacing), keeping the indexes current.
    pub(crate) fn insert(&mut self, id: String, row: Row) -> Option<Row> {
        for (name, index) in &mut self.indexes {
            if let Some(old) = self.rows.get(&id) {
                index.remove(name, &id, old);
            }
            index.add(name, &id, &row);
        }
        self.rows.insert(id, row)
    }

    /// Removes a row, keeping the indexes current.
    pub(crate) fn remove(&mut self, id: &str) -> Option<Row> {
        let row = self.rows.remove(id)?;
        for (name, index) in &mut self.indexes {
            index.remove(name, id, &row);
        }
        Some(row)
    }

    /// The rows that may satisfy `attribute eq literal` (a text or GUID literal;
    /// `numeric` when the literal is text that parses as a number), in key order:
    /// a superset of the matches, never missing one. The column's index is built
    /// on first use.
    pub(crate) fn candidates(
        &mut self,
        attribute: &'static Attribute,
        literal: &str,
        numeric: bool,
    ) -> Vec<&Row> {
        let rows = &self.rows;
        let index = self.indexes.entry(attribute.name).or_insert_with(|| {
            let mut index = ColumnIndex {
                lookup: attribute.kind.is_lookup(),
                ..ColumnIndex::default()
            };
            for (id, row) in rows {
                index.add(attribute.name, id, row);
            }
            index
        });
        let text = index.by_text.get(&literal.to_lowercase());
        let numbers = numeric.then_some(&index.numbers);
        let ids: BTreeSet<&String> = text
            .into_iter()
            .flatten()
            .chain(numbers.into_iter().flatten())
            .collect();
        ids.into_iter().filter_map(|id| rows.get(id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::sandbox::dataverse::schema;

    fn row(version: u64, attributes: Value) -> Row {
        Row {
            version,
            attributes: match attributes {
                Value::Object(map) => map,
                _ => Map::new(),
            },
        }
    }

    fn attribute(entity: &str, name: &str) -> &'static Attribute {
        schema::by_logical(entity)
            .and_then(|e| e.attribute(name))
            .unwrap_or_else(|| panic!("{entity}.{name} is in the schema"))
    }

    fn ids(table: &mut Table, attribute: &'static Attribute, literal: &str) -> Vec<String> {
        table
            .candidates(attribute, literal, false)
            .into_iter()
            .filter_map(|r| r.attributes.get("id").and_then(Value::as_str))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_index_follows_updates_deletes_and_upserts() {
        let name = attribute("opportunity", "name");
        let mut table = Table::default();
        table.insert("a".into(), row(1, json!({"id": "a", "name": "Alpha"})));
        table.insert("b".into(), row(2, json!({"id": "b", "name": "beta"})));
        // Built on first use, case-insensitive like Dataverse's comparison.
        assert_eq!(ids(&mut table, name, "ALPHA"), ["a"]);
        assert_eq!(ids(&mut table, name, "Beta"), ["b"]);
        // An update of the indexed column moves the row.
        table.insert("a".into(), row(3, json!({"id": "a", "name": "Beta"})));
        assert!(ids(&mut table, name, "alpha").is_empty());
        assert_eq!(ids(&mut table, name, "beta"), ["a", "b"]);
        // An update of another column leaves it where it is.
        table.insert(
            "b".into(),
            row(4, json!({"id": "b", "name": "beta", "description": "x"})),
        );
        assert_eq!(ids(&mut table, name, "BETA"), ["a", "b"]);
        // A delete removes it; an upsert of a new key adds it.
        assert!(table.remove("a").is_some());
        assert_eq!(ids(&mut table, name, "beta"), ["b"]);
        table.insert("c".into(), row(5, json!({"id": "c", "name": "BETA"})));
        assert_eq!(ids(&mut table, name, "beta"), ["b", "c"]);
        // A cleared column (null) can match no text.
        table.insert("c".into(), row(6, json!({"id": "c", "name": null})));
        assert_eq!(ids(&mut table, name, "beta"), ["b"]);
        assert!(table.remove("missing").is_none());
        assert_eq!(table.len(), 2);
    }

    #[test]
    fn lookups_are_indexed_by_target_id_and_numbers_are_candidates() {
        let customer = attribute("opportunity", "parentaccountid");
        let mut table = Table::default();
        table.insert(
            "a".into(),
            row(
                1,
                json!({"id": "a", "parentaccountid": {"id": "ABC", "entity": "account"}}),
            ),
        );
        table.insert(
            "b".into(),
            row(2, json!({"id": "b", "parentaccountid": null})),
        );
        assert_eq!(ids(&mut table, customer, "abc"), ["a"]);
        table.remove("a");
        assert!(ids(&mut table, customer, "abc").is_empty());

        let name = attribute("opportunity", "name");
        table.insert("n".into(), row(3, json!({"id": "n", "name": 42})));
        table.insert("t".into(), row(4, json!({"id": "t", "name": "42"})));
        let numeric: Vec<u64> = table
            .candidates(name, "42", true)
            .into_iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(numeric, [3, 4]);
        assert_eq!(ids(&mut table, name, "42"), ["t"]);
    }

    /// The candidates hold every row the filter itself matches (compared as Dataverse
    /// does: case-insensitive, numbers against numeric text).
    #[test]
    fn candidates_never_miss_a_match_of_the_filter() {
        let name = attribute("opportunity", "name");
        let values = [
            json!("Alpha"),
            json!("ALPHA"),
            json!("alpha "),
            json!("Straße"),
            json!("STRASSE"),
            json!("İx"),
            json!("i̇x"),
            json!(42),
            json!(42.0),
            json!("42"),
            json!(true),
            json!(null),
            json!({"id": "alpha"}),
        ];
        let mut table = Table::default();
        for (i, value) in values.iter().enumerate() {
            let id = format!("r{i:02}");
            table.insert(id.clone(), row(i as u64, json!({"id": id, "name": value})));
        }
        for literal in [
            "alpha", "ALPHA", "straße", "strasse", "i̇x", "İX", "42", "42.0", "x",
        ] {
            let text = format!("name eq '{literal}'");
            let filter = crate::sandbox::odata::parse_filter(&text)
                .unwrap_or_else(|e| panic!("{text}: {e}"));
            let numeric = literal.parse::<f64>().is_ok();
            let candidates: Vec<u64> = table
                .candidates(name, literal, numeric)
                .into_iter()
                .map(|r| r.version)
                .collect();
            for row in table.values() {
                let json = json!({"name": row.attributes.get("name")});
                if filter.matches(&json, true) {
                    assert!(candidates.contains(&row.version), "{text} misses {json}");
                }
            }
        }
    }
}
