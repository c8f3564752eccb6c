//! Evaluating a parsed filter against one JSON item.

use serde_json::Value;

use super::parse::{Expr, Match, Selector};
pub use crate::http::decode::json_field as field;

pub fn eval(expr: &Expr, item: &Value) -> bool {
    match expr {
        Expr::And(a, b) => eval(a, item) && eval(b, item),
        Expr::Or(a, b) => eval(a, item) || eval(b, item),
        Expr::Not(inner) => !eval(inner, item),
        Expr::Match(m) => eval_match(m, item),
    }
}

fn eval_match(m: &Match, item: &Value) -> bool {
    match m {
        Match::Equal(sel, v) => scalars(item, sel).any(|x| equals(x, v)),
        Match::NotEqual(sel, v) => !scalars(item, sel).any(|x| equals(x, v)),
        Match::IsEmpty(sel) => resolve(item, sel).iter().all(|x| is_empty(x)),
        Match::IsNotEmpty(sel) => !resolve(item, sel).iter().all(|x| is_empty(x)),
        Match::Contains(sel, v) => resolve(item, sel).iter().any(|x| contains(x, v)),
        Match::NotContains(sel, v) => !resolve(item, sel).iter().any(|x| contains(x, v)),
        Match::Matches(sel, re) => scalars(item, sel).any(|x| x.as_str().is_some_and(|s| re.is_match(s))),
        Match::NotMatches(sel, re) => !scalars(item, sel).any(|x| x.as_str().is_some_and(|s| re.is_match(s))),
    }
}

/// Every value the selector reaches; a step through a list reaches each element's field.
fn resolve<'a>(item: &'a Value, selector: &Selector) -> Vec<&'a Value> {
    let mut current = vec![item];
    for name in selector {
        let mut next = Vec::new();
        for value in current {
            match value {
                Value::Array(elements) => next.extend(elements.iter().filter_map(|e| field(e, name))),
                other => next.extend(field(other, name)),
            }
        }
        current = next;
    }
    current
}

/// The reached values with lists opened up, for operators that compare single values.
fn scalars<'a>(item: &'a Value, selector: &Selector) -> impl Iterator<Item = &'a Value> {
    resolve(item, selector).into_iter().flat_map(|v| match v {
        Value::Array(elements) => elements.iter().collect::<Vec<_>>(),
        other => vec![other],
    })
}

fn equals(x: &Value, literal: &str) -> bool {
    match x {
        Value::String(s) => s == literal,
        Value::Number(n) => literal.parse::<f64>().ok().zip(n.as_f64()).is_some_and(|(a, b)| a == b),
        Value::Bool(b) => literal.parse::<bool>().ok() == Some(*b),
        Value::Null => literal.is_empty(),
        _ => false,
    }
}

fn is_empty(x: &Value) -> bool {
    match x {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// `in`/`contains`: a list holds the value, a map has the key, a string has the substring.
fn contains(x: &Value, literal: &str) -> bool {
    match x {
        Value::Array(elements) => elements.iter().any(|e| equals(e, literal)),
        Value::Object(map) => map.contains_key(literal),
        Value::String(s) => s.contains(literal),
        _ => false,
    }
}

/// Every selector in the expression.
pub fn selectors<'a>(expr: &'a Expr, out: &mut Vec<&'a Selector>) {
    match expr {
        Expr::And(a, b) | Expr::Or(a, b) => {
            selectors(a, out);
            selectors(b, out);
        }
        Expr::Not(inner) => selectors(inner, out),
        Expr::Match(m) => out.push(match m {
            Match::Equal(s, _)
            | Match::NotEqual(s, _)
            | Match::IsEmpty(s)
            | Match::IsNotEmpty(s)
            | Match::Contains(s, _)
            | Match::NotContains(s, _)
            | Match::Matches(s, _)
            | Match::NotMatches(s, _) => s,
        }),
    }
}
