//! Parsing Consul's filter expressions (`?filter=`): tokens, then a recursive-descent parser with
//! the usual precedence (`not` binds tighter than `and`, `and` tighter than `or`).

use super::FilterError;

/// A path into a JSON item: `Service.Meta["env"]` is `["Service", "Meta", "env"]`.
pub type Selector = Vec<String>;

#[derive(Debug, Clone)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Match(Match),
}

#[derive(Debug, Clone)]
pub enum Match {
    Equal(Selector, String),
    NotEqual(Selector, String),
    IsEmpty(Selector),
    IsNotEmpty(Selector),
    /// `"v" in Sel` and `Sel contains "v"`.
    Contains(Selector, String),
    NotContains(Selector, String),
    Matches(Selector, regex::Regex),
    NotMatches(Selector, regex::Regex),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(String),
    Dot,
    LBracket,
    RBracket,
    LParen,
    RParen,
    Eq,
    Ne,
}

fn describe(token: Option<&(usize, Token)>) -> String {
    match token {
        None => "end of expression".into(),
        Some((_, Token::Ident(s))) => format!("{s:?}"),
        Some((_, Token::Str(s))) => format!("string {s:?}"),
        Some((_, Token::Num(s))) => format!("number {s}"),
        Some((_, t)) => format!("{t:?}"),
    }
}

fn lex(input: &str) -> Result<Vec<(usize, Token)>, FilterError> {
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' | ')' | '[' | ']' | '.' => {
                let token = match c {
                    '(' => Token::LParen,
                    ')' => Token::RParen,
                    '[' => Token::LBracket,
                    ']' => Token::RBracket,
                    _ => Token::Dot,
                };
                tokens.push((at, token));
                i += 1;
            }
            '=' | '!' => {
                if chars.get(i + 1).map(|(_, c)| *c) != Some('=') {
                    return Err(FilterError::syntax(at, format!("expected \"{c}=\"")));
                }
                tokens.push((at, if c == '=' { Token::Eq } else { Token::Ne }));
                i += 2;
            }
            '"' | '`' => {
                let (text, next) = lex_string(&chars, i)?;
                tokens.push((at, Token::Str(text)));
                i = next;
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(|(_, d)| d.is_ascii_digit())) =>
            {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].1.is_ascii_digit() || chars[i].1 == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().map(|(_, c)| c).collect();
                if text.parse::<f64>().is_err() {
                    return Err(FilterError::syntax(at, format!("invalid number {text:?}")));
                }
                tokens.push((at, Token::Num(text)));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].1.is_alphanumeric() || matches!(chars[i].1, '_' | '-' | '/'))
                {
                    i += 1;
                }
                tokens.push((at, Token::Ident(chars[start..i].iter().map(|(_, c)| c).collect())));
            }
            other => return Err(FilterError::syntax(at, format!("unexpected character {other:?}"))),
        }
    }
    Ok(tokens)
}

/// A `"…"` string (with `\"`, `\\`, `\n`, `\t` escapes) or a raw `` `…` `` string.
fn lex_string(chars: &[(usize, char)], start: usize) -> Result<(String, usize), FilterError> {
    let (at, quote) = chars[start];
    let mut text = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        let c = chars[i].1;
        if c == quote {
            return Ok((text, i + 1));
        }
        if c == '\\' && quote == '"' {
            let Some((_, escaped)) = chars.get(i + 1) else { break };
            text.push(match escaped {
                'n' => '\n',
                't' => '\t',
                other => *other,
            });
            i += 2;
            continue;
        }
        text.push(c);
        i += 1;
    }
    Err(FilterError::syntax(at, "unterminated string".into()))
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    pos: usize,
    end: usize,
}

const KEYWORDS: [&str; 8] = ["and", "or", "not", "in", "is", "empty", "contains", "matches"];

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos).map(|(_, t)| t)
    }

    fn peek_at(&self, ahead: usize) -> Option<&Token> {
        self.tokens.get(self.pos + ahead).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.pos).map(|(at, _)| *at).unwrap_or(self.end)
    }

    fn error<T>(&self, expected: &str) -> Result<T, FilterError> {
        Err(FilterError::syntax(
            self.at(),
            format!("expected {expected}, found {}", describe(self.tokens.get(self.pos))),
        ))
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Ident(w)) if w == word) {
            self.pos += 1;
            return true;
        }
        false
    }

    fn expr(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.pos += 1;
            let inner = self.expr()?;
            if self.peek() != Some(&Token::RParen) {
                return self.error("\")\"");
            }
            self.pos += 1;
            return Ok(inner);
        }
        self.matcher().map(Expr::Match)
    }

    /// True when the next tokens are `in` or `not in`: the current token is a value, not a selector.
    fn value_first(&self) -> bool {
        match self.peek() {
            Some(Token::Str(_)) | Some(Token::Num(_)) => true,
            Some(Token::Ident(_)) => match self.peek_at(1) {
                Some(Token::Ident(w)) if w == "in" => true,
                Some(Token::Ident(w)) if w == "not" => {
                    matches!(self.peek_at(2), Some(Token::Ident(w)) if w == "in")
                }
                _ => false,
            },
            _ => false,
        }
    }

    fn matcher(&mut self) -> Result<Match, FilterError> {
        if self.value_first() {
            let value = self.value()?;
            let negated = self.keyword("not");
            if !self.keyword("in") {
                return self.error("\"in\"");
            }
            let selector = self.selector()?;
            return Ok(if negated {
                Match::NotContains(selector, value)
            } else {
                Match::Contains(selector, value)
            });
        }
        let selector = self.selector()?;
        let next = self.peek().cloned();
        match next {
            Some(Token::Eq) => {
                self.pos += 1;
                Ok(Match::Equal(selector, self.value()?))
            }
            Some(Token::Ne) => {
                self.pos += 1;
                Ok(Match::NotEqual(selector, self.value()?))
            }
            _ if self.keyword("is") => {
                let negated = self.keyword("not");
                if !self.keyword("empty") {
                    return self.error("\"empty\"");
                }
                Ok(if negated { Match::IsNotEmpty(selector) } else { Match::IsEmpty(selector) })
            }
            _ => {
                let negated = self.keyword("not");
                if self.keyword("contains") {
                    let value = self.value()?;
                    return Ok(if negated {
                        Match::NotContains(selector, value)
                    } else {
                        Match::Contains(selector, value)
                    });
                }
                if self.keyword("matches") {
                    let at = self.at();
                    let pattern = self.value()?;
                    let re = regex::Regex::new(&pattern)
                        .map_err(|e| FilterError::syntax(at, format!("invalid regular expression: {e}")))?;
                    return Ok(if negated {
                        Match::NotMatches(selector, re)
                    } else {
                        Match::Matches(selector, re)
                    });
                }
                self.error("an operator (==, !=, is, contains, matches, in)")
            }
        }
    }

    fn selector(&mut self) -> Result<Selector, FilterError> {
        let mut path = Vec::new();
        match self.peek() {
            Some(Token::Ident(name)) if !KEYWORDS.contains(&name.as_str()) => {
                path.push(name.clone());
                self.pos += 1;
            }
            _ => return self.error("a selector"),
        }
        loop {
            match self.peek() {
                Some(Token::Dot) => {
                    self.pos += 1;
                    match self.peek() {
                        Some(Token::Ident(name)) => {
                            path.push(name.clone());
                            self.pos += 1;
                        }
                        _ => return self.error("a field name after \".\""),
                    }
                }
                Some(Token::LBracket) => {
                    self.pos += 1;
                    let Some(Token::Str(key)) = self.peek().cloned() else {
                        return self.error("a quoted key inside [ ]");
                    };
                    self.pos += 1;
                    if self.peek() != Some(&Token::RBracket) {
                        return self.error("\"]\"");
                    }
                    self.pos += 1;
                    path.push(key);
                }
                _ => return Ok(path),
            }
        }
    }

    fn value(&mut self) -> Result<String, FilterError> {
        match self.peek().cloned() {
            Some(Token::Str(s)) | Some(Token::Num(s)) => {
                self.pos += 1;
                Ok(s)
            }
            Some(Token::Ident(s)) if !KEYWORDS.contains(&s.as_str()) => {
                self.pos += 1;
                Ok(s)
            }
            _ => self.error("a value"),
        }
    }
}

pub fn parse(input: &str) -> Result<Expr, FilterError> {
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return Err(FilterError::syntax(0, "empty expression".into()));
    }
    let mut parser = Parser { tokens, pos: 0, end: input.len() };
    let expr = parser.expr()?;
    if parser.pos < parser.tokens.len() {
        return parser.error("\"and\", \"or\" or end of expression");
    }
    Ok(expr)
}
