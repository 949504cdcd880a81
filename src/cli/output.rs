//! How operator commands print: JSON, or tables for a person.

use comfy_table::{Table, presets::UTF8_FULL_CONDENSED};
use serde_json::Value;

/// `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// Columns a record table shows at most.
const MAX_COLUMNS: usize = 8;

/// A table of `rows` (objects) with `columns`, each cell the field's scalar
/// text, `—` when absent.
pub fn table(columns: &[&str], rows: &[Value]) -> String {
    let mut table = Table::new();
    table.load_preset(UTF8_FULL_CONDENSED);
    table.set_header(columns.iter().copied());
    for row in rows {
        table.add_row(columns.iter().map(|c| cell(row.get(*c))));
    }
    table.to_string()
}

/// The scalar text of a field; lists and objects are summarised.
pub fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => format!("[{} items]", items.len()),
        Some(Value::Object(_)) => "{…}".into(),
        Some(other) => other.to_string(),
    }
}

/// The columns of a record list: the scalar fields of its first records, in
/// their order, at most [`MAX_COLUMNS`].
pub fn record_columns(records: &[Value]) -> Vec<String> {
    let mut columns: Vec<String> = Vec::new();
    for record in records.iter().take(20) {
        let Some(object) = record.as_object() else {
            continue;
        };
        for (name, value) in object {
            if columns.len() < MAX_COLUMNS
                && !value.is_array()
                && !value.is_object()
                && !columns.contains(name)
            {
                columns.push(name.clone());
            }
        }
    }
    columns
}

/// A JSON value as pretty text.
pub fn json(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn records_print_as_a_table_of_their_scalar_fields() {
        let records = vec![
            json!({"subnetId": "subnet-1", "cidrBlock": "10.0.0.0/24", "tags": [1, 2]}),
            json!({"subnetId": "subnet-2", "vpcId": "vpc-1"}),
        ];
        let columns = record_columns(&records);
        assert_eq!(columns, ["cidrBlock", "subnetId", "vpcId"]);
        let refs: Vec<&str> = columns.iter().map(String::as_str).collect();
        let text = table(&refs, &records);
        assert!(text.contains("subnet-2"), "{text}");
        assert!(text.contains("—"), "{text}");
    }
}
