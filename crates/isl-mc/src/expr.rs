//! The expression language of expression nodes: a safe arithmetic over other nodes' names.
//!
//! ```text
//! expr    := term (('+' | '-') term)*            left-associative
//! term    := unary (('*' | '/') unary)*          left-associative
//! unary   := '-' unary | power
//! power   := primary ('^' unary)?                right-associative: 2^3^2 = 2^(3^2); -2^2 = -(2^2)
//! primary := number | name | name '(' expr (',' expr)* ')' | '(' expr ')'
//! number  := digits ['.' digits] [('e'|'E') ['+'|'-'] digits]  |  '.' digits [exponent]
//! name    := [A-Za-z_][A-Za-z0-9_]*
//! ```
//!
//! Functions: `exp(x)`, `log(x)` (natural), `sqrt(x)`, `abs(x)`, `pow(x, y)` (same as `x ^ y`),
//! `min(x, y, ...)` and `max(x, y, ...)` (two or more arguments). A name followed by `(` is a
//! function call; any other name is a node. Whitespace (space, tab, newline) separates tokens.
//! Arithmetic is IEEE double precision: division by zero and the logarithm of a negative number
//! give infinities and NaN, which the estimators count as non-finite samples. The exact meaning
//! of each operation is in [`UnaryOp::apply`] and [`BinaryOp::apply`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// A one-operand operation of expressions and programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnaryOp {
    /// `-x`.
    Neg,
    /// `exp(x)` (libm).
    Exp,
    /// `log(x)`, natural (libm); NaN below zero, `-inf` at zero.
    Log,
    /// `sqrt(x)` (IEEE, correctly rounded); NaN below zero.
    Sqrt,
    /// `abs(x)`.
    Abs,
}

impl UnaryOp {
    /// The operation on one number.
    #[inline(always)]
    pub fn apply(self, x: f64) -> f64 {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Exp => libm::exp(x),
            UnaryOp::Log => libm::log(x),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Abs => x.abs(),
        }
    }

    /// The function name (`neg` for negation).
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Abs => "abs",
        }
    }
}

/// A two-operand operation of expressions and programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
    Div,
    /// `a ^ b` = `pow(a, b)` (libm).
    Pow,
    /// `min(a, b)`: NaN if either is NaN, else the smaller (`a` when equal).
    Min,
    /// `max(a, b)`: NaN if either is NaN, else the larger (`a` when equal).
    Max,
}

impl BinaryOp {
    /// The operation on two numbers.
    #[inline(always)]
    pub fn apply(self, a: f64, b: f64) -> f64 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => libm::pow(a, b),
            BinaryOp::Min => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if b < a {
                    b
                } else {
                    a
                }
            }
            BinaryOp::Max => {
                if a.is_nan() || b.is_nan() {
                    f64::NAN
                } else if b > a {
                    b
                } else {
                    a
                }
            }
        }
    }

    /// The operator symbol (`+ - * / ^`) or function name (`min`, `max`).
    pub fn symbol(self) -> &'static str {
        match self {
            BinaryOp::Add => "+",
            BinaryOp::Sub => "-",
            BinaryOp::Mul => "*",
            BinaryOp::Div => "/",
            BinaryOp::Pow => "^",
            BinaryOp::Min => "min",
            BinaryOp::Max => "max",
        }
    }
}

/// A function callable in expressions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Func {
    /// One argument.
    Unary(UnaryOp),
    /// `pow(x, y)`: two arguments.
    Pow,
    /// `min(x, y, ...)`: two or more, folded from the left.
    Min,
    /// `max(x, y, ...)`: two or more, folded from the left.
    Max,
}

impl Func {
    fn lookup(name: &str) -> Option<Func> {
        Some(match name {
            "exp" => Func::Unary(UnaryOp::Exp),
            "log" => Func::Unary(UnaryOp::Log),
            "sqrt" => Func::Unary(UnaryOp::Sqrt),
            "abs" => Func::Unary(UnaryOp::Abs),
            "pow" => Func::Pow,
            "min" => Func::Min,
            "max" => Func::Max,
            _ => return None,
        })
    }

    /// The function's name.
    pub fn name(self) -> &'static str {
        match self {
            Func::Unary(op) => op.name(),
            Func::Pow => "pow",
            Func::Min => "min",
            Func::Max => "max",
        }
    }
}

/// A parsed expression. `V` is how a node is named: `String` after parsing, a node index after
/// the model is checked.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr<V = String> {
    /// A number literal.
    Num(f64),
    /// A node's value.
    Var(V),
    /// `-x`.
    Neg(Box<Expr<V>>),
    /// A left-associative chain of `+ -` or of `* /`: `((first op₁ e₁) op₂ e₂) ...`. Kept flat so
    /// that long sums do not nest.
    Chain(Box<Expr<V>>, Vec<(BinaryOp, Expr<V>)>),
    /// `base ^ exponent`.
    Pow(Box<Expr<V>>, Box<Expr<V>>),
    /// A function call (arity checked by the parser).
    Call(Func, Vec<Expr<V>>),
}

impl<V> Expr<V> {
    /// Evaluates with `var` giving each node's value, by the same operations as compiled
    /// programs (so the two agree bit for bit).
    pub fn eval(&self, var: &mut impl FnMut(&V) -> f64) -> f64 {
        match self {
            Expr::Num(x) => *x,
            Expr::Var(v) => var(v),
            Expr::Neg(e) => UnaryOp::Neg.apply(e.eval(var)),
            Expr::Chain(first, rest) => {
                let mut acc = first.eval(var);
                for (op, e) in rest {
                    acc = op.apply(acc, e.eval(var));
                }
                acc
            }
            Expr::Pow(a, b) => {
                let a = a.eval(var);
                BinaryOp::Pow.apply(a, b.eval(var))
            }
            Expr::Call(f, args) => {
                let mut vals = args.iter().map(|a| a.eval(var));
                let first = vals.next().unwrap_or(f64::NAN);
                match f {
                    Func::Unary(op) => op.apply(first),
                    Func::Pow => BinaryOp::Pow.apply(first, vals.next().unwrap_or(f64::NAN)),
                    Func::Min => vals.fold(first, |acc, x| BinaryOp::Min.apply(acc, x)),
                    Func::Max => vals.fold(first, |acc, x| BinaryOp::Max.apply(acc, x)),
                }
            }
        }
    }

    /// Visits every node reference, left to right.
    pub fn for_each_var(&self, f: &mut impl FnMut(&V)) {
        match self {
            Expr::Num(_) => {}
            Expr::Var(v) => f(v),
            Expr::Neg(e) => e.for_each_var(f),
            Expr::Chain(first, rest) => {
                first.for_each_var(f);
                rest.iter().for_each(|(_, e)| e.for_each_var(f));
            }
            Expr::Pow(a, b) => {
                a.for_each_var(f);
                b.for_each_var(f);
            }
            Expr::Call(_, args) => args.iter().for_each(|a| a.for_each_var(f)),
        }
    }

    /// The same expression with node references mapped by `f` (which may fail).
    pub fn try_map_vars<W, E>(&self, f: &mut impl FnMut(&V) -> Result<W, E>) -> Result<Expr<W>, E> {
        Ok(match self {
            Expr::Num(x) => Expr::Num(*x),
            Expr::Var(v) => Expr::Var(f(v)?),
            Expr::Neg(e) => Expr::Neg(Box::new(e.try_map_vars(f)?)),
            Expr::Chain(first, rest) => Expr::Chain(
                Box::new(first.try_map_vars(f)?),
                rest.iter().map(|(op, e)| Ok((*op, e.try_map_vars(f)?))).collect::<Result<_, E>>()?,
            ),
            Expr::Pow(a, b) => Expr::Pow(Box::new(a.try_map_vars(f)?), Box::new(b.try_map_vars(f)?)),
            Expr::Call(func, args) => {
                Expr::Call(*func, args.iter().map(|a| a.try_map_vars(f)).collect::<Result<_, E>>()?)
            }
        })
    }
}

/// Fully parenthesised text that parses back to an expression with the same value.
impl<V: fmt::Display> fmt::Display for Expr<V> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(x) if *x < 0.0 || (*x == 0.0 && x.is_sign_negative()) => write!(out, "(-{:e})", -x),
            Expr::Num(x) => write!(out, "{x:e}"),
            Expr::Var(v) => write!(out, "{v}"),
            Expr::Neg(e) => write!(out, "(-{e})"),
            Expr::Chain(first, rest) => {
                for _ in rest {
                    write!(out, "(")?;
                }
                write!(out, "{first}")?;
                for (op, e) in rest {
                    write!(out, " {} {e})", op.symbol())?;
                }
                Ok(())
            }
            Expr::Pow(a, b) => write!(out, "({a} ^ {b})"),
            Expr::Call(f, args) => {
                write!(out, "{}(", f.name())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        write!(out, ", ")?;
                    }
                    write!(out, "{a}")?;
                }
                write!(out, ")")
            }
        }
    }
}

/// Why an expression did not parse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// A token that does not fit the grammar.
    Syntax {
        /// Byte offset of the token.
        position: usize,
        /// What would have fitted.
        expected: String,
        /// What was there.
        found: String,
    },
    /// Nesting (parentheses, unary minus, powers, calls) deeper than the limit.
    TooDeep {
        /// Byte offset where the limit was crossed.
        position: usize,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok<'a> {
    Num(f64),
    Name(&'a str),
    Sym(u8),
    End,
    Bad(char),
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
    tok: Tok<'a>,
    tok_pos: usize,
    depth: usize,
    max_depth: usize,
}

const OPERAND: &str = "a number, a name, '(' or '-'";

/// Parses an expression (see the module grammar); `max_depth` bounds the nesting.
pub fn parse(src: &str, max_depth: usize) -> Result<Expr, ParseError> {
    let mut p = Parser { src, pos: 0, tok: Tok::End, tok_pos: 0, depth: 0, max_depth };
    p.advance()?;
    let e = p.expr()?;
    match p.tok {
        Tok::End => Ok(e),
        Tok::Sym(b')') => Err(p.error("an operator or the end of the expression (unmatched ')')")),
        _ => Err(p.error("an operator or the end of the expression")),
    }
}

impl<'a> Parser<'a> {
    fn error(&self, expected: &str) -> ParseError {
        ParseError::Syntax { position: self.tok_pos, expected: expected.to_string(), found: self.describe() }
    }

    fn describe(&self) -> String {
        match self.tok {
            Tok::Num(_) => format!("number '{}'", &self.src[self.tok_pos..self.pos]),
            Tok::Name(n) => format!("name '{n}'"),
            Tok::Sym(c) => format!("'{}'", c as char),
            Tok::End => "end of input".to_string(),
            Tok::Bad(c) => format!("'{c}'"),
        }
    }

    /// Reads the next token into `tok`.
    fn advance(&mut self) -> Result<(), ParseError> {
        let bytes = self.src.as_bytes();
        while self.pos < bytes.len() && matches!(bytes[self.pos], b' ' | b'\t' | b'\n' | b'\r') {
            self.pos += 1;
        }
        self.tok_pos = self.pos;
        let Some(&c) = bytes.get(self.pos) else {
            self.tok = Tok::End;
            return Ok(());
        };
        self.tok = match c {
            b'0'..=b'9' | b'.' => return self.number(),
            b'A'..=b'Z' | b'a'..=b'z' | b'_' => {
                let start = self.pos;
                while self.pos < bytes.len() && (bytes[self.pos].is_ascii_alphanumeric() || bytes[self.pos] == b'_') {
                    self.pos += 1;
                }
                Tok::Name(&self.src[start..self.pos])
            }
            b'+' | b'-' | b'*' | b'/' | b'^' | b'(' | b')' | b',' => {
                self.pos += 1;
                Tok::Sym(c)
            }
            _ => {
                let ch = self.src[self.pos..].chars().next().unwrap_or('?');
                self.pos += ch.len_utf8();
                Tok::Bad(ch)
            }
        };
        Ok(())
    }

    fn number(&mut self) -> Result<(), ParseError> {
        let bytes = self.src.as_bytes();
        let start = self.pos;
        let digits = |p: &mut usize| {
            let s = *p;
            while *p < bytes.len() && bytes[*p].is_ascii_digit() {
                *p += 1;
            }
            *p - s
        };
        let mut p = self.pos;
        let mut n = digits(&mut p);
        if p < bytes.len() && bytes[p] == b'.' {
            p += 1;
            n += digits(&mut p);
        }
        if n == 0 {
            return Err(ParseError::Syntax {
                position: start,
                expected: "digits in a number".into(),
                found: "'.'".into(),
            });
        }
        if p < bytes.len() && matches!(bytes[p], b'e' | b'E') {
            p += 1;
            if p < bytes.len() && matches!(bytes[p], b'+' | b'-') {
                p += 1;
            }
            if digits(&mut p) == 0 {
                let found = match self.src[p..].chars().next() {
                    Some(c) => format!("'{c}'"),
                    None => "end of input".to_string(),
                };
                return Err(ParseError::Syntax { position: p, expected: "digits in the exponent".into(), found });
            }
        }
        let text = &self.src[start..p];
        let value: f64 = text.parse().map_err(|_| ParseError::Syntax {
            position: start,
            expected: "a number".into(),
            found: format!("'{text}'"),
        })?;
        if !value.is_finite() {
            return Err(ParseError::Syntax {
                position: start,
                expected: "a finite number".into(),
                found: format!("'{text}' (overflows)"),
            });
        }
        self.pos = p;
        self.tok = Tok::Num(value);
        Ok(())
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > self.max_depth { Err(ParseError::TooDeep { position: self.tok_pos }) } else { Ok(()) }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let first = self.term()?;
        let mut rest = Vec::new();
        while let Tok::Sym(c @ (b'+' | b'-')) = self.tok {
            self.advance()?;
            let op = if c == b'+' { BinaryOp::Add } else { BinaryOp::Sub };
            rest.push((op, self.term()?));
        }
        self.depth -= 1;
        Ok(if rest.is_empty() { first } else { Expr::Chain(Box::new(first), rest) })
    }

    fn term(&mut self) -> Result<Expr, ParseError> {
        let first = self.unary()?;
        let mut rest = Vec::new();
        while let Tok::Sym(c @ (b'*' | b'/')) = self.tok {
            self.advance()?;
            let op = if c == b'*' { BinaryOp::Mul } else { BinaryOp::Div };
            rest.push((op, self.unary()?));
        }
        Ok(if rest.is_empty() { first } else { Expr::Chain(Box::new(first), rest) })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.tok == Tok::Sym(b'-') {
            self.enter()?;
            self.advance()?;
            let e = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Neg(Box::new(e)));
        }
        self.power()
    }

    fn power(&mut self) -> Result<Expr, ParseError> {
        let base = self.primary()?;
        if self.tok == Tok::Sym(b'^') {
            self.enter()?;
            self.advance()?;
            let exponent = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Pow(Box::new(base), Box::new(exponent)));
        }
        Ok(base)
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        match self.tok {
            Tok::Num(x) => {
                self.advance()?;
                Ok(Expr::Num(x))
            }
            Tok::Sym(b'(') => {
                self.advance()?;
                let e = self.expr()?;
                if self.tok != Tok::Sym(b')') {
                    return Err(self.error("')' or an operator"));
                }
                self.advance()?;
                Ok(e)
            }
            Tok::Name(name) => {
                let name_pos = self.tok_pos;
                self.advance()?;
                if self.tok != Tok::Sym(b'(') {
                    return Ok(Expr::Var(name.to_string()));
                }
                let Some(func) = Func::lookup(name) else {
                    return Err(ParseError::Syntax {
                        position: name_pos,
                        expected: "a function (exp, log, sqrt, abs, pow, min, max) before '('".into(),
                        found: format!("name '{name}'"),
                    });
                };
                self.advance()?;
                let mut args = vec![self.expr()?];
                while self.tok == Tok::Sym(b',') {
                    self.advance()?;
                    args.push(self.expr()?);
                }
                if self.tok != Tok::Sym(b')') {
                    return Err(self.error("',', ')' or an operator"));
                }
                let (want, ok) = match func {
                    Func::Unary(_) => ("1 argument", args.len() == 1),
                    Func::Pow => ("2 arguments", args.len() == 2),
                    Func::Min | Func::Max => ("2 or more arguments", args.len() >= 2),
                };
                if !ok {
                    return Err(ParseError::Syntax {
                        position: name_pos,
                        expected: format!("{want} for {name}"),
                        found: format!("{} argument{}", args.len(), if args.len() == 1 { "" } else { "s" }),
                    });
                }
                self.advance()?;
                Ok(Expr::Call(func, args))
            }
            _ => Err(self.error(OPERAND)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(src: &str) -> f64 {
        parse(src, 64).unwrap().eval(&mut |v: &String| match v.as_str() {
            "x" => 2.0,
            "y" => 3.0,
            _ => f64::NAN,
        })
    }

    #[test]
    fn precedence_and_associativity() {
        assert_eq!(eval("1 + 2 * 3"), 7.0);
        assert_eq!(eval("(1 + 2) * 3"), 9.0);
        assert_eq!(eval("2 ^ 3 ^ 2"), 512.0);
        assert_eq!(eval("-2 ^ 2"), -4.0);
        assert_eq!(eval("2 ^ -1"), 0.5);
        assert_eq!(eval("8 / 4 / 2"), 1.0);
        assert_eq!(eval("10 - 4 - 3"), 3.0);
        assert_eq!(eval("x * y - 1e-3 * 1E3"), 5.0);
        assert_eq!(eval("max(x, y, 1) + min(x, -y)"), 0.0);
        assert_eq!(eval("pow(x, y) + sqrt(16) + abs(-1) + exp(0) + log(1)"), 14.0);
        assert_eq!(eval(".5 + 1."), 1.5);
        assert_eq!(eval("--x"), 2.0);
        assert!(eval("log(-1)").is_nan());
        assert_eq!(eval("1 / 0"), f64::INFINITY);
    }

    #[test]
    fn display_round_trips() {
        for src in ["1 + 2 * x", "-(x ^ -y) / 3.5e-7", "max(x, y, -1e300)", "2 ^ 3 ^ 2", "-0"] {
            let e = parse(src, 64).unwrap();
            let again = parse(&e.to_string(), 64).unwrap();
            assert_eq!(eval(src).to_bits(), eval(&again.to_string()).to_bits(), "{src} -> {e}");
        }
    }
}
