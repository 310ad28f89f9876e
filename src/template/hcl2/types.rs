//! Type constraints of `variable` blocks (`string`, `list(number)`,
//! `map(string)`, `object({ a = string, b = optional(bool) })`, …), and the
//! conversions HCL makes to satisfy them: a number given where a string is
//! wanted becomes a string, `"3"` given for a number becomes 3.

use hcl::Value;
use hcl_edit::expr::{Expression, FuncCall};

/// A type constraint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Type {
    Any,
    String,
    Number,
    Bool,
    List(Box<Type>),
    Set(Box<Type>),
    Map(Box<Type>),
    Object(Vec<(String, Type, bool)>),
    Tuple(Vec<Type>),
}

impl Type {
    /// Reads a type expression.
    pub fn parse(expr: &Expression) -> Result<Type, String> {
        match expr {
            Expression::Variable(v) => match v.as_str() {
                "any" => Ok(Type::Any),
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "list" | "set" | "map" => Ok(match v.as_str() {
                    "list" => Type::List(Box::new(Type::Any)),
                    "set" => Type::Set(Box::new(Type::Any)),
                    _ => Type::Map(Box::new(Type::Any)),
                }),
                other => Err(format!(
                    "`{other}` is not a type (string, number, bool, list(T), set(T), map(T), \
                     object({{…}}), tuple([…]) or any)"
                )),
            },
            Expression::FuncCall(call) => Type::call(call),
            // HCL's JSON syntax writes the type as a string: `"list(string)"`.
            Expression::String(s) => {
                let inner = hcl_edit::parser::parse_expr(s.as_str())
                    .map_err(|_| format!("{:?} is not a type", s.as_str()))?;
                if matches!(inner, Expression::String(_)) {
                    return Err(format!("{:?} is not a type", s.as_str()));
                }
                Type::parse(&inner)
            }
            other => Err(format!("`{}` is not a type", other.to_string().trim())),
        }
    }

    fn call(call: &FuncCall) -> Result<Type, String> {
        let name = call.name.name.as_str();
        let args: Vec<&Expression> = call.args.iter().collect();
        let one = || -> Result<Type, String> {
            match args.as_slice() {
                [t] => Type::parse(t),
                _ => Err(format!("{name}(…) takes one type")),
            }
        };
        match name {
            "list" => Ok(Type::List(Box::new(one()?))),
            "set" => Ok(Type::Set(Box::new(one()?))),
            "map" => Ok(Type::Map(Box::new(one()?))),
            "object" => match args.as_slice() {
                [Expression::Object(fields)] => {
                    let mut out = Vec::new();
                    for (key, value) in fields.iter() {
                        let key = match key {
                            hcl_edit::expr::ObjectKey::Ident(i) => i.as_str().to_string(),
                            hcl_edit::expr::ObjectKey::Expression(Expression::String(s)) => {
                                s.as_str().to_string()
                            }
                            _ => return Err("object type keys are names".into()),
                        };
                        let (t, optional) = match value.expr() {
                            Expression::FuncCall(c) if c.name.name.as_str() == "optional" => {
                                match c.args.iter().next() {
                                    Some(t) => (Type::parse(t)?, true),
                                    None => return Err("optional(…) takes a type".into()),
                                }
                            }
                            t => (Type::parse(t)?, false),
                        };
                        out.push((key, t, optional));
                    }
                    Ok(Type::Object(out))
                }
                _ => Err("object(…) takes an object of attribute types".into()),
            },
            "tuple" => match args.as_slice() {
                [Expression::Array(items)] => Ok(Type::Tuple(
                    items.iter().map(Type::parse).collect::<Result<_, _>>()?,
                )),
                _ => Err("tuple(…) takes a list of types".into()),
            },
            other => Err(format!("`{other}(…)` is not a type constructor")),
        }
    }

    /// Whether values given as text (on the command line, in `PKR_VAR_`)
    /// are converted from the text itself rather than read as HCL
    /// expressions.
    pub fn is_primitive(&self) -> bool {
        matches!(self, Type::String | Type::Number | Type::Bool)
    }

    /// `value` converted to this type, or why it cannot be.
    pub fn convert(&self, value: Value) -> Result<Value, String> {
        match (self, value) {
            (_, Value::Null) => Ok(Value::Null),
            (Type::Any, v) => Ok(v),
            (Type::String, Value::String(s)) => Ok(Value::String(s)),
            (Type::String, Value::Number(n)) => Ok(Value::String(n.to_string())),
            (Type::String, Value::Bool(b)) => Ok(Value::String(b.to_string())),
            (Type::Number, Value::Number(n)) => Ok(Value::Number(n)),
            (Type::Number, Value::String(s)) => s
                .trim()
                .parse::<i64>()
                .ok()
                .map(hcl::Number::from)
                .or_else(|| s.trim().parse::<f64>().ok().and_then(hcl::Number::from_f64))
                .map(Value::Number)
                .ok_or_else(|| format!("a number is required, not {s:?}")),
            (Type::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
            (Type::Bool, Value::String(s)) if s == "true" || s == "false" => {
                Ok(Value::Bool(s == "true"))
            }
            (Type::List(t) | Type::Set(t), Value::Array(items)) => {
                let mut out: Vec<Value> = items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| t.convert(v).map_err(|e| format!("element {i}: {e}")))
                    .collect::<Result<_, _>>()?;
                if matches!(self, Type::Set(_)) {
                    let mut seen = Vec::new();
                    out.retain(|v| {
                        let new = !seen.contains(v);
                        if new {
                            seen.push(v.clone());
                        }
                        new
                    });
                }
                Ok(Value::Array(out))
            }
            (Type::Tuple(types), Value::Array(items)) => {
                if types.len() != items.len() {
                    return Err(format!(
                        "a tuple of {} elements is required, not {}",
                        types.len(),
                        items.len()
                    ));
                }
                Ok(Value::Array(
                    types
                        .iter()
                        .zip(items)
                        .enumerate()
                        .map(|(i, (t, v))| t.convert(v).map_err(|e| format!("element {i}: {e}")))
                        .collect::<Result<_, _>>()?,
                ))
            }
            (Type::Map(t), Value::Object(o)) => Ok(Value::Object(
                o.into_iter()
                    .map(|(k, v)| {
                        let v = t.convert(v).map_err(|e| format!("key {k:?}: {e}"))?;
                        Ok((k, v))
                    })
                    .collect::<Result<_, String>>()?,
            )),
            (Type::Object(fields), Value::Object(mut o)) => {
                let mut out = hcl::Map::new();
                for (name, t, optional) in fields {
                    match o.shift_remove(name) {
                        Some(v) => {
                            let v = t
                                .convert(v)
                                .map_err(|e| format!("attribute {name:?}: {e}"))?;
                            out.insert(name.clone(), v);
                        }
                        None if *optional => {
                            out.insert(name.clone(), Value::Null);
                        }
                        None => return Err(format!("attribute {name:?} is required")),
                    }
                }
                if let Some(extra) = o.keys().next() {
                    return Err(format!("attribute {extra:?} is not part of the type"));
                }
                Ok(Value::Object(out))
            }
            (t, v) => Err(format!("{} is required, not {}", t.describe(), kind_of(&v))),
        }
    }

    fn describe(&self) -> String {
        match self {
            Type::Any => "any value".into(),
            Type::String => "a string".into(),
            Type::Number => "a number".into(),
            Type::Bool => "a bool".into(),
            Type::List(_) => "a list".into(),
            Type::Set(_) => "a set".into(),
            Type::Map(_) => "a map".into(),
            Type::Object(_) => "an object".into(),
            Type::Tuple(_) => "a tuple".into(),
        }
    }
}

/// What a value is, in messages.
pub(crate) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Type {
        Type::parse(&hcl_edit::parser::parse_expr(s).unwrap()).unwrap()
    }

    #[test]
    fn types_read_and_convert() {
        assert_eq!(
            t("string").convert(Value::from(3)).unwrap(),
            Value::from("3")
        );
        assert_eq!(
            t("number").convert(Value::from("42")).unwrap(),
            Value::from(42)
        );
        assert!(t("number").convert(Value::from("x")).is_err());
        assert_eq!(
            t("set(string)")
                .convert(Value::Array(vec![Value::from("a"), Value::from("a")]))
                .unwrap(),
            Value::Array(vec![Value::from("a")])
        );
        let object = t("object({ name = string, size = optional(number) })");
        let mut given = hcl::Map::new();
        given.insert("name".to_string(), Value::from("web"));
        let converted = object.convert(Value::Object(given.clone())).unwrap();
        assert_eq!(converted.as_object().unwrap()["size"], Value::Null);
        given.insert("colour".to_string(), Value::from("red"));
        let e = object.convert(Value::Object(given)).unwrap_err();
        assert!(e.contains("colour"), "{e}");
        assert!(Type::parse(&hcl_edit::parser::parse_expr("strin").unwrap()).is_err());
        assert_eq!(
            t("list(map(number))")
                .convert(Value::Array(vec![Value::Bool(true)]))
                .unwrap_err(),
            "element 0: a map is required, not a bool"
        );
    }
}
