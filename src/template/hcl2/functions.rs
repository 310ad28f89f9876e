//! The functions Packer templates call: strings, collections, encodings,
//! numbers, type conversions, dates, files, hashes and ids, with Packer's
//! names and behaviour. `env` is declared only where Packer allows it (the
//! defaults of variables). `timestamp()` reads the clock of the load, so
//! every call in one load agrees.

use std::cell::Cell;
use std::path::Path;

use base64::Engine;
use hcl::Value;
use hcl::eval::{Context, FuncDef, ParamType};
use sha2::Digest;
use time::OffsetDateTime;

/// How many list elements the functions that make lists of any size
/// (`range`, `split`) may make in one load: a template nesting them in
/// `for` expressions must fail, not exhaust the memory.
const BUDGET: u64 = 1_000_000;

thread_local! {
    /// The clock reading of the load under way on this thread.
    static NOW: Cell<Option<OffsetDateTime>> = const { Cell::new(None) };
    /// What is left of [`BUDGET`] in the load under way.
    static LEFT: Cell<u64> = const { Cell::new(BUDGET) };
}

/// The clock `timestamp()` reads, and a fresh budget, for as long as the
/// guard lives.
pub(crate) struct Load;

impl Load {
    pub fn start(now: OffsetDateTime) -> Load {
        NOW.with(|c| c.set(Some(now)));
        LEFT.with(|c| c.set(BUDGET));
        Load
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        NOW.with(|c| c.set(None));
        LEFT.with(|c| c.set(BUDGET));
    }
}

/// Takes `n` elements from the budget, or says that the load makes too
/// many.
fn spend(n: usize) -> Result<(), String> {
    LEFT.with(|c| match c.get().checked_sub(n as u64) {
        Some(left) => {
            c.set(left);
            Ok(())
        }
        None => Err(format!(
            "the template makes more than {BUDGET} list elements with range() and split()"
        )),
    })
}

fn now() -> OffsetDateTime {
    NOW.with(|c| c.get())
        .unwrap_or_else(OffsetDateTime::now_utc)
}

/// The names of the functions a template may call (and those arithmetic
/// becomes), for the check of calls and suggestions.
pub(crate) fn names(with_env: bool) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = TABLE.iter().map(|(n, _)| *n).collect();
    names.extend(ARITHMETIC);
    if with_env {
        names.push("env");
    }
    names.extend(["can", "try"]);
    names
}

type Def = fn() -> FuncDef;

use ParamType::{Any, Number as N, String as S};

fn f(params: &[ParamType], func: hcl::eval::Func) -> FuncDef {
    FuncDef::builder()
        .params(params.iter().cloned())
        .build(func)
}

fn variadic(params: &[ParamType], rest: ParamType, func: hcl::eval::Func) -> FuncDef {
    FuncDef::builder()
        .params(params.iter().cloned())
        .variadic_param(rest)
        .build(func)
}

fn list() -> ParamType {
    ParamType::array_of(Any)
}

fn map() -> ParamType {
    ParamType::object_of(Any)
}

const TABLE: &[(&str, Def)] = &[
    // Strings.
    ("upper", || f(&[S], |a| Ok(s(&a[0])?.to_uppercase().into()))),
    ("lower", || f(&[S], |a| Ok(s(&a[0])?.to_lowercase().into()))),
    ("title", || f(&[S], |a| Ok(title(s(&a[0])?).into()))),
    ("trimspace", || f(&[S], |a| Ok(s(&a[0])?.trim().into()))),
    ("chomp", || {
        f(&[S], |a| {
            Ok(s(&a[0])?.trim_end_matches(['\n', '\r']).into())
        })
    }),
    ("trim", || {
        f(&[S, S], |a| {
            let cut: Vec<char> = s(&a[1])?.chars().collect();
            Ok(s(&a[0])?.trim_matches(cut.as_slice()).into())
        })
    }),
    ("trimprefix", || {
        f(&[S, S], |a| {
            let (t, p) = (s(&a[0])?, s(&a[1])?);
            Ok(t.strip_prefix(p).unwrap_or(t).into())
        })
    }),
    ("trimsuffix", || {
        f(&[S, S], |a| {
            let (t, p) = (s(&a[0])?, s(&a[1])?);
            Ok(t.strip_suffix(p).unwrap_or(t).into())
        })
    }),
    ("startswith", || {
        f(&[S, S], |a| Ok(s(&a[0])?.starts_with(s(&a[1])?).into()))
    }),
    ("endswith", || {
        f(&[S, S], |a| Ok(s(&a[0])?.ends_with(s(&a[1])?).into()))
    }),
    ("strcontains", || {
        f(&[S, S], |a| Ok(s(&a[0])?.contains(s(&a[1])?).into()))
    }),
    ("strrev", || {
        f(&[S], |a| {
            Ok(s(&a[0])?.chars().rev().collect::<String>().into())
        })
    }),
    ("replace", || {
        f(&[S, S, S], |a| replace(s(&a[0])?, s(&a[1])?, s(&a[2])?))
    }),
    ("regex_replace", || {
        f(&[S, S, S], |a| {
            let re = regex(s(&a[1])?)?;
            Ok(re.replace_all(s(&a[0])?, s(&a[2])?).into_owned().into())
        })
    }),
    ("regex", || {
        f(&[S, S], |a| regex_match(s(&a[0])?, s(&a[1])?, false))
    }),
    ("regexall", || {
        f(&[S, S], |a| regex_match(s(&a[0])?, s(&a[1])?, true))
    }),
    ("split", || {
        f(&[S, S], |a| {
            let parts: Vec<Value> = s(&a[1])?.split(s(&a[0])?).map(Value::from).collect();
            spend(parts.len())?;
            Ok(Value::Array(parts))
        })
    }),
    ("join", || {
        variadic(&[S], list(), |a| {
            let sep = s(&a[0])?;
            let mut parts = Vec::new();
            for l in &a[1..] {
                for v in arr(l)? {
                    parts.push(text(v)?);
                }
            }
            Ok(parts.join(sep).into())
        })
    }),
    ("substr", || {
        f(&[S, N, N], |a| {
            let chars: Vec<char> = s(&a[0])?.chars().collect();
            let len = chars.len() as i64;
            let mut start = int(&a[1])?;
            if start < 0 {
                start += len;
            }
            let start = start.clamp(0, len) as usize;
            let count = int(&a[2])?;
            let end = if count < 0 {
                chars.len()
            } else {
                (start + count as usize).min(chars.len())
            };
            Ok(chars[start..end].iter().collect::<String>().into())
        })
    }),
    ("indent", || {
        f(&[N, S], |a| {
            let pad = " ".repeat(int(&a[0])?.clamp(0, 1000) as usize);
            let text = s(&a[1])?;
            Ok(text.replace('\n', &format!("\n{pad}")).into())
        })
    }),
    ("format", || {
        variadic(&[S], Any, |a| Ok(format(s(&a[0])?, &a[1..])?.into()))
    }),
    ("formatlist", || {
        variadic(&[S], Any, |a| {
            let lists: Vec<&Vec<Value>> = a[1..].iter().filter_map(|v| v.as_array()).collect();
            let n = lists.first().map_or(1, |l| l.len());
            if lists.iter().any(|l| l.len() != n) {
                return Err("the lists given must have the same length".into());
            }
            let mut out = Vec::new();
            for i in 0..n {
                let args: Vec<Value> = a[1..]
                    .iter()
                    .map(|v| match v {
                        Value::Array(items) => items[i].clone(),
                        other => other.clone(),
                    })
                    .collect();
                out.push(Value::from(format(s(&a[0])?, &args)?));
            }
            Ok(Value::Array(out))
        })
    }),
    // Collections.
    ("length", || {
        f(&[Any], |a| {
            let n = match &a[0] {
                Value::String(s) => s.chars().count(),
                Value::Array(items) => items.len(),
                Value::Object(o) => o.len(),
                other => return Err(format!("length of {other} is not defined")),
            };
            Ok((n as u64).into())
        })
    }),
    ("concat", || {
        variadic(&[], list(), |a| {
            Ok(Value::Array(
                a.iter()
                    .flat_map(|l| l.as_array().cloned().unwrap_or_default())
                    .collect(),
            ))
        })
    }),
    ("contains", || {
        f(&[list(), Any], |a| Ok(arr(&a[0])?.contains(&a[1]).into()))
    }),
    ("distinct", || {
        f(&[list()], |a| Ok(unique(arr(&a[0])?.iter().cloned())))
    }),
    ("element", || {
        f(&[list(), N], |a| {
            let items = arr(&a[0])?;
            if items.is_empty() {
                return Err("cannot use element() on an empty list".into());
            }
            let i = int(&a[1])?;
            if i < 0 {
                return Err("the index must not be negative".into());
            }
            Ok(items[i as usize % items.len()].clone())
        })
    }),
    ("index", || {
        f(&[list(), Any], |a| {
            arr(&a[0])?
                .iter()
                .position(|v| *v == a[1])
                .map(|i| Value::from(i as u64))
                .ok_or_else(|| "the value is not in the list".to_string())
        })
    }),
    ("flatten", || {
        f(&[list()], |a| {
            fn flat(items: &[Value], out: &mut Vec<Value>) {
                for v in items {
                    match v {
                        Value::Array(inner) => flat(inner, out),
                        other => out.push(other.clone()),
                    }
                }
            }
            let mut out = Vec::new();
            flat(arr(&a[0])?, &mut out);
            Ok(Value::Array(out))
        })
    }),
    ("keys", || {
        f(&[map()], |a| {
            let mut keys: Vec<&String> = obj(&a[0])?.keys().collect();
            keys.sort();
            Ok(Value::Array(
                keys.into_iter().map(|k| Value::from(k.as_str())).collect(),
            ))
        })
    }),
    ("values", || {
        f(&[map()], |a| {
            let o = obj(&a[0])?;
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            Ok(Value::Array(
                keys.into_iter().map(|k| o[k].clone()).collect(),
            ))
        })
    }),
    ("lookup", || {
        variadic(&[map(), S], Any, |a| {
            match (obj(&a[0])?.get(s(&a[1])?), a.get(2)) {
                (Some(v), _) => Ok(v.clone()),
                (None, Some(default)) => Ok(default.clone()),
                (None, None) => Err(format!("no key {:?} and no default", s(&a[1])?)),
            }
        })
    }),
    ("merge", || {
        variadic(&[], ParamType::nullable(map()), |a| {
            let mut out = hcl::Map::new();
            for o in a.iter().filter_map(|v| v.as_object()) {
                for (k, v) in o {
                    out.insert(k.clone(), v.clone());
                }
            }
            Ok(Value::Object(out))
        })
    }),
    ("reverse", || {
        f(&[list()], |a| {
            Ok(Value::Array(arr(&a[0])?.iter().rev().cloned().collect()))
        })
    }),
    ("slice", || {
        f(&[list(), N, N], |a| {
            let items = arr(&a[0])?;
            let (from, to) = (int(&a[1])?, int(&a[2])?);
            if from < 0 || to < from || to as usize > items.len() {
                return Err(format!("slice({from}, {to}) of a list of {}", items.len()));
            }
            Ok(Value::Array(items[from as usize..to as usize].to_vec()))
        })
    }),
    ("sort", || {
        f(&[ParamType::array_of(S)], |a| {
            let mut items: Vec<String> = arr(&a[0])?.iter().map(text).collect::<Result<_, _>>()?;
            items.sort();
            Ok(Value::Array(items.into_iter().map(Value::from).collect()))
        })
    }),
    ("zipmap", || {
        f(&[ParamType::array_of(S), list()], |a| {
            let (k, v) = (arr(&a[0])?, arr(&a[1])?);
            if k.len() != v.len() {
                return Err("the keys and values must have the same length".into());
            }
            Ok(Value::Object(
                k.iter()
                    .zip(v)
                    .map(|(k, v)| Ok((text(k)?, v.clone())))
                    .collect::<Result<_, String>>()?,
            ))
        })
    }),
    ("compact", || {
        f(&[list()], |a| {
            Ok(Value::Array(
                arr(&a[0])?
                    .iter()
                    .filter(|v| !v.is_null() && v.as_str() != Some(""))
                    .cloned()
                    .collect(),
            ))
        })
    }),
    ("coalesce", || {
        variadic(&[], Any, |a| {
            a.iter()
                .find(|v| !v.is_null() && v.as_str() != Some(""))
                .cloned()
                .ok_or_else(|| "no non-null, non-empty argument".to_string())
        })
    }),
    ("coalescelist", || {
        variadic(&[], list(), |a| {
            a.iter()
                .find(|v| v.as_array().is_some_and(|l| !l.is_empty()))
                .cloned()
                .ok_or_else(|| "no non-empty list".to_string())
        })
    }),
    ("range", || {
        variadic(&[N], N, |a| {
            let nums: Vec<f64> = a.iter().map(num).collect::<Result<_, _>>()?;
            let (start, end, step) = match nums.as_slice() {
                [end] => (0.0, *end, 1.0),
                [start, end] => (*start, *end, if end >= start { 1.0 } else { -1.0 }),
                [start, end, step] => (*start, *end, *step),
                _ => return Err("range takes one to three numbers".into()),
            };
            if step == 0.0 {
                return Err("the step must not be zero".into());
            }
            let mut out = Vec::new();
            let mut x = start;
            while (step > 0.0 && x < end) || (step < 0.0 && x > end) {
                spend(1)?;
                out.push(number(x)?);
                x += step;
            }
            Ok(Value::Array(out))
        })
    }),
    ("setunion", || {
        variadic(&[], list(), |a| {
            Ok(unique(
                a.iter().filter_map(|l| l.as_array()).flatten().cloned(),
            ))
        })
    }),
    // Numbers.
    ("abs", || f(&[N], |a| number(num(&a[0])?.abs()))),
    ("ceil", || f(&[N], |a| number(num(&a[0])?.ceil()))),
    ("floor", || f(&[N], |a| number(num(&a[0])?.floor()))),
    ("signum", || f(&[N], |a| number(num(&a[0])?.signum()))),
    ("pow", || {
        f(&[N, N], |a| number(num(&a[0])?.powf(num(&a[1])?)))
    }),
    ("max", || {
        variadic(&[N], N, |a| number(nums(&a)?.fold(f64::MIN, f64::max)))
    }),
    ("min", || {
        variadic(&[N], N, |a| number(nums(&a)?.fold(f64::MAX, f64::min)))
    }),
    ("parseint", || {
        f(&[S, N], |a| {
            let base = int(&a[1])?;
            if !(2..=36).contains(&base) {
                return Err("the base must be between 2 and 36".into());
            }
            i64::from_str_radix(s(&a[0])?, base as u32)
                .map(Value::from)
                .map_err(|e| format!("{:?} in base {base}: {e}", s(&a[0]).unwrap_or("")))
        })
    }),
    // Type conversions.
    ("tostring", || {
        f(&[Any], |a| match &a[0] {
            Value::Null => Ok(Value::Null),
            v => Ok(text(v)?.into()),
        })
    }),
    ("tonumber", || {
        f(&[Any], |a| match &a[0] {
            Value::Number(n) => Ok(Value::Number(*n)),
            Value::Null => Ok(Value::Null),
            Value::String(t) => t
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("{t:?} is not a number"))
                .and_then(number),
            other => Err(format!("{other} is not a number")),
        })
    }),
    ("tobool", || {
        f(&[Any], |a| match &a[0] {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::Null => Ok(Value::Null),
            Value::String(t) if t == "true" || t == "false" => Ok(Value::Bool(t == "true")),
            other => Err(format!("{other} is not a bool")),
        })
    }),
    ("tolist", || f(&[list()], |a| Ok(a[0].clone()))),
    ("toset", || {
        f(&[list()], |a| Ok(unique(arr(&a[0])?.iter().cloned())))
    }),
    ("tomap", || f(&[map()], |a| Ok(a[0].clone()))),
    // Encodings.
    ("base64encode", || {
        f(&[S], |a| {
            Ok(base64::engine::general_purpose::STANDARD
                .encode(s(&a[0])?)
                .into())
        })
    }),
    ("base64decode", || {
        f(&[S], |a| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(s(&a[0])?)
                .map_err(|e| format!("not base64: {e}"))?;
            String::from_utf8(bytes)
                .map(Value::from)
                .map_err(|_| "the decoded bytes are not UTF-8".into())
        })
    }),
    ("jsonencode", || {
        f(&[Any], |a| {
            let json = serde_json::to_string(&a[0]).map_err(|e| e.to_string())?;
            Ok(json.into())
        })
    }),
    ("jsondecode", || {
        f(&[S], |a| {
            let v: serde_json::Value =
                serde_json::from_str(s(&a[0])?).map_err(|e| format!("not JSON: {e}"))?;
            hcl::to_value(v).map_err(|e| e.to_string())
        })
    }),
    ("urlencode", || {
        f(&[S], |a| {
            let mut out = String::new();
            for b in s(&a[0])?.bytes() {
                match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                        out.push(b as char)
                    }
                    _ => out.push_str(&format!("%{b:02X}")),
                }
            }
            Ok(out.into())
        })
    }),
    // Hashes and ids.
    ("sha256", || {
        f(&[S], |a| {
            Ok(hex::encode(sha2::Sha256::digest(s(&a[0])?)).into())
        })
    }),
    ("sha512", || {
        f(&[S], |a| {
            Ok(hex::encode(sha2::Sha512::digest(s(&a[0])?)).into())
        })
    }),
    ("md5", || {
        f(
            &[S],
            |a| Ok(hex::encode(md5::Md5::digest(s(&a[0])?)).into()),
        )
    }),
    ("uuidv4", || {
        f(&[], |_| Ok(uuid::Uuid::new_v4().to_string().into()))
    }),
    ("uuidv5", || {
        f(&[S, S], |a| {
            let namespace = match s(&a[0])? {
                "dns" => uuid::Uuid::NAMESPACE_DNS,
                "url" => uuid::Uuid::NAMESPACE_URL,
                "oid" => uuid::Uuid::NAMESPACE_OID,
                "x500" => uuid::Uuid::NAMESPACE_X500,
                other => uuid::Uuid::parse_str(other).map_err(|_| {
                    format!("{other:?} is not a namespace (dns, url, oid, x500 or a UUID)")
                })?,
            };
            Ok(uuid::Uuid::new_v5(&namespace, s(&a[1])?.as_bytes())
                .to_string()
                .into())
        })
    }),
    // Dates.
    ("timestamp", || {
        f(&[], |_| {
            Ok(now()
                .replace_nanosecond(0)
                .unwrap_or_else(|_| now())
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| e.to_string())?
                .into())
        })
    }),
    ("formatdate", || {
        f(&[S, S], |a| {
            let t =
                OffsetDateTime::parse(s(&a[1])?, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| {
                        format!("{:?} is not an RFC 3339 time: {e}", s(&a[1]).unwrap_or(""))
                    })?;
            Ok(formatdate(s(&a[0])?, t)?.into())
        })
    }),
    ("timeadd", || {
        f(&[S, S], |a| {
            let t =
                OffsetDateTime::parse(s(&a[0])?, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| {
                        format!("{:?} is not an RFC 3339 time: {e}", s(&a[0]).unwrap_or(""))
                    })?;
            let d = crate::template::parse_go_duration(s(&a[1])?.trim_start_matches('-'))
                .ok_or_else(|| format!("{:?} is not a duration", s(&a[1]).unwrap_or("")))?;
            let d = time::Duration::try_from(d).map_err(|e| e.to_string())?;
            let t = if s(&a[1])?.starts_with('-') {
                t.checked_sub(d)
            } else {
                t.checked_add(d)
            }
            .ok_or("the time is out of range")?;
            Ok(t.format(&time::format_description::well_known::Rfc3339)
                .map_err(|e| e.to_string())?
                .into())
        })
    }),
    // Files: relative to the current folder, as in Packer.
    ("file", || {
        f(&[S], |a| {
            let path = s(&a[0])?;
            std::fs::read_to_string(expand(path))
                .map(Value::from)
                .map_err(|e| format!("reading {path}: {e}"))
        })
    }),
    ("fileexists", || {
        f(&[S], |a| Ok(Path::new(&expand(s(&a[0])?)).is_file().into()))
    }),
    ("templatefile", || {
        f(&[S, map()], |a| {
            let path = s(&a[0])?;
            let text = std::fs::read_to_string(expand(path))
                .map_err(|e| format!("reading {path}: {e}"))?;
            let template: hcl::Template = text
                .parse()
                .map_err(|e: hcl::Error| format!("{path}: {e}"))?;
            let mut ctx = Context::new();
            declare(&mut ctx, false);
            for (k, v) in obj(&a[1])? {
                ctx.declare_var(k.as_str(), v.clone());
            }
            use hcl::eval::Evaluate;
            template
                .evaluate(&ctx)
                .map(Value::from)
                .map_err(|e| format!("{path}: {e}"))
        })
    }),
    ("abspath", || {
        f(&[S], |a| {
            std::path::absolute(s(&a[0])?)
                .map(|p| Value::from(p.to_string_lossy().into_owned()))
                .map_err(|e| e.to_string())
        })
    }),
    ("basename", || {
        f(&[S], |a| {
            Ok(Path::new(s(&a[0])?)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
                .into())
        })
    }),
    ("dirname", || {
        f(&[S], |a| {
            let parent = Path::new(s(&a[0])?)
                .parent()
                .map(|p| p.to_string_lossy().into_owned());
            Ok(match parent.as_deref() {
                Some("") | None => ".".to_string(),
                Some(p) => p.to_string(),
            }
            .into())
        })
    }),
    ("pathexpand", || f(&[S], |a| Ok(expand(s(&a[0])?).into()))),
];

/// What `+`, `-`, `*`, `/`, `%` and unary `-` become before evaluation
/// (see `eval::Arithmetic`): integers stay exact while they fit, the rest
/// is floating point, and what has no finite answer is an error.
pub(crate) const ARITHMETIC: [&str; 6] = [
    "osci__add",
    "osci__sub",
    "osci__mul",
    "osci__div",
    "osci__mod",
    "osci__neg",
];

fn arithmetic(a: &Value, b: &Value, op: usize) -> Result<Value, String> {
    let (x, y) = (num(a)?, num(b)?);
    let ints = |v: &Value| match v {
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    if let (Some(i), Some(j)) = (ints(a), ints(b)) {
        let exact = match op {
            0 => i.checked_add(j),
            1 => i.checked_sub(j),
            2 => i.checked_mul(j),
            4 if j == 0 => return Err("modulo by zero".into()),
            4 => i.checked_rem(j),
            _ => None,
        };
        if let Some(v) = exact {
            return Ok(Value::from(v));
        }
    }
    let v = match op {
        0 => x + y,
        1 => x - y,
        2 => x * y,
        3 if y == 0.0 => return Err("division by zero".into()),
        3 => x / y,
        _ if y == 0.0 => return Err("modulo by zero".into()),
        _ => x % y,
    };
    hcl::Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(|| "the result is out of range".into())
}

/// Declares every function (and `env`, with `with_env`).
pub(crate) fn declare(ctx: &mut Context, with_env: bool) {
    for (name, def) in TABLE {
        ctx.declare_func(*name, def());
    }
    let ops: [hcl::eval::Func; 5] = [
        |a| arithmetic(&a[0], &a[1], 0),
        |a| arithmetic(&a[0], &a[1], 1),
        |a| arithmetic(&a[0], &a[1], 2),
        |a| arithmetic(&a[0], &a[1], 3),
        |a| arithmetic(&a[0], &a[1], 4),
    ];
    for (name, op) in ARITHMETIC.iter().zip(ops) {
        ctx.declare_func(*name, f(&[N, N], op));
    }
    ctx.declare_func(
        ARITHMETIC[5],
        f(&[N], |a| arithmetic(&Value::from(0), &a[0], 1)),
    );
    // Where `can` and `try` could not be settled beforehand (inside a
    // `for`), their arguments are evaluated as any function's are.
    ctx.declare_func("can", f(&[Any], |_| Ok(Value::Bool(true))));
    ctx.declare_func("try", variadic(&[Any], Any, |a| Ok(a[0].clone())));
    if with_env {
        ctx.declare_func(
            "env",
            f(&[S], |a| {
                Ok(std::env::var(s(&a[0])?).unwrap_or_default().into())
            }),
        );
    }
}

/// The values, each once, in the order first seen.
fn unique(values: impl Iterator<Item = Value>) -> Value {
    let mut out: Vec<Value> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Value::Array(out)
}

fn s(v: &Value) -> Result<&str, String> {
    v.as_str()
        .ok_or_else(|| format!("a string is required, not {v}"))
}

fn arr(v: &Value) -> Result<&Vec<Value>, String> {
    v.as_array()
        .ok_or_else(|| format!("a list is required, not {v}"))
}

fn obj(v: &Value) -> Result<&hcl::Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| format!("a map is required, not {v}"))
}

fn num(v: &Value) -> Result<f64, String> {
    match v {
        Value::Number(n) => n.as_f64().ok_or_else(|| "not a finite number".into()),
        other => Err(format!("a number is required, not {other}")),
    }
}

fn nums(args: &[Value]) -> Result<impl Iterator<Item = f64>, String> {
    Ok(args
        .iter()
        .map(num)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter())
}

fn int(v: &Value) -> Result<i64, String> {
    let x = num(v)?;
    if x.fract() != 0.0 || x.abs() > 9.0e15 {
        return Err(format!("a whole number is required, not {x}"));
    }
    Ok(x as i64)
}

/// A number, whole when it is.
fn number(x: f64) -> Result<Value, String> {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Ok(Value::from(x as i64))
    } else {
        hcl::Number::from_f64(x)
            .map(Value::Number)
            .ok_or_else(|| "the result is not a finite number".into())
    }
}

/// A primitive as a string, as HCL converts it.
fn text(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!("a string is required, not {other}")),
    }
}

fn title(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut start = true;
    for c in t.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = !c.is_alphanumeric();
    }
    out
}

fn expand(path: &str) -> String {
    match path.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(home) => Path::new(&home).join(rest).to_string_lossy().into_owned(),
            None => path.to_string(),
        },
        None => path.to_string(),
    }
}

fn regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regular expression: {e}"))
}

/// `replace`: a `/…/` substring is a regular expression, as in Terraform.
fn replace(t: &str, find: &str, with: &str) -> Result<Value, String> {
    if find.len() > 1 && find.starts_with('/') && find.ends_with('/') {
        let re = regex(&find[1..find.len() - 1])?;
        return Ok(re.replace_all(t, with).into_owned().into());
    }
    Ok(t.replace(find, with).into())
}

fn regex_match(pattern: &str, t: &str, all: bool) -> Result<Value, String> {
    let re = regex(pattern)?;
    let one = |c: regex::Captures| -> Value {
        let names: Vec<Option<&str>> = re.capture_names().collect();
        if names.iter().skip(1).any(|n| n.is_some()) {
            Value::Object(
                names
                    .iter()
                    .enumerate()
                    .filter_map(|(i, n)| {
                        n.map(|n| {
                            (
                                n.to_string(),
                                Value::from(c.get(i).map_or("", |m| m.as_str())),
                            )
                        })
                    })
                    .collect(),
            )
        } else if re.captures_len() > 1 {
            Value::Array(
                (1..re.captures_len())
                    .map(|i| Value::from(c.get(i).map_or("", |m| m.as_str())))
                    .collect(),
            )
        } else {
            Value::from(c.get(0).map_or("", |m| m.as_str()))
        }
    };
    if all {
        Ok(Value::Array(re.captures_iter(t).map(one).collect()))
    } else {
        re.captures(t)
            .map(one)
            .ok_or_else(|| "the pattern did not match".to_string())
    }
}

/// `format`'s verbs: `%s`, `%d`, `%f` (with a precision), `%q`, `%v`,
/// `%t`, `%%`.
fn format(spec: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut next = args.iter();
    let mut chars = spec.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut flags = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || d == '.' || d == '-' || d == '+' || d == '#' {
                flags.push(d);
                chars.next();
            } else {
                break;
            }
        }
        let verb = chars.next().ok_or("the format ends with %")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = next
            .next()
            .ok_or_else(|| format!("not enough arguments for %{verb}"))?;
        let piece = match verb {
            's' | 'v' => match arg {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => text(arg)?,
                other => serde_json::to_string(other).map_err(|e| e.to_string())?,
            },
            'q' => serde_json::to_string(&text(arg)?).map_err(|e| e.to_string())?,
            't' => match arg {
                Value::Bool(b) => b.to_string(),
                other => return Err(format!("%t needs a bool, not {other}")),
            },
            'd' => int(arg)?.to_string(),
            'f' => {
                let precision = flags
                    .split_once('.')
                    .and_then(|(_, p)| p.parse::<usize>().ok())
                    .unwrap_or(6)
                    .min(100);
                format!("{:.*}", precision, num(arg)?)
            }
            other => return Err(format!("unsupported format verb %{other}")),
        };
        // Width: `%5s`, `%-5s` (left), `%05d` (zeros).
        let left = flags.starts_with('-');
        let digits = flags.trim_start_matches(['-', '+', '#']);
        let zero = digits.starts_with('0') && !left;
        let width: usize = digits
            .split('.')
            .next()
            .unwrap_or("")
            .parse()
            .unwrap_or(0)
            .min(1000);
        let pad = width.saturating_sub(piece.chars().count());
        if left {
            out.push_str(&piece);
            out.push_str(&" ".repeat(pad));
        } else if zero && matches!(verb, 'd' | 'f') {
            let (sign, digits) = match piece.strip_prefix('-') {
                Some(rest) => ("-", rest),
                None => ("", piece.as_str()),
            };
            out.push_str(sign);
            out.push_str(&"0".repeat(pad));
            out.push_str(digits);
        } else {
            out.push_str(&" ".repeat(pad));
            out.push_str(&piece);
        }
    }
    Ok(out)
}

/// `formatdate`'s spec: `YYYY`, `YY`, `MM`, `M`, `MMM`, `MMMM`, `DD`, `D`,
/// `EEE`, `EEEE`, `hh`, `h`, `HH`, `H`, `mm`, `m`, `ss`, `s`, `aa`, `AA`,
/// `ZZZ`, `Z`, `ZZZZ`, `ZZZZZ`, and quoted literals.
fn formatdate(spec: &str, t: OffsetDateTime) -> Result<String, String> {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    let weekday = t.weekday().to_string();
    let month = MONTHS[t.month() as usize - 1];
    let chars: Vec<char> = spec.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == '\'')
                .ok_or("an unterminated quoted literal")?;
            if end == 0 {
                out.push('\'');
            } else {
                out.extend(&chars[i + 1..i + 1 + end]);
            }
            i += end + 2;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let n = chars[i..].iter().take_while(|&&d| d == c).count();
        let hour12 = match t.hour() % 12 {
            0 => 12,
            h => h,
        };
        let offset = t.offset();
        let piece = match (c, n) {
            ('Y', 4) => format!("{:04}", t.year()),
            ('Y', 2) => format!("{:02}", t.year() % 100),
            ('M', 1) => (t.month() as u8).to_string(),
            ('M', 2) => format!("{:02}", t.month() as u8),
            ('M', 3) => month[..3].to_string(),
            ('M', 4) => month.to_string(),
            ('D', 1) => t.day().to_string(),
            ('D', 2) => format!("{:02}", t.day()),
            ('E', 3) => weekday[..3].to_string(),
            ('E', 4) => weekday.clone(),
            ('h', 1) => t.hour().to_string(),
            ('h', 2) => format!("{:02}", t.hour()),
            ('H', 1) => hour12.to_string(),
            ('H', 2) => format!("{hour12:02}"),
            ('m', 1) => t.minute().to_string(),
            ('m', 2) => format!("{:02}", t.minute()),
            ('s', 1) => t.second().to_string(),
            ('s', 2) => format!("{:02}", t.second()),
            ('a', 2) => if t.hour() < 12 { "am" } else { "pm" }.to_string(),
            ('A', 2) => if t.hour() < 12 { "AM" } else { "PM" }.to_string(),
            ('Z', 3) if offset.is_utc() => "UTC".to_string(),
            ('Z', 3) | ('Z', 5) => format!(
                "{}{:02}:{:02}",
                if offset.is_negative() { '-' } else { '+' },
                offset.whole_hours().abs(),
                offset.minutes_past_hour().abs()
            ),
            ('Z', 1) if offset.is_utc() => "Z".to_string(),
            ('Z', 1) | ('Z', 4) => format!(
                "{}{:02}{:02}",
                if offset.is_negative() { '-' } else { '+' },
                offset.whole_hours().abs(),
                offset.minutes_past_hour().abs()
            ),
            _ => {
                return Err(format!(
                    "invalid date format verb {:?}: use YYYY, MM, DD, hh, mm, ss, … or quote literal letters",
                    chars[i..i + n].iter().collect::<String>()
                ));
            }
        };
        out.push_str(&piece);
        i += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hcl::eval::Evaluate;

    fn eval(expr: &str) -> Result<Value, String> {
        let mut ctx = Context::new();
        declare(&mut ctx, true);
        let e: hcl::Expression = hcl_edit::parser::parse_expr(expr).unwrap().into();
        e.evaluate(&ctx).map_err(|e| e.to_string())
    }

    #[test]
    fn functions_answer_as_packer_does() {
        for (expr, expected) in [
            (r#"upper("web")"#, Value::from("WEB")),
            (r#"format("%s-%03d", "web", 7)"#, Value::from("web-007")),
            (r#"join("-", ["a", "b"], ["c"])"#, Value::from("a-b-c")),
            (r#"split(",", "a,b")"#, Value::from_iter(["a", "b"])),
            (r#"replace("a.b.c", ".", "-")"#, Value::from("a-b-c")),
            (r#"replace("v1.2.3", "/[.]/", "_")"#, Value::from("v1_2_3")),
            (
                r#"regex_replace("golden-2024", "[0-9]+", "x")"#,
                Value::from("golden-x"),
            ),
            (r#"substr("golden", 1, 3)"#, Value::from("old")),
            (r#"length({a = 1, b = 2})"#, Value::from(2)),
            (r#"lookup({a = 1}, "b", 5)"#, Value::from(5)),
            (r#"merge({a = 1}, {a = 2, b = 3})["a"]"#, Value::from(2)),
            (r#"base64decode(base64encode("hé"))"#, Value::from("hé")),
            (
                r#"jsondecode(jsonencode({a = [1, true]}))["a"][1]"#,
                Value::Bool(true),
            ),
            (
                r#"sha256("")"#,
                Value::from("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            ),
            (
                r#"formatdate("YYYY-MM-DD'T'hh:mm", "2024-02-03T04:05:06Z")"#,
                Value::from("2024-02-03T04:05"),
            ),
            (
                r#"formatdate("EEE, DD MMM YYYY hh:mm:ss ZZZ", "2024-02-03T04:05:06Z")"#,
                Value::from("Sat, 03 Feb 2024 04:05:06 UTC"),
            ),
            (
                r#"timeadd("2024-02-03T04:05:06Z", "1h30m")"#,
                Value::from("2024-02-03T05:35:06Z"),
            ),
            (r#"tonumber("12") + 1"#, Value::from(13)),
            (r#"max(3, 7.5, 2)"#, Value::from(7.5)),
            (
                r#"uuidv5("dns", "osci.example")"#,
                Value::from("2af8dd49-ef30-5aff-8ee9-ce74f413017e"),
            ),
            (
                r#"regex("(\\d+)\\.(\\d+)", "v12.3")"#,
                Value::from_iter(["12", "3"]),
            ),
            (r#"title("golden image")"#, Value::from("Golden Image")),
            (r#"range(3)"#, Value::from_iter([0, 1, 2])),
            (r#"keys({b = 1, a = 2})"#, Value::from_iter(["a", "b"])),
        ] {
            match eval(expr) {
                Ok(v) => assert_eq!(v, expected, "{expr}"),
                Err(e) => panic!("{expr}: {e}"),
            }
        }
        assert_eq!(eval("uuidv4()").unwrap().as_str().unwrap().len(), 36);
        for bad in [
            r#"substr(1)"#,
            r#"regex("(", "x")"#,
            r#"element([], 0)"#,
            r#"formatdate("Q", "2024-02-03T04:05:06Z")"#,
        ] {
            assert!(eval(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn arithmetic_answers_errors_not_panics() {
        let eval = |e: &str| {
            let mut scope = super::super::eval::Scope::new(false);
            scope.sensitive.clear();
            scope.eval(&hcl_edit::parser::parse_expr(e).unwrap())
        };
        assert_eq!(eval("1 + 2 * 3"), Ok(Value::from(7)));
        assert_eq!(eval("7 % 4 - -1"), Ok(Value::from(4)));
        assert_eq!(eval("1 / 4"), Ok(Value::from(0.25)));
        assert_eq!(eval("\"n-${2 * 21}\""), Ok(Value::from("n-42")));
        for bad in [
            "5 % 0",
            "1 / 0",
            "1e308 * 10",
            "-9223372036854775808 - 1e308 * 1e10",
        ] {
            assert!(eval(bad).is_err(), "{bad}");
        }
        // Too large for an integer: floating point.
        assert!(eval("9223372036854775807 + 1").is_ok());
        assert!(eval("-(-9223372036854775808)").is_ok());
    }

    #[test]
    fn a_load_makes_a_bounded_number_of_elements() {
        let _load = Load::start(OffsetDateTime::now_utc());
        let e = eval("[for i in range(2000) : range(2000)]").unwrap_err();
        assert!(e.contains("more than 1000000 list elements"), "{e}");
        assert!(
            eval("format(\"%.999999999f\", 1)")
                .unwrap()
                .as_str()
                .unwrap()
                .len()
                < 200
        );
    }

    #[test]
    fn timestamp_reads_the_clock_of_the_load() {
        let _load = Load::start(time::macros::datetime!(2024-05-06 07:08:09 UTC));
        assert_eq!(
            eval("timestamp()").unwrap(),
            Value::from("2024-05-06T07:08:09Z")
        );
    }
}
