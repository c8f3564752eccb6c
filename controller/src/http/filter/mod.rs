//! Consul's `?filter=` expression language, evaluated on the JSON items an endpoint answers with.
//!
//! Selectors name fields as the wire format spells them (`ServiceTags`, `Service.Meta["env"]`,
//! `Checks.Status`); a path through a list reaches every element, and a match holds when any
//! reached value matches. Negated operators are the exact negation of their positive forms, so a
//! missing field satisfies `!=`, `not in`, `not contains`, `not matches` and `is empty`.

mod eval;
mod parse;
#[cfg(test)]
mod tests;

use serde_json::Value;

pub use parse::{Expr, Match, Selector};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("Failed to create boolean expression evaluator: {message} (at character {at})")]
    Syntax { at: usize, message: String },
    #[error("Failed to create boolean expression evaluator: Selector {0:?} is not valid")]
    UnknownSelector(String),
}

impl FilterError {
    fn syntax(at: usize, message: String) -> FilterError {
        FilterError::Syntax { at, message }
    }
}

/// A parsed filter.
#[derive(Debug, Clone)]
pub struct Filter {
    expr: Expr,
}

impl Filter {
    pub fn parse(input: &str) -> Result<Filter, FilterError> {
        parse::parse(input).map(|expr| Filter { expr })
    }

    /// Whether one item passes.
    pub fn matches(&self, item: &Value) -> bool {
        eval::eval(&self.expr, item)
    }

    /// Refuses a selector whose first field the item does not have (a typo would otherwise
    /// silently match nothing, or everything under a negation).
    pub fn check_selectors(&self, item: &Value) -> Result<(), FilterError> {
        let mut selectors = Vec::new();
        eval::selectors(&self.expr, &mut selectors);
        for selector in selectors {
            if let Some(first) = selector.first()
                && eval::field(item, first).is_none()
            {
                return Err(FilterError::UnknownSelector(selector.join(".")));
            }
        }
        Ok(())
    }

    /// Filters a listing in place: the elements of an array, the values of a map of objects
    /// (agent services and checks), or the `Services` of a node's answer.
    pub fn apply(&self, listing: &mut Value) -> Result<(), FilterError> {
        match listing {
            Value::Array(items) => {
                if let Some(first) = items.first() {
                    self.check_selectors(first)?;
                }
                items.retain(|item| self.matches(item));
            }
            Value::Object(map) if map.contains_key("Services") && map.contains_key("Node") => {
                if let Some(services) = map.get_mut("Services") {
                    self.apply(services)?;
                }
            }
            Value::Object(map) if map.values().all(Value::is_object) => {
                if let Some(first) = map.values().next() {
                    self.check_selectors(first)?;
                }
                map.retain(|_, item| self.matches(item));
            }
            _ => {}
        }
        Ok(())
    }
}
