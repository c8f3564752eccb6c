//! consul-template's own templates: Go's text/template language (the `gotmpl` crate) with
//! consul-template's functions bound to the catalog data the watchers fetch.
//!
//! At load, every function a template names is checked (an unknown one is an error naming the
//! file, line and column, as Go's parser reports it) and each call of one of census' functions is
//! tied to its place in the file, so an error while rendering names the line too.

mod catalog;
mod clock;
mod data;
mod lists;
mod math;
mod plugin;
mod scratch;
mod sockaddr;
mod sprig;
mod text;
mod toml;
mod tree;
pub mod value;
mod yaml;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, Weak};

use gotmpl::{MissingKey, TemplateError as GoError, Value, ValueFunc};

use self::value::{Args, fail};
use super::helpers::Shared;
use super::template::TemplateError;

/// Go's own template functions (always defined).
pub const BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf", "println",
    "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

/// How a Go template is read and run: consul-template's `left_delimiter`, `right_delimiter` and
/// `error_on_missing_key`, and whether `plugin` may run commands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoOptions {
    pub left_delimiter: Option<String>,
    pub right_delimiter: Option<String>,
    pub error_on_missing_key: bool,
    /// `plugin` runs commands (off unless `-enable-plugins`).
    pub plugins: bool,
}

/// One compiled Go template.
pub struct GoTemplate {
    path: PathBuf,
    name: String,
    template: Arc<gotmpl::Template>,
    /// consul-template's `scratch`, emptied before each render.
    scratch: Arc<scratch::Scratch>,
}

/// Every function of consul-template census provides, by name.
fn functions(
    shared: &Arc<Shared>,
    this: &Arc<OnceLock<Weak<gotmpl::Template>>>,
    plugins: bool,
) -> BTreeMap<String, ValueFunc> {
    let mut funcs: BTreeMap<String, ValueFunc> = BTreeMap::new();
    for (name, f) in catalog::FUNCTIONS {
        let (shared, f) = (shared.clone(), *f);
        funcs.insert(name.to_string(), Arc::new(move |args: &[Value]| f(&shared, args)));
    }
    for (name, f) in
        text::FUNCTIONS.iter().chain(lists::FUNCTIONS).chain(data::FUNCTIONS).chain(math::FUNCTIONS)
    {
        let f = *f;
        funcs.insert(name.to_string(), Arc::new(move |args: &[Value]| f(args)));
    }
    for (name, f) in sprig::functions() {
        funcs.insert(name, Arc::new(move |args: &[Value]| f(args)));
    }
    funcs.insert("timestamp".into(), Arc::new(clock::timestamp));
    funcs.insert("plugin".into(), Arc::new(move |args: &[Value]| plugin::plugin(args, plugins)));
    let this = this.clone();
    funcs.insert("executeTemplate".into(), Arc::new(move |args: &[Value]| execute_template(&this, args)));
    funcs
}

thread_local! {
    /// Nesting of `executeTemplate` calls, so a template that calls itself fails instead of
    /// overflowing the stack.
    static NESTING: Cell<usize> = const { Cell::new(0) };
}

/// `executeTemplate NAME [DATA]`: a `define`d template's output as a string.
fn execute_template(this: &OnceLock<Weak<gotmpl::Template>>, values: &[Value]) -> Result<Value, GoError> {
    let args = Args::new("executeTemplate", values, 1, 2)?;
    let name = args.str(0)?;
    let data = if args.count() == 2 { args.value(1).clone() } else { Value::Nil };
    let template =
        this.get().and_then(Weak::upgrade).ok_or_else(|| fail("executeTemplate: template not ready"))?;
    let depth = NESTING.with(|n| n.replace(n.get() + 1));
    let result = if depth >= 64 {
        Err(fail(format!("executeTemplate {name:?}: nested more than 64 deep")))
    } else {
        template.execute_template_to_string(name, &data).map(value::string)
    };
    NESTING.with(|n| n.set(depth));
    result
}

impl GoTemplate {
    /// Parses `text` (the file at `path`) and checks every function it names.
    pub fn compile(
        path: &Path,
        text: &str,
        options: &GoOptions,
        shared: &Arc<Shared>,
    ) -> Result<GoTemplate, TemplateError> {
        let name = path.display().to_string();
        let this = Arc::new(OnceLock::new());
        let mut funcs = functions(shared, &this, options.plugins);
        let scratch = Arc::new(scratch::Scratch::default());
        funcs.extend(scratch::functions(&scratch));
        let mut parser = gotmpl::Template::new(&name).funcs(funcs.clone());
        if let (Some(l), Some(r)) = (&options.left_delimiter, &options.right_delimiter) {
            parser = parser.delims(l, r);
        } else if options.left_delimiter.is_some() || options.right_delimiter.is_some() {
            let l = options.left_delimiter.as_deref().unwrap_or("{{");
            let r = options.right_delimiter.as_deref().unwrap_or("}}");
            parser = parser.delims(l, r);
        }
        let parsed = parser.parse(text).map_err(|e| syntax_error(path, e))?;
        let mut trees = Vec::new();
        for tree_name in parsed.templates() {
            if let Some(found) = parsed.lookup(tree_name) {
                trees.push((tree_name.to_string(), found.clone()));
            }
        }
        if !trees.iter().any(|(n, _)| *n == name) {
            trees.push((name.clone(), tree::empty()));
        }
        for (_, body) in &mut trees {
            tree::bind_calls(body, text, &mut funcs).map_err(|(line, column, reason)| {
                TemplateError::Syntax { path: path.to_path_buf(), line, column, reason }
            })?;
        }
        let mut template = gotmpl::Template::new(&name).funcs(funcs);
        if options.error_on_missing_key {
            template = template.missing_key(MissingKey::Error);
        }
        for (tree_name, body) in trees {
            template = template.add_parse_tree(&tree_name, body);
        }
        let template = Arc::new(template);
        let _ = this.set(Arc::downgrade(&template));
        Ok(GoTemplate { path: path.to_path_buf(), name, template, scratch })
    }

    /// Executes the template (dot is nil, as in consul-template); an error names the file and,
    /// for census' functions, the line and column of the call.
    pub fn render(&self) -> Result<String, String> {
        self.scratch.clear();
        self.template.execute_template_to_string(&self.name, &Value::Nil).map_err(|e| {
            let text = e.to_string();
            let text = text.strip_prefix("execution error: ").unwrap_or(&text);
            let sep = if text.starts_with("line ") { " " } else { ": " };
            format!("template {}{sep}{text}", self.path.display())
        })
    }
}

fn syntax_error(path: &Path, e: GoError) -> TemplateError {
    let (line, column, reason) = match e {
        GoError::Parse { line, col, message, .. } | GoError::Lex { line, col, message, .. } => {
            (line, col, message)
        }
        other => (0, 0, other.to_string()),
    };
    TemplateError::Syntax { path: path.to_path_buf(), line, column, reason }
}

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
mod doc_examples_tests;
