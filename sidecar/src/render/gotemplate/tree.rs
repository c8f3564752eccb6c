//! Walks a parsed template: every function it names must exist, and each call of one of census'
//! functions is bound to a copy that reports the call's line and column when it fails.

use std::sync::Arc;

use gotmpl::parse::{CommandNode, Expr, ListNode, Node, PipeNode, Pos, SmolStr};
use gotmpl::{TemplateError, ValueFunc};

use super::BUILTINS;

/// A name error: line, column, reason.
pub type Unknown = (usize, usize, String);

pub fn empty() -> ListNode {
    ListNode { pos: Pos::new(0, 1), nodes: Vec::new() }
}

/// Line (1-based) and column (1-based, in characters) of a byte offset of `src`.
fn line_column(src: &str, pos: Pos) -> (usize, usize) {
    let offset = pos.offset.min(src.len());
    let before = src.get(..offset).unwrap_or(src);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (pos.line.max(1), before[line_start..].chars().count() + 1)
}

/// Rewrites every call of a function in `funcs` (that is not Go's own) to a per-call copy, and
/// refuses names that are neither.
pub fn bind_calls(
    list: &mut ListNode,
    src: &str,
    funcs: &mut std::collections::BTreeMap<String, ValueFunc>,
) -> Result<(), Unknown> {
    let mut binder = Binder { src, funcs };
    binder.list(list)
}

/// consul-template's one method templates call, `ServiceTags.Contains`: `.Tags.Contains "x"` (or
/// `$s.Tags.Contains "x"`) becomes `contains "x" .Tags`, since template values have no methods.
fn tags_contains_method(command: &mut CommandNode) {
    let [first, _] = command.args.as_slice() else { return };
    let receiver = match first {
        Expr::Field(pos, fields) if fields.last().is_some_and(|f| f == "Contains") => {
            match &fields[..fields.len() - 1] {
                [] => Expr::Dot(*pos),
                rest => Expr::Field(*pos, rest.to_vec()),
            }
        }
        Expr::Variable(pos, name, fields) if fields.last().is_some_and(|f| f == "Contains") => {
            Expr::Variable(*pos, name.clone(), fields[..fields.len() - 1].to_vec())
        }
        _ => return,
    };
    let pos = first.pos();
    let needle = command.args.remove(1);
    command.args = vec![Expr::Identifier(pos, SmolStr::new("contains")), needle, receiver];
}

/// `scratch.Set "k" v` parses as a chain on the function `scratch`; it is read as the function
/// named `scratch.Set`.
fn scratch_method(command: &mut CommandNode) {
    let Some(Expr::Chain(pos, inner, fields)) = command.args.first() else { return };
    let (Expr::Identifier(_, name), [method]) = (inner.as_ref(), fields.as_slice()) else { return };
    if name != "scratch" {
        return;
    }
    command.args[0] = Expr::Identifier(*pos, SmolStr::new(format!("scratch.{method}")));
}

struct Binder<'a> {
    src: &'a str,
    funcs: &'a mut std::collections::BTreeMap<String, ValueFunc>,
}

impl Binder<'_> {
    fn list(&mut self, list: &mut ListNode) -> Result<(), Unknown> {
        list.nodes.iter_mut().try_for_each(|node| self.node(node))
    }

    fn node(&mut self, node: &mut Node) -> Result<(), Unknown> {
        match node {
            Node::List(list) => self.list(list),
            Node::Action(action) => self.pipe(&mut action.pipe),
            Node::If(branch) | Node::Range(branch) | Node::With(branch) => {
                self.pipe(&mut branch.pipe)?;
                self.list(&mut branch.body)?;
                branch.else_body.as_mut().map_or(Ok(()), |body| self.list(body))
            }
            Node::Template(call) => call.pipe.as_mut().map_or(Ok(()), |pipe| self.pipe(pipe)),
            Node::Define(define) => self.list(&mut define.body),
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => Ok(()),
        }
    }

    fn pipe(&mut self, pipe: &mut PipeNode) -> Result<(), Unknown> {
        for command in &mut pipe.commands {
            tags_contains_method(command);
            scratch_method(command);
            for arg in &mut command.args {
                self.expr(arg)?;
            }
        }
        Ok(())
    }

    fn expr(&mut self, expr: &mut Expr) -> Result<(), Unknown> {
        match expr {
            Expr::Identifier(pos, name) => {
                let (line, column) = line_column(self.src, *pos);
                if BUILTINS.contains(&name.as_str()) {
                    return Ok(());
                }
                let Some(base) = self.funcs.get(name.as_str()).cloned() else {
                    return Err((line, column, format!("function {:?} not defined", name.as_str())));
                };
                let bound = format!("{name}@{line}:{column}");
                let at = format!("line {line}, column {column}: ");
                let f: ValueFunc = Arc::new(move |args| {
                    base(args).map_err(|e| match e {
                        TemplateError::Exec(message) => TemplateError::Exec(format!("{at}{message}")),
                        other => TemplateError::Exec(format!("{at}{other}")),
                    })
                });
                self.funcs.insert(bound.clone(), f);
                *name = SmolStr::new(bound);
                Ok(())
            }
            Expr::Pipe(_, pipe) => self.pipe(pipe),
            Expr::Chain(_, inner, _) => self.expr(inner),
            Expr::Dot(_)
            | Expr::Field(..)
            | Expr::Variable(..)
            | Expr::String(..)
            | Expr::Number(..)
            | Expr::Bool(..)
            | Expr::Nil(_) => Ok(()),
        }
    }
}
