//! UpdateItem expressions built from attribute names: each attribute is named
//! once, and [`Update`] writes the placeholders, the update and condition
//! expressions and both attribute maps.

use std::collections::HashMap;

use aws_sdk_dynamodb::{
    operation::update_item::builders::UpdateItemFluentBuilder, types::AttributeValue,
};

/// The `SET` and `REMOVE` clauses of one UpdateItem and its condition.
///
/// An attribute `name` (one of `item::attr`, so a valid placeholder after `#`)
/// is written as `#name`; each value gets a placeholder `:vN` of its own.
#[derive(Debug, Default)]
pub(super) struct Update {
    set: Vec<String>,
    remove: Vec<String>,
    condition: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Update {
    pub fn new() -> Self {
        Self::default()
    }

    /// `SET name = value`.
    pub fn set(mut self, name: &'static str, value: AttributeValue) -> Self {
        let (name, value) = (self.name(name), self.value(value));
        self.set.push(format!("{name} = {value}"));
        self
    }

    /// `SET name = if_not_exists(name, value)`: `value` only where the item
    /// has no `name` yet.
    pub fn set_if_absent(mut self, name: &'static str, value: AttributeValue) -> Self {
        let (name, value) = (self.name(name), self.value(value));
        self.set
            .push(format!("{name} = if_not_exists({name}, {value})"));
        self
    }

    /// `REMOVE name`.
    pub fn remove(mut self, name: &'static str) -> Self {
        let name = self.name(name);
        self.remove.push(name);
        self
    }

    /// The update applies only if every one of `checks` holds.
    pub fn condition_all(self, checks: impl IntoIterator<Item = Check>) -> Self {
        self.condition(checks, " AND ")
    }

    /// The update applies only if one of `checks` holds.
    pub fn condition_any(self, checks: impl IntoIterator<Item = Check>) -> Self {
        self.condition(checks, " OR ")
    }

    fn condition(mut self, checks: impl IntoIterator<Item = Check>, join: &str) -> Self {
        debug_assert!(self.condition.is_none(), "one condition per update");
        let checks: Vec<String> = checks
            .into_iter()
            .map(|check| match check {
                Check::Exists(name) => format!("attribute_exists({})", self.name(name)),
                Check::Absent(name) => format!("attribute_not_exists({})", self.name(name)),
                Check::Compare(name, op, value) => {
                    format!("{} {op} {}", self.name(name), self.value(value))
                }
            })
            .collect();
        self.condition = Some(checks.join(join));
        self
    }

    /// `request` with this update's expressions and attribute maps.
    pub fn apply(self, request: UpdateItemFluentBuilder) -> UpdateItemFluentBuilder {
        // DynamoDB refuses empty expressions and maps.
        request
            .set_update_expression(self.expression())
            .set_condition_expression(self.condition)
            .set_expression_attribute_names((!self.names.is_empty()).then_some(self.names))
            .set_expression_attribute_values((!self.values.is_empty()).then_some(self.values))
    }

    /// The update expression: the `SET` clause, then the `REMOVE` clause.
    fn expression(&self) -> Option<String> {
        let clauses: Vec<String> = [("SET", &self.set), ("REMOVE", &self.remove)]
            .into_iter()
            .filter(|(_, actions)| !actions.is_empty())
            .map(|(clause, actions)| format!("{clause} {}", actions.join(", ")))
            .collect();
        (!clauses.is_empty()).then(|| clauses.join(" "))
    }

    /// The placeholder of the attribute `name`.
    fn name(&mut self, name: &'static str) -> String {
        let placeholder = format!("#{name}");
        self.names.insert(placeholder.clone(), name.to_owned());
        placeholder
    }

    /// A new placeholder for `value`.
    fn value(&mut self, value: AttributeValue) -> String {
        let placeholder = format!(":v{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }
}

/// One test of an update's condition on the stored item.
#[derive(Debug)]
pub(super) enum Check {
    /// `attribute_exists(name)`.
    Exists(&'static str),
    /// `attribute_not_exists(name)`.
    Absent(&'static str),
    /// `name op value` (name, op, value); made by [`Check::equals`] and the
    /// other comparisons.
    Compare(&'static str, &'static str, AttributeValue),
}

impl Check {
    /// `name = value`.
    pub fn equals(name: &'static str, value: AttributeValue) -> Self {
        Self::Compare(name, "=", value)
    }

    /// `name <> value`.
    pub fn differs(name: &'static str, value: AttributeValue) -> Self {
        Self::Compare(name, "<>", value)
    }

    /// `name < value`.
    pub fn below(name: &'static str, value: AttributeValue) -> Self {
        Self::Compare(name, "<", value)
    }

    /// `name <= value`.
    pub fn at_most(name: &'static str, value: AttributeValue) -> Self {
        Self::Compare(name, "<=", value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::dynamodb::item::{attr, n, s};

    #[test]
    fn an_update_names_each_attribute_once_and_each_value_apart() {
        let update = Update::new()
            .set(attr::TTL, n(10))
            .set_if_absent(attr::STATE, s("NO_DATA"))
            .remove(attr::LAST_ERROR_KIND)
            .condition_all([
                Check::Exists(attr::CACHE_KEY),
                Check::below(attr::TTL, n(10)),
            ]);
        assert_eq!(
            update.expression().as_deref(),
            Some("SET #ttl = :v0, #state = if_not_exists(#state, :v1) REMOVE #lastErrorKind")
        );
        assert_eq!(
            update.condition.as_deref(),
            Some("attribute_exists(#cacheKey) AND #ttl < :v2")
        );
        assert_eq!(update.names.len(), 4);
        assert_eq!(update.names["#lastErrorKind"], attr::LAST_ERROR_KIND);
        assert_eq!(
            update.values,
            HashMap::from([
                (":v0".to_owned(), n(10)),
                (":v1".to_owned(), s("NO_DATA")),
                (":v2".to_owned(), n(10)),
            ])
        );
    }

    #[test]
    fn alternatives_join_with_or_and_a_condition_alone_has_no_update_expression() {
        let update = Update::new().condition_any([
            Check::Absent(attr::LAST_ATTEMPT_AT),
            Check::at_most(attr::LAST_ATTEMPT_AT, n(5)),
        ]);
        assert_eq!(
            update.condition.as_deref(),
            Some("attribute_not_exists(#lastAttemptAt) OR #lastAttemptAt <= :v0")
        );
        assert_eq!(update.names.len(), 1);
        assert_eq!(update.expression(), None);
    }
}
