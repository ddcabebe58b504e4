//! Repair procedures and the spare-parts catalogue, kept as reviewed data in
//! `models/knowledge/` (`procedures.json`, `parts.json`, reference drawings under
//! `images/`), parsed here and checked against the fault taxonomy and the product lines
//! (`customers::knowledge`). This module owns the file format and the validation rules;
//! it does no I/O beyond reading those files and never talks to the database.
//!
//! A procedure answers one or more faults on one or more product lines with 1 to 30
//! ordered steps; every user-facing text exists in English and Simplified Chinese.
//! `remote_ok: false` marks a job a customer cannot do under remote guidance: it is
//! escalated to onsite dispatch.
//!
//! ## Validation rules (in [`Library::load`] and [`Library::check_procedure`])
//!
//! * Procedure ids match `^proc\.[a-z0-9_]+$` and are unique; `version >= 1`; tool ids
//!   match `^[a-z0-9_]+$`; SKUs match `^[A-Z0-9-]+$` and are unique.
//! * Every text is non-empty, every `*_zh` text contains Chinese characters and no `*_en`
//!   text does (a swapped or untranslated field is caught). Lengths are bounded (in
//!   characters): titles 200, instructions 1000, summaries 1000, symptoms 2000, checks
//!   and safety texts 500.
//! * Fault ids and product-line codes exist and are not repeated; each step's tools are
//!   in the top-level tool map; each part exists and fits at least one of the
//!   procedure's product lines; an image is a relative path (normal components only, no
//!   `..`, no `\`) to an `.svg`, `.png` or `.jpg` that exists under the knowledge
//!   directory when one is given.
//! * `expected_minutes` is in 1..=480 per step; the procedure's `skill_level` equals the
//!   hardest step's.
//! * **Safety.** Isolation notices are the kinds `power_off`, `unplug_battery` and
//!   `lockout_tagout`.
//!   1. A step that fits parts (non-empty `parts`) carries a safety notice: fitting a
//!      part means the machine or tool is open.
//!   2. A procedure that fits parts, is not `remote_ok`, or has a technician- or
//!      specialist-level step that uses tools has an isolation notice, and that notice
//!      comes no later than the first step that fits parts (isolate before you work).
//!
//!   Measuring on a running machine (vibration, temperature) may legitimately come
//!   before the isolation step, which is why the rule anchors on the first step with
//!   parts rather than on the first step with tools. Whether a step's *text* involves
//!   opening a housing cannot be checked mechanically; the content review covers that,
//!   and the bundled procedures put a lockout or power-off notice on the first step
//!   that opens anything.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Most steps in one procedure.
pub const MAX_STEPS: usize = 30;
/// Most minutes one step may take.
pub const MAX_STEP_MINUTES: u32 = 480;
const MAX_TITLE: usize = 200;
const MAX_INSTRUCTION: usize = 1000;
const MAX_SUMMARY: usize = 1000;
const MAX_SYMPTOMS: usize = 2000;
const MAX_CHECK: usize = 500;
const MAX_SAFETY: usize = 500;
const MAX_NAME: usize = 200;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tool {
    pub name_en: String,
    pub name_zh: String,
}

/// Who can do a step: ordered, so the hardest step of a procedure is the maximum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkillLevel {
    Customer,
    Technician,
    Specialist,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Safety {
    pub kind: SafetyKind,
    pub text_en: String,
    pub text_zh: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SafetyKind {
    PowerOff,
    UnplugBattery,
    LockoutTagout,
    HotSurface,
    Ppe,
    StoredEnergy,
}

impl SafetyKind {
    /// Whether the notice isolates the machine from its energy source before work.
    pub fn is_isolation(self) -> bool {
        matches!(self, SafetyKind::PowerOff | SafetyKind::UnplugBattery | SafetyKind::LockoutTagout)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub instruction_en: String,
    pub instruction_zh: String,
    /// Reference drawing, relative to the knowledge directory.
    pub image: Option<String>,
    /// Ids from the library's tool map.
    pub tools: Vec<String>,
    /// SKUs from the parts catalogue.
    pub parts: Vec<String>,
    pub safety: Option<Safety>,
    pub expected_minutes: u32,
    pub skill_level: SkillLevel,
    pub check_en: String,
    pub check_zh: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    pub id: String,
    pub version: u32,
    pub fault_ids: Vec<String>,
    pub product_lines: Vec<String>,
    pub title_en: String,
    pub title_zh: String,
    pub summary_en: String,
    pub summary_zh: String,
    /// Free text of symptoms as a customer would type them (full-text search).
    pub symptoms_en: String,
    pub symptoms_zh: String,
    /// Whether a customer can do it under remote guidance; `false` escalates onsite.
    pub remote_ok: bool,
    /// The hardest step's level.
    pub skill_level: SkillLevel,
    pub steps: Vec<Step>,
}

impl Procedure {
    /// Total expected time of all steps, in minutes.
    pub fn expected_minutes(&self) -> u32 {
        self.steps.iter().fold(0u32, |sum, s| sum.saturating_add(s.expected_minutes))
    }

    /// The distinct SKUs the procedure uses, in step order.
    pub fn parts(&self) -> Vec<&str> {
        let mut seen = BTreeSet::new();
        self.steps.iter().flat_map(|s| s.parts.iter()).map(String::as_str).filter(|sku| seen.insert(*sku)).collect()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    pub sku: String,
    pub name_en: String,
    pub name_zh: String,
    pub product_lines: Vec<String>,
    /// Compatible asset models; empty means every model of the product lines.
    pub models: Vec<String>,
    pub unit_price: f64,
    /// ISO 4217 code.
    pub currency: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Library {
    pub tools: BTreeMap<String, Tool>,
    pub procedures: Vec<Procedure>,
    pub parts: Vec<Part>,
}

#[derive(Debug, thiserror::Error)]
pub enum LibraryError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
}

/// `procedures.json` as stored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProceduresFile {
    #[serde(deserialize_with = "unique_keys")]
    tools: BTreeMap<String, Tool>,
    procedures: Vec<Procedure>,
}

/// `parts.json` as stored.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartsFile {
    parts: Vec<Part>,
}

/// A JSON object into a map, refusing a repeated key (a plain map keeps the last one
/// silently, which would hide a copy-paste mistake in the tool list).
fn unique_keys<'de, D: Deserializer<'de>, V: Deserialize<'de>>(d: D) -> Result<BTreeMap<String, V>, D::Error> {
    struct Unique<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> Visitor<'de> for Unique<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object with unique keys")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((k, v)) = map.next_entry::<String, V>()? {
                if out.contains_key(&k) {
                    return Err(serde::de::Error::custom(format!("key `{k}` appears twice")));
                }
                out.insert(k, v);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Unique(std::marker::PhantomData))
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, LibraryError> {
    let err = |m: String| LibraryError::File { path: path.display().to_string(), message: m };
    let text = std::fs::read_to_string(path).map_err(|e| err(format!("cannot read: {e}")))?;
    let de = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(de).map_err(|e| err(format!("{}: {}", e.path(), e.inner())))
}

fn fail(path: &Path, problems: Vec<String>) -> LibraryError {
    let n = problems.len();
    LibraryError::File {
        path: path.display().to_string(),
        message: format!("{n} problem{}: {}", if n == 1 { "" } else { "s" }, problems.join("; ")),
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c, '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{F900}'..='\u{FAFF}')
}

fn well_formed_proc_id(id: &str) -> bool {
    id.strip_prefix("proc.")
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
}

fn well_formed_tool_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn well_formed_sku(sku: &str) -> bool {
    !sku.is_empty() && sku.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-')
}

/// A relative path of plain components to a picture: no `..`, no root, no backslash.
fn well_formed_image(path: &str) -> bool {
    let p = Path::new(path);
    !path.is_empty()
        && !path.contains('\\')
        && p.components().all(|c| matches!(c, Component::Normal(_)))
        && p.extension().and_then(|e| e.to_str()).is_some_and(|e| matches!(e, "svg" | "png" | "jpg" | "jpeg"))
}

/// Collects problems, each prefixed with where it was found.
struct Problems<'a> {
    subject: &'a str,
    list: Vec<String>,
}

impl Problems<'_> {
    fn at(&mut self, step: Option<usize>, field: &str, message: impl fmt::Display) {
        let place = match step {
            Some(n) => format!("{} step {n} `{field}`", self.subject),
            None => format!("{} `{field}`", self.subject),
        };
        self.list.push(format!("{place}: {message}"));
    }

    /// A text in one language: non-empty, bounded, and in the right script.
    fn text(&mut self, step: Option<usize>, field: &str, value: &str, max: usize) {
        let chars = value.chars().count();
        if value.trim().is_empty() {
            self.at(step, field, "is empty");
        } else if chars > max {
            self.at(step, field, format_args!("is {chars} characters long, the limit is {max}"));
        } else if field.ends_with("_zh") && !value.chars().any(is_cjk) {
            self.at(step, field, "has no Chinese characters");
        } else if field.ends_with("_en") && value.chars().any(is_cjk) {
            self.at(step, field, "contains Chinese characters");
        }
    }

    fn unique<'s>(&mut self, field: &str, values: impl IntoIterator<Item = &'s String>) {
        let mut seen = BTreeSet::new();
        for v in values {
            if !seen.insert(v.as_str()) {
                self.at(None, field, format_args!("`{v}` appears twice"));
            }
        }
    }
}

impl Library {
    /// Reads procedures.json and parts.json from `dir` and validates them against the fault ids and product-line codes given.
    pub fn load(dir: &Path, fault_ids: &BTreeSet<String>, product_lines: &BTreeSet<String>) -> Result<Library, LibraryError> {
        let parts_path = dir.join("parts.json");
        let procedures_path = dir.join("procedures.json");
        let parts: PartsFile = read(&parts_path)?;
        let file: ProceduresFile = read(&procedures_path)?;
        let mut library = Library { tools: file.tools, procedures: Vec::new(), parts: parts.parts };

        let problems = library.check_parts(product_lines);
        if !problems.is_empty() {
            return Err(fail(&parts_path, problems));
        }
        let mut problems = library.check_tools();
        let mut ids = BTreeSet::new();
        for p in &file.procedures {
            if !ids.insert(p.id.as_str()) {
                problems.push(format!("procedure `{}` `id`: appears twice", p.id));
            }
            problems.extend(library.check_procedure(p, fault_ids, product_lines, Some(dir)));
        }
        if !problems.is_empty() {
            return Err(fail(&procedures_path, problems));
        }
        library.procedures = file.procedures;
        Ok(library)
    }

    /// Validates an already-parsed procedure (used by the API when an admin edits one): returns every problem found, each naming the step (1-based) and field.
    pub fn check_procedure(
        &self,
        p: &Procedure,
        fault_ids: &BTreeSet<String>,
        product_lines: &BTreeSet<String>,
        dir: Option<&Path>,
    ) -> Vec<String> {
        let subject = format!("procedure `{}`", p.id);
        let mut pr = Problems { subject: &subject, list: Vec::new() };

        if !well_formed_proc_id(&p.id) {
            pr.at(None, "id", "must match ^proc\\.[a-z0-9_]+$");
        }
        if p.version < 1 {
            pr.at(None, "version", "must be 1 or more");
        }
        pr.text(None, "title_en", &p.title_en, MAX_TITLE);
        pr.text(None, "title_zh", &p.title_zh, MAX_TITLE);
        pr.text(None, "summary_en", &p.summary_en, MAX_SUMMARY);
        pr.text(None, "summary_zh", &p.summary_zh, MAX_SUMMARY);
        pr.text(None, "symptoms_en", &p.symptoms_en, MAX_SYMPTOMS);
        pr.text(None, "symptoms_zh", &p.symptoms_zh, MAX_SYMPTOMS);

        if p.fault_ids.is_empty() {
            pr.at(None, "fault_ids", "names no fault");
        }
        for f in &p.fault_ids {
            if !fault_ids.contains(f) {
                pr.at(None, "fault_ids", format_args!("fault `{f}` is not in faults.json"));
            }
        }
        pr.unique("fault_ids", &p.fault_ids);
        if p.product_lines.is_empty() {
            pr.at(None, "product_lines", "names no product line");
        }
        for l in &p.product_lines {
            if !product_lines.contains(l) {
                pr.at(None, "product_lines", format_args!("product line `{l}` is not in product_lines.json"));
            }
        }
        pr.unique("product_lines", &p.product_lines);

        if p.steps.is_empty() || p.steps.len() > MAX_STEPS {
            pr.at(None, "steps", format_args!("has {} steps, allowed 1 to {MAX_STEPS}", p.steps.len()));
        }
        for (i, s) in p.steps.iter().enumerate() {
            self.check_step(&mut pr, p, i + 1, s, dir);
        }

        if let Some((i, hardest)) = p.steps.iter().enumerate().max_by_key(|(i, s)| (s.skill_level, std::cmp::Reverse(*i))) {
            if hardest.skill_level != p.skill_level {
                pr.at(
                    None,
                    "skill_level",
                    format_args!("is {:?} but the hardest step (step {}) is {:?}", p.skill_level, i + 1, hardest.skill_level),
                );
            }
        }
        check_safety(&mut pr, p);
        pr.list
    }

    fn check_step(&self, pr: &mut Problems, p: &Procedure, n: usize, s: &Step, dir: Option<&Path>) {
        let at = Some(n);
        pr.text(at, "instruction_en", &s.instruction_en, MAX_INSTRUCTION);
        pr.text(at, "instruction_zh", &s.instruction_zh, MAX_INSTRUCTION);
        pr.text(at, "check_en", &s.check_en, MAX_CHECK);
        pr.text(at, "check_zh", &s.check_zh, MAX_CHECK);
        if let Some(image) = &s.image {
            if !well_formed_image(image) {
                pr.at(at, "image", format_args!("`{image}` must be a relative .svg/.png/.jpg path without `..`"));
            } else if let Some(dir) = dir {
                if !dir.join(image).is_file() {
                    pr.at(at, "image", format_args!("`{image}` does not exist under {}", dir.display()));
                }
            }
        }
        for t in &s.tools {
            if !self.tools.contains_key(t) {
                pr.at(at, "tools", format_args!("tool `{t}` is not in the tool list"));
            }
        }
        for sku in &s.parts {
            match self.part(sku) {
                None => pr.at(at, "parts", format_args!("part `{sku}` is not in parts.json")),
                Some(part) if !part.product_lines.iter().any(|l| p.product_lines.contains(l)) => pr.at(
                    at,
                    "parts",
                    format_args!("part `{sku}` fits {} but none of the procedure's product lines", part.product_lines.join(", ")),
                ),
                Some(_) => {}
            }
        }
        if let Some(safety) = &s.safety {
            pr.text(at, "safety.text_en", &safety.text_en, MAX_SAFETY);
            pr.text(at, "safety.text_zh", &safety.text_zh, MAX_SAFETY);
        }
        if !(1..=MAX_STEP_MINUTES).contains(&s.expected_minutes) {
            pr.at(at, "expected_minutes", format_args!("is {}, allowed 1 to {MAX_STEP_MINUTES}", s.expected_minutes));
        }
    }

    fn check_tools(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (id, tool) in &self.tools {
            let subject = format!("tool `{id}`");
            let mut pr = Problems { subject: &subject, list: Vec::new() };
            if !well_formed_tool_id(id) {
                pr.at(None, "id", "must match ^[a-z0-9_]+$");
            }
            pr.text(None, "name_en", &tool.name_en, MAX_NAME);
            pr.text(None, "name_zh", &tool.name_zh, MAX_NAME);
            out.extend(pr.list);
        }
        out
    }

    fn check_parts(&self, product_lines: &BTreeSet<String>) -> Vec<String> {
        let mut out = Vec::new();
        let mut skus = BTreeSet::new();
        for part in &self.parts {
            let subject = format!("part `{}`", part.sku);
            let mut pr = Problems { subject: &subject, list: Vec::new() };
            if !well_formed_sku(&part.sku) {
                pr.at(None, "sku", "must match ^[A-Z0-9-]+$");
            }
            if !skus.insert(part.sku.as_str()) {
                pr.at(None, "sku", "appears twice");
            }
            pr.text(None, "name_en", &part.name_en, MAX_NAME);
            pr.text(None, "name_zh", &part.name_zh, MAX_NAME);
            if part.product_lines.is_empty() {
                pr.at(None, "product_lines", "names no product line");
            }
            for l in &part.product_lines {
                if !product_lines.contains(l) {
                    pr.at(None, "product_lines", format_args!("product line `{l}` is not in product_lines.json"));
                }
            }
            pr.unique("product_lines", &part.product_lines);
            for m in &part.models {
                if m.trim().is_empty() {
                    pr.at(None, "models", "has an empty model name");
                }
            }
            pr.unique("models", &part.models);
            if !part.unit_price.is_finite() || part.unit_price < 0.0 {
                pr.at(None, "unit_price", format_args!("{} is not a price", part.unit_price));
            }
            if part.currency.len() != 3 || !part.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                pr.at(None, "currency", format_args!("`{}` is not an ISO 4217 code", part.currency));
            }
            out.extend(pr.list);
        }
        out
    }

    pub fn procedure(&self, id: &str) -> Option<&Procedure> {
        self.procedures.iter().find(|p| p.id == id)
    }

    pub fn part(&self, sku: &str) -> Option<&Part> {
        self.parts.iter().find(|p| p.sku == sku)
    }
}

/// The safety rule of the module doc.
fn check_safety(pr: &mut Problems, p: &Procedure) {
    for (i, s) in p.steps.iter().enumerate() {
        if !s.parts.is_empty() && s.safety.is_none() {
            pr.at(Some(i + 1), "safety", "is required on a step that fits parts");
        }
    }
    let first_parts = p.steps.iter().position(|s| !s.parts.is_empty());
    let skilled_tools = p.steps.iter().position(|s| s.skill_level > SkillLevel::Customer && !s.tools.is_empty());
    let reason = if let Some(i) = first_parts {
        format!("step {} fits parts", i + 1)
    } else if !p.remote_ok {
        "the procedure is not remote_ok".to_owned()
    } else if let Some(i) = skilled_tools {
        format!("step {} is {:?} work with tools", i + 1, p.steps[i].skill_level)
    } else {
        return;
    };
    let first_isolation = p.steps.iter().position(|s| s.safety.as_ref().is_some_and(|x| x.kind.is_isolation()));
    match (first_isolation, first_parts) {
        (None, _) => pr.at(
            None,
            "steps",
            format_args!("no step has an isolation notice (power_off, unplug_battery or lockout_tagout) although {reason}"),
        ),
        (Some(iso), Some(parts)) if iso > parts => pr.at(
            Some(parts + 1),
            "safety",
            format_args!("fits parts before the machine is isolated (the first isolation notice is on step {})", iso + 1),
        ),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::path::PathBuf;

    fn knowledge_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("models/knowledge")
    }

    fn json(path: &Path) -> Value {
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
        v[key].as_str().unwrap_or_else(|| panic!("`{key}` missing in {v}"))
    }

    /// Fault ids with their categories, product-line codes with their categories, and
    /// the (line, fault) pairs of the fault codes.
    struct Taxonomy {
        faults: BTreeMap<String, String>,
        lines: BTreeMap<String, String>,
        codes: BTreeSet<(String, String)>,
    }

    impl Taxonomy {
        fn fault_ids(&self) -> BTreeSet<String> {
            self.faults.keys().cloned().collect()
        }
        fn line_codes(&self) -> BTreeSet<String> {
            self.lines.keys().cloned().collect()
        }
    }

    fn taxonomy() -> Taxonomy {
        let dir = knowledge_dir();
        let faults = json(&dir.join("faults.json"));
        let lines = json(&dir.join("product_lines.json"));
        let mut t = Taxonomy { faults: BTreeMap::new(), lines: BTreeMap::new(), codes: BTreeSet::new() };
        for f in faults["faults"].as_array().expect("faults array") {
            t.faults.insert(str_of(f, "id").to_owned(), str_of(f, "category").to_owned());
        }
        for l in lines["product_lines"].as_array().expect("product_lines array") {
            let code = str_of(l, "code");
            t.lines.insert(code.to_owned(), str_of(l, "category").to_owned());
            for c in l["fault_codes"].as_array().expect("fault_codes array") {
                t.codes.insert((code.to_owned(), str_of(c, "fault_id").to_owned()));
            }
        }
        t
    }

    fn bundled() -> (Library, Taxonomy) {
        let t = taxonomy();
        let lib = Library::load(&knowledge_dir(), &t.fault_ids(), &t.line_codes()).unwrap_or_else(|e| panic!("{e}"));
        (lib, t)
    }

    /// Every fault id a bundled model can output.
    fn model_faults() -> BTreeSet<String> {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut out = BTreeSet::new();
        for entry in std::fs::read_dir(&models).expect("models dir") {
            let manifest = entry.expect("dir entry").path().join("manifest.json");
            if manifest.is_file() {
                for label in json(&manifest)["labels"].as_array().expect("labels array") {
                    out.insert(str_of(label, "fault_id").to_owned());
                }
            }
        }
        assert!(out.len() >= 10, "expected the bearing and surface models' labels, got {out:?}");
        out
    }

    fn covers(lib: &Library, fault: &str, line: &str) -> bool {
        lib.procedures.iter().any(|p| p.fault_ids.iter().any(|f| f == fault) && p.product_lines.iter().any(|l| l == line))
    }

    #[test]
    fn bundled_library_loads() {
        let (lib, _) = bundled();
        assert!(lib.procedures.len() >= 15, "only {} procedures", lib.procedures.len());
        for p in &lib.procedures {
            assert!((3..=8).contains(&p.steps.len()), "{} has {} steps; the house rule for bundled content is 3 to 8", p.id, p.steps.len());
            assert!(p.expected_minutes() > 0);
        }
        // Everything in the catalogue and the tool list is used somewhere.
        let used_tools: BTreeSet<&str> = lib.procedures.iter().flat_map(|p| &p.steps).flat_map(|s| &s.tools).map(String::as_str).collect();
        for id in lib.tools.keys() {
            assert!(used_tools.contains(id.as_str()), "tool `{id}` is listed but no step uses it");
        }
        let used_parts: BTreeSet<&str> = lib.procedures.iter().flat_map(|p| p.parts()).collect();
        for part in &lib.parts {
            assert!(used_parts.contains(part.sku.as_str()), "part `{}` is in the catalogue but no step uses it", part.sku);
        }
    }

    #[test]
    fn every_model_output_and_fault_code_has_a_procedure_for_its_line() {
        let (lib, t) = bundled();
        // A fault code names its line: the fault must be covered on that line.
        for (line, fault) in &t.codes {
            assert!(covers(&lib, fault, line), "fault code {fault} on {line} has no procedure for that line");
        }
        // A model's output names no line: it must be covered on every line that has
        // fault codes of the same category (surface defects on the rolling line,
        // bearing verdicts on motors and spindles), and at least somewhere.
        for fault in model_faults() {
            let category = t.faults.get(&fault).unwrap_or_else(|| panic!("model label {fault} is not in faults.json"));
            let lines: BTreeSet<&String> =
                t.codes.iter().filter(|(_, f)| t.faults.get(f) == Some(category)).map(|(l, _)| l).collect();
            assert!(!lines.is_empty(), "no product line has {category} fault codes");
            for line in lines {
                assert!(covers(&lib, &fault, line), "model output {fault} has no procedure on {line}");
            }
        }
        // And no fault of the taxonomy is left without one (bearing.normal gets a
        // verify-and-monitor procedure).
        for fault in t.faults.keys() {
            assert!(lib.procedures.iter().any(|p| p.fault_ids.contains(fault)), "fault {fault} has no procedure");
        }
    }

    /// Tools that only measure or look: a step using nothing else can be done on a
    /// running machine (vibration, temperature, pressure, inspection of the product).
    const MEASURING: &[&str] =
        &["vibration_analyzer", "ir_thermometer", "thermal_camera", "pressure_gauge", "tape_measure", "magnifier", "inspection_lamp"];

    /// The content rule of the brief, stricter than the validator's because it knows
    /// which tools only measure: in a procedure that is not `remote_ok` or that serves a
    /// machining line, the first hands-on step (one that fits parts or uses a tool that
    /// does more than measure) carries an isolation notice; onsite jobs on machining
    /// lines use a real lockout/tagout somewhere.
    #[test]
    fn onsite_and_machining_work_is_isolated_on_the_first_hands_on_step() {
        let (lib, t) = bundled();
        for p in &lib.procedures {
            let machining = p.product_lines.iter().any(|l| t.lines.get(l).map(String::as_str) == Some("machining"));
            if p.remote_ok && !machining {
                continue;
            }
            let hands_on = p.steps.iter().position(|s| !s.parts.is_empty() || s.tools.iter().any(|x| !MEASURING.contains(&x.as_str())));
            if let Some(i) = hands_on {
                let kind = p.steps[i].safety.as_ref().map(|x| x.kind);
                assert!(
                    kind.is_some_and(SafetyKind::is_isolation),
                    "{}: the first hands-on step {} has safety {kind:?}, expected power_off/unplug_battery/lockout_tagout",
                    p.id,
                    i + 1
                );
            }
            if machining && hands_on.is_some() {
                assert!(
                    p.steps.iter().any(|s| s.safety.as_ref().is_some_and(|x| x.kind == SafetyKind::LockoutTagout)),
                    "{} works on a machining line without a lockout/tagout step",
                    p.id
                );
            }
        }
    }

    /// A lint of the bundled content only (the validator cannot read prose): a step
    /// whose English text says it opens a housing, a cover or a machine part carries a
    /// safety notice.
    #[test]
    fn steps_that_open_the_machine_carry_a_safety_notice() {
        const OPENING: &[&str] = &[
            "housing screw",
            "open the housing",
            "half-shell",
            "brush cap",
            "end shield",
            "fan cover",
            "gear-head screw",
            "terminal",
            "withdraw",
            "press out",
            "press off",
            "pull the work rolls",
            "remove the nozzles",
            "filter",
            "chock",
        ];
        let (lib, _) = bundled();
        for p in &lib.procedures {
            for (i, s) in p.steps.iter().enumerate() {
                let text = s.instruction_en.to_lowercase();
                if let Some(word) = OPENING.iter().find(|w| text.contains(*w)) {
                    assert!(s.safety.is_some(), "{} step {} mentions `{word}` but has no safety notice", p.id, i + 1);
                }
            }
        }
    }

    #[test]
    fn every_reference_image_is_used_small_and_plain_svg() {
        let (lib, _) = bundled();
        let used: BTreeSet<&str> = lib.procedures.iter().flat_map(|p| &p.steps).filter_map(|s| s.image.as_deref()).collect();
        let dir = knowledge_dir().join("images");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).expect("images dir") {
            let path = entry.expect("dir entry").path();
            let name = format!("images/{}", path.file_name().and_then(|n| n.to_str()).expect("utf-8 name"));
            let text = std::fs::read_to_string(&path).expect("readable svg");
            assert!(name.ends_with(".svg"), "{name}: only SVG drawings are bundled");
            assert!(text.len() < 6 * 1024, "{name} is {} bytes", text.len());
            assert!(text.contains("<svg") && text.contains("viewBox"), "{name} is not an SVG with a viewBox");
            assert!(!text.contains("<script") && !text.contains("href=\"http"), "{name} must be plain: no scripts, no external links");
            assert!(used.contains(name.as_str()), "{name} is not referenced by any step");
            count += 1;
        }
        assert!((6..=10).contains(&count), "{count} images");
    }

    #[test]
    fn procedure_totals_and_parts_in_step_order() {
        let (lib, _) = bundled();
        let p = lib.procedures.iter().find(|p| p.parts().len() >= 2).expect("a procedure with two parts");
        assert_eq!(p.expected_minutes(), p.steps.iter().map(|s| s.expected_minutes).sum::<u32>());
        let parts = p.parts();
        let distinct: BTreeSet<&str> = parts.iter().copied().collect();
        assert_eq!(distinct.len(), parts.len(), "parts() repeats a SKU");
        let first = p.steps.iter().flat_map(|s| &s.parts).next().expect("a part");
        assert_eq!(parts[0], first);
        assert!(lib.part(parts[0]).is_some());
        assert!(lib.procedure(&p.id).is_some());
        assert!(lib.procedure("proc.does_not_exist").is_none());
    }

    /// A bundled procedure with a technician step that fits parts, and its problems
    /// after `edit`.
    fn problems_after(edit: impl FnOnce(&mut Procedure)) -> Vec<String> {
        let (lib, t) = bundled();
        let mut p = lib
            .procedures
            .iter()
            .find(|p| p.steps.len() >= 3 && p.steps.iter().skip(1).any(|s| !s.parts.is_empty()))
            .expect("a procedure that fits parts after step 1")
            .clone();
        assert!(lib.check_procedure(&p, &t.fault_ids(), &t.line_codes(), Some(&knowledge_dir())).is_empty());
        edit(&mut p);
        lib.check_procedure(&p, &t.fault_ids(), &t.line_codes(), Some(&knowledge_dir()))
    }

    fn first_parts_step(p: &Procedure) -> usize {
        p.steps.iter().position(|s| !s.parts.is_empty()).expect("a step with parts")
    }

    fn assert_named(problems: &[String], needles: &[&str]) {
        assert!(
            problems.iter().any(|m| needles.iter().all(|n| m.contains(n))),
            "no problem mentions all of {needles:?}: {problems:?}"
        );
    }

    #[test]
    fn unknown_part_is_rejected_naming_step_and_field() {
        let mut step = 0;
        let problems = problems_after(|p| {
            step = first_parts_step(p);
            p.steps[step].parts.push("NO-SUCH-PART".into());
        });
        assert_named(&problems, &[&format!("step {} `parts`", step + 1), "NO-SUCH-PART"]);
    }

    #[test]
    fn part_of_another_line_is_rejected() {
        let problems = problems_after(|p| {
            let i = first_parts_step(p);
            let other = if p.product_lines.iter().any(|l| l == "DRL-18V") { "WR-HSM-FIN-ICDP" } else { "CB-DRL18-PAIR" };
            p.steps[i].parts.push(other.into());
        });
        assert_named(&problems, &["`parts`", "none of the procedure's product lines"]);
    }

    #[test]
    fn missing_or_escaping_image_is_rejected() {
        let problems = problems_after(|p| p.steps[1].image = Some("images/no_such_drawing.svg".into()));
        assert_named(&problems, &["step 2 `image`", "does not exist"]);
        for bad in ["../faults.json", "/etc/passwd.svg", "images/../../x.svg", "images\\a.svg", "faults.json"] {
            let problems = problems_after(|p| p.steps[0].image = Some(bad.into()));
            assert_named(&problems, &["step 1 `image`", bad]);
        }
    }

    #[test]
    fn unknown_fault_and_line_are_rejected() {
        let problems = problems_after(|p| {
            p.fault_ids.push("motor.no_such_fault".into());
            p.product_lines.push("XYZ-1".into());
        });
        assert_named(&problems, &["`fault_ids`", "motor.no_such_fault"]);
        assert_named(&problems, &["`product_lines`", "XYZ-1"]);
    }

    #[test]
    fn wrong_skill_level_is_rejected() {
        let problems = problems_after(|p| p.skill_level = SkillLevel::Customer);
        assert_named(&problems, &["`skill_level`", "hardest step"]);
        let problems = problems_after(|p| {
            let last = p.steps.len() - 1;
            p.steps[last].skill_level = SkillLevel::Specialist;
            p.skill_level = SkillLevel::Technician;
        });
        assert_named(&problems, &["`skill_level`", "is Technician", "is Specialist"]);
    }

    #[test]
    fn missing_safety_is_rejected() {
        let mut step = 0;
        let problems = problems_after(|p| {
            step = first_parts_step(p);
            p.steps[step].safety = None;
        });
        assert_named(&problems, &[&format!("step {} `safety`", step + 1), "fits parts"]);
        // Without any isolation notice the procedure as a whole is refused.
        let problems = problems_after(|p| {
            for s in &mut p.steps {
                if s.safety.as_ref().is_some_and(|x| x.kind.is_isolation()) {
                    s.safety.as_mut().expect("checked").kind = SafetyKind::Ppe;
                }
            }
        });
        assert_named(&problems, &["`steps`", "no step has an isolation notice"]);
        // Isolating only after the first part is fitted is too late.
        let problems = problems_after(|p| {
            let i = first_parts_step(p);
            for s in &mut p.steps[..=i] {
                if let Some(x) = s.safety.as_mut() {
                    x.kind = SafetyKind::Ppe;
                }
            }
            let last = p.steps.len() - 1;
            p.steps[last].safety =
                Some(Safety { kind: SafetyKind::PowerOff, text_en: "Switch off.".into(), text_zh: "断电。".into() });
        });
        assert_named(&problems, &["`safety`", "before the machine is isolated"]);
    }

    #[test]
    fn bad_ids_versions_minutes_and_texts_are_rejected() {
        let problems = problems_after(|p| {
            p.id = "Proc.Bad-Id".into();
            p.version = 0;
            p.title_zh = "Replace bearings".into();
            p.summary_en = "  ".into();
            p.steps[0].expected_minutes = 0;
            p.steps[1].expected_minutes = 481;
            p.steps[1].instruction_en = "x".repeat(1001);
            p.steps[1].tools.push("sonic_screwdriver".into());
        });
        assert_named(&problems, &["`id`", "must match"]);
        assert_named(&problems, &["`version`"]);
        assert_named(&problems, &["`title_zh`", "no Chinese"]);
        assert_named(&problems, &["`summary_en`", "empty"]);
        assert_named(&problems, &["step 1 `expected_minutes`", "is 0"]);
        assert_named(&problems, &["step 2 `expected_minutes`", "is 481"]);
        assert_named(&problems, &["step 2 `instruction_en`", "1001 characters"]);
        assert_named(&problems, &["step 2 `tools`", "sonic_screwdriver"]);
        assert!(problems.iter().all(|m| m.starts_with("procedure `Proc.Bad-Id`")), "{problems:?}");
        let problems = problems_after(|p| p.steps.clear());
        assert_named(&problems, &["`steps`", "has 0 steps"]);
    }

    /// A copy of the knowledge directory with `edit` applied to procedures.json.
    fn load_edited(name: &str, edit: impl FnOnce(&mut Value)) -> Result<Library, LibraryError> {
        let src = knowledge_dir();
        let dir = std::env::temp_dir().join(format!("fixline-procedures-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("images")).expect("temp dir");
        for entry in std::fs::read_dir(src.join("images")).expect("images") {
            let path = entry.expect("entry").path();
            std::fs::copy(&path, dir.join("images").join(path.file_name().expect("name"))).expect("copy image");
        }
        std::fs::copy(src.join("parts.json"), dir.join("parts.json")).expect("copy parts");
        let mut procedures = json(&src.join("procedures.json"));
        edit(&mut procedures);
        std::fs::write(dir.join("procedures.json"), procedures.to_string()).expect("write procedures");
        let t = taxonomy();
        let result = Library::load(&dir, &t.fault_ids(), &t.line_codes());
        let _ = std::fs::remove_dir_all(&dir);
        result
    }

    #[test]
    fn load_rejects_duplicate_ids_and_unknown_fields_naming_the_file() {
        let err = load_edited("dup", |v| {
            let list = v["procedures"].as_array_mut().expect("procedures");
            let first = list[0].clone();
            list.push(first);
        })
        .expect_err("duplicate id accepted");
        let LibraryError::File { path, message } = &err;
        assert!(path.ends_with("procedures.json"), "{path}");
        assert!(message.contains("`id`: appears twice"), "{message}");

        let err = load_edited("unknown", |v| {
            v["procedures"][2]["steps"][1]["torque_nm"] = Value::from(12);
        })
        .expect_err("unknown field accepted");
        let text = err.to_string();
        assert!(text.contains("procedures.json") && text.contains("procedures[2].steps[1]") && text.contains("torque_nm"), "{text}");
    }
}
