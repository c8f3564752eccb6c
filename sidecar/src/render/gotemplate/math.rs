//! consul-template's math: `add subtract multiply divide modulo minimum maximum`. The piped value
//! is the left operand (`{{ 7 | subtract 2 }}` is 5); integers stay integers, a float on either
//! side makes a float, as consul-template's reflection does.

use gotmpl::{TemplateError, Value};

use super::value::{Args, fail, type_name};

pub const FUNCTIONS: &[(&str, super::text::HelperFn)] = &[
    ("add", |v| arithmetic(v, "add", Op::Add)),
    ("subtract", |v| arithmetic(v, "subtract", Op::Subtract)),
    ("multiply", |v| arithmetic(v, "multiply", Op::Multiply)),
    ("divide", |v| arithmetic(v, "divide", Op::Divide)),
    ("modulo", |v| arithmetic(v, "modulo", Op::Modulo)),
    ("minimum", |v| arithmetic(v, "minimum", Op::Minimum)),
    ("maximum", |v| arithmetic(v, "maximum", Op::Maximum)),
];

#[derive(Clone, Copy)]
enum Op {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
    Minimum,
    Maximum,
}

#[derive(Clone, Copy)]
enum Number {
    Int(i64),
    Uint(u64),
    Float(f64),
}

fn number(name: &str, value: &Value) -> Result<Number, TemplateError> {
    match value {
        Value::Int(i) => Ok(Number::Int(*i)),
        Value::Uint(u) => Ok(Number::Uint(*u)),
        Value::Float(f) => Ok(Number::Float(*f)),
        other => Err(fail(format!("{name}: unknown type for {other} ({})", type_name(other)))),
    }
}

fn ints(op: Op, a: i64, b: i64) -> Option<i64> {
    match op {
        Op::Add => Some(a.wrapping_add(b)),
        Op::Subtract => Some(a.wrapping_sub(b)),
        Op::Multiply => Some(a.wrapping_mul(b)),
        Op::Divide => a.checked_div(b),
        Op::Modulo => a.checked_rem(b),
        Op::Minimum => Some(a.min(b)),
        Op::Maximum => Some(a.max(b)),
    }
}

fn uints(op: Op, a: u64, b: u64) -> Option<u64> {
    match op {
        Op::Add => Some(a.wrapping_add(b)),
        Op::Subtract => Some(a.wrapping_sub(b)),
        Op::Multiply => Some(a.wrapping_mul(b)),
        Op::Divide => a.checked_div(b),
        Op::Modulo => a.checked_rem(b),
        Op::Minimum => Some(a.min(b)),
        Op::Maximum => Some(a.max(b)),
    }
}

fn floats(op: Op, a: f64, b: f64) -> Option<f64> {
    match op {
        Op::Add => Some(a + b),
        Op::Subtract => Some(a - b),
        Op::Multiply => Some(a * b),
        Op::Divide => Some(a / b),
        Op::Modulo => None,
        Op::Minimum => Some(a.min(b)),
        Op::Maximum => Some(a.max(b)),
    }
}

/// `NAME B A` computes `A op B` (A is the last argument, the piped one).
fn arithmetic(values: &[Value], name: &'static str, op: Op) -> Result<Value, TemplateError> {
    let args = Args::new(name, values, 2, 2)?;
    let (b, a) = (number(name, args.value(0))?, number(name, args.value(1))?);
    let result = match (a, b) {
        (Number::Int(a), Number::Int(b)) => ints(op, a, b).map(Value::Int),
        (Number::Int(a), Number::Uint(b)) => ints(op, a, b as i64).map(Value::Int),
        (Number::Uint(a), Number::Int(b)) => ints(op, a as i64, b).map(Value::Int),
        (Number::Uint(a), Number::Uint(b)) => uints(op, a, b).map(Value::Uint),
        (Number::Float(a), Number::Float(b)) => floats(op, a, b).map(Value::Float),
        (Number::Float(a), Number::Int(b)) => floats(op, a, b as f64).map(Value::Float),
        (Number::Float(a), Number::Uint(b)) => floats(op, a, b as f64).map(Value::Float),
        (Number::Int(a), Number::Float(b)) => floats(op, a as f64, b).map(Value::Float),
        (Number::Uint(a), Number::Float(b)) => floats(op, a as f64, b).map(Value::Float),
    };
    result.ok_or_else(|| match op {
        Op::Modulo if matches!(a, Number::Float(_)) || matches!(b, Number::Float(_)) => {
            fail(format!("{name}: floats have no remainder"))
        }
        _ => fail(format!("{name}: integer divide by zero")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, b: Value, a: Value) -> String {
        let f = FUNCTIONS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).expect("function");
        f(&[b, a]).map_or_else(|e| format!("error: {e}"), |v| v.to_string())
    }

    #[test]
    fn piped_value_is_the_left_operand() {
        assert_eq!(run("subtract", Value::Int(2), Value::Int(7)), "5");
        assert_eq!(run("divide", Value::Int(2), Value::Int(10)), "5");
        assert_eq!(run("divide", Value::Int(2), Value::Float(5.0)), "2.5");
        assert_eq!(run("modulo", Value::Int(3), Value::Int(10)), "1");
        assert_eq!(run("add", Value::Int(1), Value::Float(0.5)), "1.5");
        assert_eq!(run("multiply", Value::Int(3), Value::Uint(4)), "12");
        assert_eq!(run("minimum", Value::Int(3), Value::Int(9)), "3");
        assert_eq!(run("maximum", Value::Int(3), Value::Int(9)), "9");
        assert!(run("divide", Value::Int(0), Value::Int(1)).contains("divide by zero"));
        assert!(run("add", Value::String("1".into()), Value::Int(1)).contains("unknown type"));
    }
}
