//! `manifest.txt`: the allow-list of a fixture group. It pins the case
//! count, lists each case's expected status (pass, unsupported with its
//! reason, known-fail) and tolerance, and turns a run's raw outcome into
//! the reported one (tripwires for a listed-unsupported case that starts
//! passing, a stale line, an unlisted case).

use std::path::{Path, PathBuf};

use super::{Status, Tolerance};

/// What a manifest line says a case does.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expect {
    /// Passes.
    Pass,
    /// Refused at load, for the reason given.
    Unsupported(String),
    /// Loads, then gives wrong numbers or a run error, as described.
    KnownFail(String),
}

/// One manifest line.
#[derive(Debug, Clone)]
pub(super) struct Rule {
    pub(super) pattern: String,
    pub(super) expect: Option<Expect>,
    pub(super) tolerance: Option<Tolerance>,
}

/// A `manifest.txt`: the case-count tripwire and per-case rules.
#[derive(Debug, Clone)]
pub(super) struct Manifest {
    pub(super) dir: PathBuf,
    pub(super) expected_cases: Option<usize>,
    pub(super) all_listed: bool,
    pub(super) rules: Vec<Rule>,
    /// Indices of the rules whose pattern is a plain name, by name.
    pub(super) literal: std::collections::HashMap<String, Vec<usize>>,
    /// Indices of the rules whose pattern has glob characters.
    pub(super) globs: Vec<usize>,
}

pub(super) fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

impl Manifest {
    pub(super) fn read(dir: &Path) -> Result<Option<Manifest>, String> {
        let path = dir.join("manifest.txt");
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|err| format!("{}: {err}", path.display()))?;
        Manifest::parse(dir, &path, &text).map(Some)
    }

    pub(super) fn parse(dir: &Path, path: &Path, text: &str) -> Result<Manifest, String> {
        let mut manifest = Manifest {
            dir: dir.to_path_buf(),
            expected_cases: None,
            all_listed: false,
            rules: Vec::new(),
            literal: Default::default(),
            globs: Vec::new(),
        };
        for (line_idx, line) in text.lines().enumerate() {
            let (body, comment) = line.split_once('#').unwrap_or((line, ""));
            let comment = comment.trim();
            let mut words = body.split_whitespace();
            let Some(first) = words.next() else { continue };
            let bad = |what: &str| format!("{}:{}: {what}", path.display(), line_idx + 1);
            if first == "cases" {
                let count = words.next().and_then(|n| n.parse().ok()).ok_or_else(|| bad("`cases` needs a number"))?;
                if words.next().is_some() {
                    return Err(bad("`cases` takes one number"));
                }
                manifest.expected_cases = Some(count);
                continue;
            }
            if first == "all-listed" {
                if words.next().is_some() {
                    return Err(bad("`all-listed` takes nothing"));
                }
                manifest.all_listed = true;
                continue;
            }
            let mut rule = Rule { pattern: first.to_string(), expect: None, tolerance: None };
            for word in words {
                let expect = match word {
                    "pass" => Some(Expect::Pass),
                    "unsupported" | "known-fail" => {
                        if comment.is_empty() {
                            return Err(bad(&format!("a `{word}` entry needs a reason in its # comment")));
                        }
                        Some(if word == "unsupported" {
                            Expect::Unsupported(comment.to_string())
                        } else {
                            Expect::KnownFail(comment.to_string())
                        })
                    }
                    _ => None,
                };
                if let Some(expect) = expect {
                    if rule.expect.is_some() {
                        return Err(bad("more than one status on a line"));
                    }
                    rule.expect = Some(expect);
                } else if let Some(tolerance) = word.strip_prefix("tol:") {
                    if comment.is_empty() {
                        return Err(bad("a tolerance entry needs the measurement in its # comment"));
                    }
                    rule.tolerance = Some(
                        Tolerance::parse(tolerance).ok_or_else(|| bad(&format!("unknown tolerance {tolerance:?}")))?,
                    );
                } else {
                    return Err(bad(&format!("unknown directive {word:?}")));
                }
            }
            if rule.expect.is_none() && rule.tolerance.is_none() {
                return Err(bad(&format!("{first:?} needs a status (pass, unsupported, known-fail) or a tolerance")));
            }
            if is_glob(&rule.pattern) {
                manifest.globs.push(manifest.rules.len());
            } else {
                manifest.literal.entry(rule.pattern.clone()).or_default().push(manifest.rules.len());
            }
            manifest.rules.push(rule);
        }
        Ok(manifest)
    }

    /// The expectation and the tolerance for a case: each from the last
    /// line that matches and says it.
    pub(super) fn lookup(&self, name: &str) -> (Option<&Expect>, Option<Tolerance>) {
        // A manifest lists every case of a big group by name: look names up
        // instead of matching each line (quadratic in the group's size).
        let mut matching: Vec<usize> = self.literal.get(name).cloned().unwrap_or_default();
        matching.extend(self.globs.iter().copied().filter(|&idx| glob_match(&self.rules[idx].pattern, name)));
        matching.sort_unstable();
        let last =
            |pick: &dyn Fn(&Rule) -> bool| matching.iter().rev().map(|&idx| &self.rules[idx]).find(|rule| pick(rule));
        (
            last(&|rule| rule.expect.is_some()).and_then(|rule| rule.expect.as_ref()),
            last(&|rule| rule.tolerance.is_some()).and_then(|rule| rule.tolerance),
        )
    }

    /// Tripwires that need every case of the folder: the pinned count,
    /// stale exact-name lines, and (with `all-listed`) unlisted cases.
    pub(super) fn check_group(&self, names: &[String]) -> Vec<String> {
        let mut tripwires = Vec::new();
        let dir = self.dir.display();
        if let Some(expected) = self.expected_cases
            && names.len() != expected
        {
            tripwires.push(format!("{dir}: manifest pins {expected} cases, found {}", names.len()));
        }
        let present: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut stale: Vec<&String> = self.literal.keys().filter(|name| !present.contains(name.as_str())).collect();
        stale.sort();
        for name in stale {
            tripwires.push(format!("{dir}/manifest.txt lists {name}, which is not a case here"));
        }
        if self.all_listed {
            for name in names {
                if self.lookup(name).0.is_none() {
                    tripwires.push(format!(
                        "{dir}/{name}: not listed in manifest.txt (all-listed): add `{name} pass`, \
                         `unsupported  # reason` or `known-fail  # reason`"
                    ));
                }
            }
        }
        tripwires
    }
}

/// Applies a manifest expectation to what running the case gave.
pub(super) fn expected_status(expect: Option<&Expect>, raw: &Status, loaded: bool) -> Status {
    match (expect, raw) {
        (None | Some(Expect::Pass), raw) => raw.clone(),
        (Some(Expect::Unsupported(_)), Status::Error(_)) if !loaded => match expect {
            Some(Expect::Unsupported(reason)) => Status::ExpectedUnsupported(reason.clone()),
            _ => raw.clone(),
        },
        (Some(Expect::Unsupported(reason)), Status::Pass) => {
            Status::Fail(format!("listed as unsupported ({reason}) but passes: update the manifest"))
        }
        (Some(Expect::Unsupported(reason)), Status::Fail(message) | Status::Error(message)) => Status::Fail(format!(
            "listed as unsupported ({reason}) but the model loads and then fails (list it as known-fail): {message}"
        )),
        (Some(Expect::KnownFail(reason)), Status::Fail(_)) => Status::KnownFail(reason.clone()),
        (Some(Expect::KnownFail(reason)), Status::Error(_)) if loaded => Status::KnownFail(reason.clone()),
        (Some(Expect::KnownFail(reason)), Status::Pass) => {
            Status::Fail(format!("listed as known-fail ({reason}) but passes: update the manifest"))
        }
        (Some(Expect::KnownFail(reason)), Status::Error(message)) => {
            Status::Error(format!("listed as known-fail ({reason}) but the model no longer loads: {message}"))
        }
        (Some(Expect::Unsupported(_) | Expect::KnownFail(_)), other) => other.clone(),
    }
}

/// `*` matches any run of characters, `?` one character, `[a-c]` a range.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let (matched, width) = match pattern.get(p) {
            Some('?') => (true, 1),
            Some('[') => match pattern[p..].iter().position(|&c| c == ']') {
                Some(close) => {
                    let class = &pattern[p + 1..p + close];
                    let hit = class.chunks(1).enumerate().any(|(idx, _)| {
                        if idx + 2 < class.len() && class[idx + 1] == '-' {
                            (class[idx]..=class[idx + 2]).contains(&text[t])
                        } else {
                            class[idx] == text[t]
                        }
                    });
                    (hit, close + 1)
                }
                None => (pattern[p] == text[t], 1),
            },
            Some('*') => {
                star = Some((p, t));
                p += 1;
                continue;
            }
            Some(&c) => (c == text[t], 1),
            None => (false, 0),
        };
        if matched {
            p += width;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}
