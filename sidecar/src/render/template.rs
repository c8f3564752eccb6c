//! Template specs (`SRC:DEST[:COMMAND]`), the quiescence window (`MIN[:MAX]`), and rendering a set of
//! templates: handlebars in strict mode with the catalog helpers, or consul-template's Go templates.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use census_client::parse_duration;
use handlebars::Handlebars;
use serde_json::json;

use super::deps::Dependency;
use super::gotemplate::{GoOptions, GoTemplate};
use super::helpers::{self, Pass, Shared};
use super::output::FileOptions;

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("invalid -template {0:?}: expected SRC:DEST[:COMMAND]")]
    Spec(String),
    #[error("invalid -wait {0:?}: expected MIN[:MAX] durations such as 2s:10s")]
    Wait(String),
    #[error("cannot read template {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("template {path} line {line}, column {column}: {reason}")]
    Syntax { path: PathBuf, line: usize, column: usize, reason: String },
    #[error("unknown template language {0:?}: expected go or handlebars")]
    Language(String),
}

/// The language a template is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Language {
    Handlebars,
    /// Go's text/template with consul-template's functions.
    Go,
}

impl Language {
    /// By extension: `.ctmpl`, `.tmpl` and `.tpl` are consul-template's; anything else handlebars.
    pub fn of_path(path: &Path) -> Language {
        match path.extension().and_then(|e| e.to_str()) {
            Some("ctmpl" | "tmpl" | "tpl") => Language::Go,
            _ => Language::Handlebars,
        }
    }
}

impl std::str::FromStr for Language {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "go" | "gotemplate" | "consul-template" => Ok(Language::Go),
            "handlebars" | "hbs" => Ok(Language::Handlebars),
            _ => Err(TemplateError::Language(s.to_string())),
        }
    }
}

impl TryFrom<String> for Language {
    type Error = TemplateError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// One template: where it is read, where its output goes, and what to run after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSpec {
    pub source: PathBuf,
    pub destination: PathBuf,
    pub command: Option<String>,
    pub language: Language,
    /// Delimiters and missing-key handling of a Go template.
    pub go: GoOptions,
    /// The written file's mode and backup.
    pub file: FileOptions,
    /// The template's text, when given inline rather than read from `source`.
    pub contents: Option<String>,
    /// This template's own quiescence (consul-template's per-template `wait`).
    pub wait: Option<Wait>,
    /// How long `command` may run before it is killed (consul-template's `command_timeout`).
    pub command_timeout: Duration,
}

impl TemplateSpec {
    /// A spec whose language follows the source's extension.
    pub fn new(source: PathBuf, destination: PathBuf, command: Option<String>) -> TemplateSpec {
        let language = Language::of_path(&source);
        TemplateSpec {
            source,
            destination,
            command,
            language,
            go: GoOptions::default(),
            file: FileOptions::default(),
            contents: None,
            wait: None,
            command_timeout: super::output::COMMAND_TIMEOUT,
        }
    }
}

impl std::str::FromStr for TemplateSpec {
    type Err = TemplateError;

    /// `SRC:DEST[:COMMAND]`; the command may itself contain colons.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut parts = s.splitn(3, ':');
        let (Some(src), Some(dest)) = (parts.next(), parts.next()) else {
            return Err(TemplateError::Spec(s.to_string()));
        };
        if src.is_empty() || dest.is_empty() {
            return Err(TemplateError::Spec(s.to_string()));
        }
        let command = parts.next().map(str::trim).filter(|c| !c.is_empty()).map(String::from);
        Ok(TemplateSpec::new(src.into(), dest.into(), command))
    }
}

/// Quiescence: render once no change has come for `min`, and at the latest `max` after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub min: Duration,
    pub max: Duration,
}

impl std::str::FromStr for Wait {
    type Err = TemplateError;

    /// `MIN[:MAX]`; without MAX, 4 × MIN (as consul-template).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || TemplateError::Wait(s.to_string());
        let (min, max) = match s.split_once(':') {
            Some((min, max)) => {
                (parse_duration(min).map_err(|_| err())?, parse_duration(max).map_err(|_| err())?)
            }
            None => {
                let min = parse_duration(s).map_err(|_| err())?;
                (min, min * 4)
            }
        };
        if max < min {
            return Err(err());
        }
        Ok(Wait { min, max })
    }
}

/// The templates of one sidecar, compiled, with the helpers bound to the shared catalog data.
pub struct TemplateSet {
    hb: Handlebars<'static>,
    /// The compiled Go templates, by index in `specs` (handlebars ones live in `hb`).
    go: Vec<Option<GoTemplate>>,
    pub specs: Vec<TemplateSpec>,
    pub shared: Arc<Shared>,
}

/// The output of one render pass over every template.
#[derive(Debug)]
pub struct Rendered {
    /// Per template, in spec order: the text, or the error with its template line.
    pub outputs: Vec<Result<String, String>>,
    /// Per template, in spec order: the data it read that has not arrived (or that holds its
    /// output back, as a missing `key` does); its output is written only when this is empty.
    pub waiting: Vec<BTreeSet<Dependency>>,
    /// Per template, in spec order: what it read.
    pub used: Vec<BTreeSet<Dependency>>,
    /// Per template: held back by its own `wait` (written on a later pass).
    pub held: Vec<bool>,
    /// What every template read, and lacked, together.
    pub pass: Pass,
}

impl Rendered {
    /// Whether template `i` has everything it read.
    pub fn ready(&self, i: usize) -> bool {
        self.waiting.get(i).is_some_and(BTreeSet::is_empty) && !self.held.get(i).copied().unwrap_or(false)
    }

    /// Per template, in spec order: its output when it is ready, `None` while it waits.
    pub fn into_ready(self) -> impl Iterator<Item = Option<Result<String, String>>> {
        let ready = self.waiting.iter().zip(&self.held).map(|(waiting, held)| waiting.is_empty() && !held);
        self.outputs.into_iter().zip(ready.collect::<Vec<_>>()).map(|(output, ready)| ready.then_some(output))
    }
}

impl TemplateSet {
    /// Reads and compiles every template; a syntax error names the file, line and column.
    pub fn load(specs: Vec<TemplateSpec>, shared: Arc<Shared>) -> Result<TemplateSet, TemplateError> {
        let mut hb = Self::registry(&shared);
        let mut go = Vec::new();
        for spec in &specs {
            let text = match &spec.contents {
                Some(text) => text.clone(),
                None => std::fs::read_to_string(&spec.source)
                    .map_err(|source| TemplateError::Read { path: spec.source.clone(), source })?,
            };
            go.push(Self::compile(&mut hb, spec, &text, &shared)?);
        }
        Ok(TemplateSet { hb, go, specs, shared })
    }

    /// A handlebars set from template text (tests, benchmarks).
    pub fn from_text(text: &str, shared: Arc<Shared>) -> Result<TemplateSet, TemplateError> {
        Self::from_text_in(Language::Handlebars, text, shared)
    }

    /// A set of one template in `language` from its text (tests, benchmarks).
    pub fn from_text_in(
        language: Language,
        text: &str,
        shared: Arc<Shared>,
    ) -> Result<TemplateSet, TemplateError> {
        let mut spec = TemplateSpec::new("inline".into(), "inline.out".into(), None);
        spec.language = language;
        let mut hb = Self::registry(&shared);
        let go = vec![Self::compile(&mut hb, &spec, text, &shared)?];
        Ok(TemplateSet { hb, go, specs: vec![spec], shared })
    }

    /// Strict mode (a misspelt field is an error), no HTML escaping, the catalog helpers.
    fn registry(shared: &Arc<Shared>) -> Handlebars<'static> {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        helpers::register(&mut hb, shared);
        hb
    }

    /// Compiles one template: into `hb` for handlebars, or as the returned Go template.
    fn compile(
        hb: &mut Handlebars<'static>,
        spec: &TemplateSpec,
        text: &str,
        shared: &Arc<Shared>,
    ) -> Result<Option<GoTemplate>, TemplateError> {
        if spec.language == Language::Go {
            return GoTemplate::compile(&spec.source, text, &spec.go, shared).map(Some);
        }
        let name = spec.source.display().to_string();
        hb.register_template_string(&name, text).map_err(|e| {
            let (line, column) = e.pos().unwrap_or((0, 0));
            TemplateError::Syntax { path: spec.source.clone(), line, column, reason: e.reason().to_string() }
        })?;
        Ok(None)
    }

    /// Renders every template once, recording which catalog data it used and which was missing.
    pub fn render(&self) -> Rendered {
        let mut rendered = Rendered {
            outputs: Vec::new(),
            waiting: Vec::new(),
            used: Vec::new(),
            held: vec![false; self.specs.len()],
            pass: Pass::default(),
        };
        for (spec, go) in self.specs.iter().zip(&self.go) {
            self.shared.begin_pass();
            let output = match go {
                Some(go) => go.render(),
                None => {
                    let name = spec.source.display().to_string();
                    self.hb.render(&name, &json!({})).map_err(|e| {
                        let at = match (e.line_no, e.column_no) {
                            (Some(l), Some(c)) => format!(" line {l}, column {c}"),
                            _ => String::new(),
                        };
                        format!("template {name}{at}: {}", e.reason())
                    })
                }
            };
            let pass = self.shared.end_pass();
            rendered.outputs.push(output);
            rendered.pass.used.extend(pass.used.iter().cloned());
            rendered.pass.missing.extend(pass.missing.iter().cloned());
            rendered.pass.refused.extend(pass.refused);
            rendered.waiting.push(pass.missing);
            rendered.used.push(pass.used);
        }
        rendered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_specs_and_waits() {
        let spec: TemplateSpec = "in.hbs:/etc/nginx/conf.d/x.conf:nginx -s reload".parse().expect("spec");
        assert_eq!(spec.command.as_deref(), Some("nginx -s reload"));
        let spec: TemplateSpec = "in.hbs:out.conf".parse().expect("spec");
        assert_eq!((spec.destination.to_str(), spec.command), (Some("out.conf"), None));
        assert!("in.hbs".parse::<TemplateSpec>().is_err());
        let wait: Wait = "2s".parse().expect("wait");
        assert_eq!((wait.min, wait.max), (Duration::from_secs(2), Duration::from_secs(8)));
        let wait: Wait = "500ms:3s".parse().expect("wait");
        assert_eq!((wait.min, wait.max), (Duration::from_millis(500), Duration::from_secs(3)));
        assert!("3s:1s".parse::<Wait>().is_err());
        assert!("soon".parse::<Wait>().is_err());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let shared = Arc::new(Shared::new(0));
        let Err(e) = TemplateSet::from_text("line one\n{{#each (services)}}\nno close\n", shared) else {
            panic!("unclosed block accepted")
        };
        assert!(e.to_string().contains("line"), "{e}");
    }
}
