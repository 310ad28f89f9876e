//! Evaluating expressions: the scopes a template's blocks see (`var`,
//! `local`, `source`, `path`, `packer`, `build`, `data`), references
//! checked before evaluation so a misspelt name gets a suggestion, and
//! `can`/`try`, whose arguments may fail.

use hcl::Value;
use hcl::eval::{Context, Evaluate};
use hcl_edit::expr::{Expression, TraversalOperator};
use hcl_edit::visit::{self, Visit};
use hcl_edit::visit_mut::{self, VisitMut};

use super::functions;
use super::syntax::Attr;
use crate::template::interpolate::suggest;

/// The roots of references a scope offers, each with its attribute names
/// (`None`: any attribute, checked by evaluation).
pub(crate) struct Scope<'a> {
    pub ctx: Context<'a>,
    pub roots: Vec<(&'static str, Option<Vec<String>>)>,
    pub with_env: bool,
    /// Values never shown: an error that quotes one masks it.
    pub sensitive: Vec<String>,
}

impl<'a> Scope<'a> {
    /// Functions only (and `env` with `with_env`).
    pub fn new(with_env: bool) -> Scope<'a> {
        let mut ctx = Context::new();
        functions::declare(&mut ctx, with_env);
        Scope {
            ctx,
            roots: Vec::new(),
            with_env,
            sensitive: Vec::new(),
        }
    }

    /// Offers `root.NAME` for each key of `object`.
    pub fn object(&mut self, root: &'static str, object: hcl::Map<String, Value>) {
        self.roots.retain(|(r, _)| *r != root);
        self.roots
            .push((root, Some(object.keys().cloned().collect())));
        self.ctx.declare_var(root, Value::Object(object));
    }

    /// Offers `root`, whose attributes evaluation checks.
    pub fn value(&mut self, root: &'static str, value: Value) {
        self.roots.retain(|(r, _)| *r != root);
        self.roots.push((root, None));
        self.ctx.declare_var(root, value);
    }

    /// Evaluates `expr`, or says why it cannot be.
    pub fn eval(&self, expr: &Expression) -> Result<Value, String> {
        self.check_references(expr)?;
        let mut expr = expr.clone();
        Arithmetic.visit_expr_mut(&mut expr);
        Settle(self).visit_expr_mut(&mut expr);
        let e: hcl::Expression = expr.into();
        e.evaluate(&self.ctx).map_err(|e| {
            let message = tidy(&e.to_string());
            crate::secret::mask(&message, self.sensitive.iter().map(String::as_str))
        })
    }

    /// Evaluates an attribute.
    pub fn attr(&self, attr: &Attr) -> Result<Value, String> {
        self.eval(&attr.expr)
    }

    /// Every function `expr` calls exists here, every reference names a
    /// root this scope offers, and an attribute the root has.
    fn check_references(&self, expr: &Expression) -> Result<(), String> {
        let known = functions::names(self.with_env);
        for name in calls(expr) {
            if known.contains(&name.as_str()) {
                continue;
            }
            if name == "env" {
                return Err(
                    "env() is allowed only in the default of a variable, as in Packer: declare \
                     a variable with `default = env(\"NAME\")` and use var.NAME"
                        .into(),
                );
            }
            let hint = match suggest(&name, known.iter().copied()) {
                Some(s) => format!("; did you mean `{s}`?"),
                None => String::new(),
            };
            return Err(format!("there is no function `{name}`{hint}"));
        }
        for (root, attr) in references(expr) {
            if is_local_name(expr, &root) {
                continue;
            }
            let Some((_, names)) = self.roots.iter().find(|(r, _)| *r == root) else {
                let roots: Vec<&str> = self.roots.iter().map(|(r, _)| *r).collect();
                let hint = match suggest(&root, roots.iter().copied()) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None if roots.is_empty() => "; nothing can be referenced here".into(),
                    None => format!(" (here: {})", roots.join(", ")),
                };
                return Err(format!("unknown reference `{root}`{hint}"));
            };
            if let (Some(names), Some(attr)) = (names, attr)
                && !names.contains(&attr)
            {
                let hint = match suggest(&attr, names.iter().map(String::as_str)) {
                    Some(s) => format!("; did you mean `{root}.{s}`?"),
                    None if names.is_empty() => format!("; no {root}.* is defined"),
                    None => String::new(),
                };
                let what = match root.as_str() {
                    "var" => "no variable",
                    "local" => "no local value",
                    _ => "nothing",
                };
                return Err(format!("{what} `{root}.{attr}` is declared{hint}"));
            }
        }
        Ok(())
    }
}

/// Replaces arithmetic (`a + b`, `-a`, …) by calls of the functions of
/// [`functions::ARITHMETIC`]: hcl-rs's own overflows on large integers
/// and divides by zero (`5 % 0`), which panics; these answer an error.
struct Arithmetic;

impl VisitMut for Arithmetic {
    fn visit_expr_mut(&mut self, node: &mut Expression) {
        use hcl_edit::expr::{BinaryOperator as B, FuncArgs, FuncCall, UnaryOperator as U};
        visit_mut::visit_expr_mut(self, node);
        let call = |name: &str, args: Vec<Expression>| {
            let mut list = FuncArgs::new();
            for a in args {
                list.push(a);
            }
            Expression::FuncCall(Box::new(FuncCall::new(
                hcl_edit::Ident::new_unchecked(name),
                list,
            )))
        };
        let replaced = match node {
            Expression::BinaryOp(op) => {
                let name = match op.operator.value() {
                    B::Plus => functions::ARITHMETIC[0],
                    B::Minus => functions::ARITHMETIC[1],
                    B::Mul => functions::ARITHMETIC[2],
                    B::Div => functions::ARITHMETIC[3],
                    B::Mod => functions::ARITHMETIC[4],
                    _ => return,
                };
                call(name, vec![op.lhs_expr.clone(), op.rhs_expr.clone()])
            }
            Expression::UnaryOp(op) if *op.operator.value() == U::Neg => {
                call(functions::ARITHMETIC[5], vec![op.expr.clone()])
            }
            _ => return,
        };
        *node = replaced;
    }
}

/// Replaces each `can(…)` and `try(…)` by its value, its arguments
/// evaluated here, where their failure is an answer, not an error. Inside a
/// `for`, whose names are known only as it runs, they are left to the
/// functions of the same names, which evaluate their arguments as any
/// function does.
struct Settle<'s, 'a>(&'s Scope<'a>);

impl VisitMut for Settle<'_, '_> {
    fn visit_expr_mut(&mut self, node: &mut Expression) {
        visit_mut::visit_expr_mut(self, node);
        let Expression::FuncCall(call) = node else {
            return;
        };
        let name = call.name.name.as_str();
        if !call.name.namespace.is_empty() || !matches!(name, "can" | "try") {
            return;
        }
        let ctx = &self.0.ctx;
        let value = |arg: &Expression| hcl::Expression::from(arg.clone()).evaluate(ctx).ok();
        let args: Vec<&Expression> = call.args.iter().collect();
        let settled = match (name, args.as_slice()) {
            ("can", [arg]) => Some(Value::Bool(value(arg).is_some())),
            ("try", args) => args.iter().find_map(|a| value(a)),
            _ => None,
        };
        if let Some(v) = settled {
            *node = Expression::from(hcl::Expression::from(v));
        }
    }

    fn visit_for_expr_mut(&mut self, _: &mut hcl_edit::expr::ForExpr) {}

    fn visit_for_directive_mut(&mut self, _: &mut hcl_edit::template::ForDirective) {}
}

/// The `root.attr` references of `expr` (`attr` when the first step is an
/// attribute), in order.
pub(crate) fn references(expr: &Expression) -> Vec<(String, Option<String>)> {
    struct Refs(Vec<(String, Option<String>)>);
    impl Visit for Refs {
        fn visit_traversal(&mut self, node: &hcl_edit::expr::Traversal) {
            if let Expression::Variable(root) = &node.expr {
                let attr = match node.operators.first().map(|o| o.value()) {
                    Some(TraversalOperator::GetAttr(a)) => Some(a.as_str().to_string()),
                    Some(TraversalOperator::Index(Expression::String(s))) => {
                        Some(s.as_str().to_string())
                    }
                    _ => None,
                };
                self.0.push((root.as_str().to_string(), attr));
                for op in node.operators.iter() {
                    if let TraversalOperator::Index(e) = op.value() {
                        self.visit_expr(e);
                    }
                }
            } else {
                visit::visit_traversal(self, node);
            }
        }

        fn visit_expr(&mut self, node: &Expression) {
            match node {
                Expression::Variable(v) => self.0.push((v.as_str().to_string(), None)),
                other => visit::visit_expr(self, other),
            }
        }
    }
    let mut refs = Refs(Vec::new());
    refs.visit_expr(expr);
    refs.0
}

/// The names of the functions `expr` calls.
fn calls(expr: &Expression) -> Vec<String> {
    struct Calls(Vec<String>);
    impl Visit for Calls {
        fn visit_func_call(&mut self, node: &hcl_edit::expr::FuncCall) {
            self.0.push(node.name.name.as_str().to_string());
            visit::visit_func_call(self, node);
        }
    }
    let mut c = Calls(Vec::new());
    c.visit_expr(expr);
    c.0
}

/// Whether `name` is bound by a `for` expression inside `expr` (`[for s in
/// var.list : upper(s)]`), or names a function's own keyword.
fn is_local_name(expr: &Expression, name: &str) -> bool {
    struct Bound<'a>(&'a str, bool);
    impl Visit for Bound<'_> {
        fn visit_for_intro(&mut self, node: &hcl_edit::expr::ForIntro) {
            if node.value_var.as_str() == self.0
                || node.key_var.as_ref().is_some_and(|k| k.as_str() == self.0)
            {
                self.1 = true;
            }
            visit::visit_for_intro(self, node);
        }

        fn visit_for_directive(&mut self, node: &hcl_edit::template::ForDirective) {
            let intro = &node.for_expr;
            if intro.value_var.as_str() == self.0
                || intro.key_var.as_ref().is_some_and(|k| k.as_str() == self.0)
            {
                self.1 = true;
            }
            visit::visit_for_directive(self, node);
        }
    }
    let mut b = Bound(name, false);
    b.visit_expr(expr);
    b.1
}

/// hcl-rs's messages, with the expression dump some of them carry cut.
fn tidy(message: &str) -> String {
    let mut message = match message.split_once(" in expression `") {
        Some((head, _)) => head.to_string(),
        None => message.to_string(),
    };
    // The operators osci evaluates as functions are named as written.
    for (name, operator) in functions::ARITHMETIC
        .iter()
        .zip(["+", "-", "*", "/", "%", "-"])
    {
        message = message.replace(
            &format!("function `{name}`"),
            &format!("operator `{operator}`"),
        );
    }
    message
}

/// An HCL value as JSON.
pub(crate) fn to_json(value: &Value) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str) -> Result<Value, String> {
        let mut scope = Scope::new(false);
        let mut var = hcl::Map::new();
        var.insert("m".to_string(), Value::Object(hcl::Map::new()));
        var.insert("name".to_string(), Value::from("web"));
        scope.object("var", var);
        scope.eval(&hcl_edit::parser::parse_expr(text).unwrap())
    }

    #[test]
    fn can_and_try_answer_for_what_fails() {
        assert_eq!(eval(r#"try(var.m.env, "dev")"#), Ok(Value::from("dev")));
        assert_eq!(
            eval(r#""img-${try(var.m.env, "dev")}""#),
            Ok(Value::from("img-dev"))
        );
        assert_eq!(eval("can(var.m.env)"), Ok(Value::Bool(false)));
        assert_eq!(eval("can(var.name)"), Ok(Value::Bool(true)));
        assert_eq!(
            eval(r#"[for s in ["a"] : try(upper(s), "x")]"#),
            Ok(Value::from_iter(["A"]))
        );
        let e = eval("var.nme").unwrap_err();
        assert!(e.contains("did you mean `var.name`?"), "{e}");
        let e = eval(r#""a" * 2"#).unwrap_err();
        assert!(e.contains("operator `*`") && !e.contains("osci__"), "{e}");
        let e = eval("lenght([])").unwrap_err();
        assert!(e.contains("did you mean `length`?"), "{e}");
    }
}
