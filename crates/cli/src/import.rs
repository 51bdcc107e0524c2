//! `carefront import patients FILE`: bulk registration from a CSV file (the
//! columns documented in the README) or FHIR R4 Patient resources (NDJSON or
//! a Bundle).
//!
//! Re-running an import is safe: each row names the patient by an external
//! identifier (`source_system` + `source_id`, or a FHIR Patient's
//! `identifier` system and value, stored as a Patient identifier and indexed
//! as `i:system|value`) or by Carefront MRN; a row whose patient exists
//! updates it when something changed and is counted unchanged otherwise, so
//! nothing is created twice. Rows that fail validation are written, with the
//! reason naming the columns (FHIR: the elements), to a file beside the input
//! and nothing is stored for them. FHIR resources are read and validated by
//! the FHIR API's own reading (`carefront_server::fhir::patient_from_fhir`).
//!
//! Work is split in three, in batches: a reader thread parses and validates
//! rows (the CPU work); a preparer task looks each batch's patients up and
//! decides what each row does; the writer stores the batch through the
//! store's bulk path (multi-row statements, one block of MRNs). The
//! preparer works one batch ahead of the writer, so that the database is
//! not left waiting while a batch is looked up. The whole file is one
//! transaction unless `--commit-every` asks for parts. Each transaction
//! ends with one audit event naming the file, the lines and the counts;
//! every patient created or changed also gets its own history row (author
//! `import`). One audit event per patient would add a million events to a
//! million-row import without saying more than the history rows and the
//! import's event already do.

use crate::{DbArgs, OrgArg, open, org_id, redact};
use anyhow::{Context, Result, bail};
use carefront_domain::ValidationErrors;
use carefront_domain::audit::{Action, AuditEntry, Outcome};
use carefront_domain::directory::{Address, AdministrativeGender, Versioned};
use carefront_domain::patient::{
    AddressType, AddressUse, ContactMethod, Identifier, Patient, PatientAddress, Phone, PhoneKind,
    RegistrationRules,
};
use carefront_server::fhir::patient_from_fhir;
use carefront_store::{Db, WriteTx, new_id};
use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use jiff::civil::Date;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use tokio::sync::mpsc;

/// Author of the history rows an import writes.
const CHANGED_BY: &str = "import";
/// Database pages the import may keep in memory (SQLite), so that a large
/// import does not trade index pages with the operating system row by row.
const BULK_MEMORY_MIB: u32 = 1024;
/// Patients written from which the database's planner statistics are
/// refreshed at the end (see `Db::refresh_statistics`).
const STATISTICS_AFTER: u64 = 10_000;
/// Identifier system used when a row names none and `--source-system` is not given.
pub const DEFAULT_SOURCE_SYSTEM: &str = "urn:carefront:import";

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Import patients from CSV, FHIR NDJSON or a FHIR Bundle (idempotent:
    /// re-running updates by identifier and creates nothing twice).
    Patients(PatientsArgs),
}

#[derive(Args)]
pub struct PatientsArgs {
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    org: OrgArg,
    /// The file to import.
    file: PathBuf,
    /// csv, ndjson or bundle; by default from the file's extension
    /// (.csv; .ndjson or .jsonl; .json).
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Identifier system (a URI naming the system the rows come from) for
    /// CSV rows without a source_system column or value (a FHIR
    /// identifier names its own system).
    #[arg(long, default_value = DEFAULT_SOURCE_SYSTEM)]
    source_system: String,
    /// Commit every this many rows, so that other writers (a running
    /// server) get turns during a long import; 0 (the default) imports the
    /// whole file in one transaction: all of it or, on failure, nothing.
    #[arg(long, default_value_t = 0)]
    commit_every: u64,
    /// Rows read, validated and written together.
    #[arg(long, default_value_t = 5_000, hide = true)]
    batch: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Csv,
    Ndjson,
    Bundle,
}

impl Format {
    /// What a position in the input counts: lines, or a Bundle's entries
    /// (0-based, as in `Bundle.entry[i]`).
    fn unit(self) -> Unit {
        match self {
            Format::Csv | Format::Ndjson => Unit::Line,
            Format::Bundle => Unit::Entry,
        }
    }

    fn from_path(path: &Path) -> Option<Format> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("csv") => Some(Format::Csv),
            Some("ndjson" | "jsonl") => Some(Format::Ndjson),
            Some("json") => Some(Format::Bundle),
            _ => None,
        }
    }
}

/// Where a row is in the input, for rejection reasons and the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Line,
    Entry,
}

impl Unit {
    fn name(self) -> &'static str {
        match self {
            Unit::Line => "line",
            Unit::Entry => "entry",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Unit::Line => "lines",
            Unit::Entry => "entries",
        }
    }

    /// `on line 3` / `in entry 3`.
    fn at(self, n: u64) -> String {
        match self {
            Unit::Line => format!("on line {n}"),
            Unit::Entry => format!("in entry {n}"),
        }
    }
}

pub async fn run(command: ImportCommand) -> Result<ExitCode> {
    match command {
        ImportCommand::Patients(args) => patients(args).await,
    }
}

// ---------------------------------------------------------------------------
// CSV columns

/// A column of the CSV format. The header names columns (case and spaces
/// ignored; aliases accepted); any order, unknown columns are ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    SourceSystem,
    SourceId,
    Mrn,
    Given,
    Middle,
    Family,
    Suffix,
    PreferredName,
    BirthDate,
    Sex,
    GenderIdentity,
    Pronouns,
    PhoneMobile,
    PhoneHome,
    PhoneWork,
    SmsConsent,
    Email,
    Line1,
    Line2,
    City,
    State,
    PostalCode,
    Country,
    MailingLine1,
    MailingLine2,
    MailingCity,
    MailingState,
    MailingPostalCode,
    MailingCountry,
    Language,
    InterpreterNeeded,
    PreferredContact,
    Alerts,
}

impl Col {
    const ALL: [Col; 33] = [
        Col::SourceSystem,
        Col::SourceId,
        Col::Mrn,
        Col::Given,
        Col::Middle,
        Col::Family,
        Col::Suffix,
        Col::PreferredName,
        Col::BirthDate,
        Col::Sex,
        Col::GenderIdentity,
        Col::Pronouns,
        Col::PhoneMobile,
        Col::PhoneHome,
        Col::PhoneWork,
        Col::SmsConsent,
        Col::Email,
        Col::Line1,
        Col::Line2,
        Col::City,
        Col::State,
        Col::PostalCode,
        Col::Country,
        Col::MailingLine1,
        Col::MailingLine2,
        Col::MailingCity,
        Col::MailingState,
        Col::MailingPostalCode,
        Col::MailingCountry,
        Col::Language,
        Col::InterpreterNeeded,
        Col::PreferredContact,
        Col::Alerts,
    ];
    const ADDRESS: [Col; 6] = [
        Col::Line1,
        Col::Line2,
        Col::City,
        Col::State,
        Col::PostalCode,
        Col::Country,
    ];
    /// A mailing address (a PO box): a home address of type postal.
    const MAILING: [Col; 6] = [
        Col::MailingLine1,
        Col::MailingLine2,
        Col::MailingCity,
        Col::MailingState,
        Col::MailingPostalCode,
        Col::MailingCountry,
    ];
    const PHONES: [Col; 3] = [Col::PhoneMobile, Col::PhoneHome, Col::PhoneWork];

    /// The documented name (first) and accepted aliases.
    fn names(self) -> &'static [&'static str] {
        match self {
            Col::SourceSystem => &["source_system", "identifier_system"],
            Col::SourceId => &["source_id", "identifier_value", "external_id"],
            Col::Mrn => &["mrn"],
            Col::Given => &["given", "first_name", "given_name"],
            Col::Middle => &["middle", "middle_name"],
            Col::Family => &["family", "last_name", "family_name"],
            Col::Suffix => &["suffix"],
            Col::PreferredName => &["preferred_name", "nickname"],
            Col::BirthDate => &["birth_date", "dob", "date_of_birth"],
            Col::Sex => &["sex", "gender", "administrative_sex"],
            Col::GenderIdentity => &["gender_identity"],
            Col::Pronouns => &["pronouns"],
            Col::PhoneMobile => &["phone_mobile", "mobile_phone", "cell_phone"],
            Col::PhoneHome => &["phone_home", "home_phone"],
            Col::PhoneWork => &["phone_work", "work_phone"],
            Col::SmsConsent => &["sms_consent"],
            Col::Email => &["email"],
            Col::Line1 => &["line1", "address_line1", "address1", "street"],
            Col::Line2 => &["line2", "address_line2", "address2"],
            Col::City => &["city"],
            Col::State => &["state"],
            Col::PostalCode => &["postal_code", "zip", "zip_code"],
            Col::Country => &["country"],
            Col::MailingLine1 => &["mailing_line1", "mailing_address_line1", "mailing_street"],
            Col::MailingLine2 => &["mailing_line2", "mailing_address_line2"],
            Col::MailingCity => &["mailing_city"],
            Col::MailingState => &["mailing_state"],
            Col::MailingPostalCode => &["mailing_postal_code", "mailing_zip"],
            Col::MailingCountry => &["mailing_country"],
            Col::Language => &["language"],
            Col::InterpreterNeeded => &["interpreter_needed", "interpreter"],
            Col::PreferredContact => &["preferred_contact"],
            Col::Alerts => &["alerts"],
        }
    }

    fn name(self) -> &'static str {
        self.names()[0]
    }

    fn from_header(h: &str) -> Option<Col> {
        let h: String = h
            .trim()
            .trim_start_matches('\u{feff}')
            .to_ascii_lowercase()
            .replace([' ', '-'], "_");
        Col::ALL
            .into_iter()
            .find(|c| c.names().contains(&h.as_str()))
    }
}

/// Which columns a file has, and where.
#[derive(Debug, Clone)]
struct Layout {
    /// Field index of each column (by `Col as usize`), when present.
    at: [Option<usize>; Col::ALL.len()],
    width: usize,
    ignored: Vec<String>,
}

impl Layout {
    fn read(header: &csv::StringRecord) -> Result<Layout> {
        let mut at = [None; Col::ALL.len()];
        let mut ignored = Vec::new();
        for (i, h) in header.iter().enumerate() {
            match Col::from_header(h) {
                Some(c) => {
                    if at[c as usize].replace(i).is_some() {
                        bail!("the header names column {} twice", c.name());
                    }
                }
                None => ignored.push(h.trim().to_string()),
            }
        }
        let missing: Vec<&str> = [Col::Given, Col::Family, Col::BirthDate, Col::Sex]
            .into_iter()
            .filter(|c| at[*c as usize].is_none())
            .map(Col::name)
            .collect();
        if !missing.is_empty() {
            bail!(
                "the header lacks required column(s): {} (see the Import section of the README)",
                missing.join(", ")
            );
        }
        if at[Col::SourceId as usize].is_none() && at[Col::Mrn as usize].is_none() {
            bail!(
                "the header needs a source_id column (the patient's id in the system the file \
                 comes from) or an mrn column, so that re-running the import updates instead of \
                 creating patients again"
            );
        }
        Ok(Layout {
            at,
            width: header.len(),
            ignored,
        })
    }

    fn has(&self, c: Col) -> bool {
        self.at[c as usize].is_some()
    }

    fn has_any(&self, cols: &[Col]) -> bool {
        cols.iter().any(|c| self.has(*c))
    }

    /// The trimmed cell, `None` when the column is absent or the cell empty.
    fn cell<'r>(&self, row: &'r csv::StringRecord, c: Col) -> Option<&'r str> {
        self.at[c as usize]
            .and_then(|i| row.get(i))
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }
}

/// The column of the CSV format that a domain validation field comes from:
/// `phone_cols` are the phone columns of the row's phones, in order,
/// `address_cols` the column groups (home, mailing) of its addresses.
fn column_of(field: &str, phone_cols: &[Col], address_cols: &[[Col; 6]]) -> String {
    if let Some(rest) = field.strip_prefix("addresses[")
        && let Some((i, part)) = rest.split_once("].")
    {
        let group = i
            .parse::<usize>()
            .ok()
            .and_then(|i| address_cols.get(i))
            .unwrap_or(&Col::ADDRESS);
        let at = match part {
            "line2" => 1,
            "city" => 2,
            "state" => 3,
            "postal_code" => 4,
            "country" => 5,
            // line1, and the use or period of the whole address.
            _ => 0,
        };
        return group[at].name().to_string();
    }
    if let Some(rest) = field.strip_prefix("phones[")
        && let Some(i) = rest.split(']').next().and_then(|i| i.parse::<usize>().ok())
        && let Some(c) = phone_cols.get(i)
    {
        return c.name().to_string();
    }
    match field {
        "phones" => "phone_mobile".into(),
        "addresses" => "line1".into(),
        "identifiers[0].system" => "source_system".into(),
        "identifiers[0].value" => "source_id".into(),
        other => other.to_string(),
    }
}

/// `yes`/`no` and the usual spellings.
fn flag(v: Option<&str>) -> Result<bool, String> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None => Ok(false),
        Some("y" | "yes" | "true" | "t" | "1" | "x") => Ok(true),
        Some("n" | "no" | "false" | "f" | "0") => Ok(false),
        Some(other) => Err(format!("'{other}' is not yes or no")),
    }
}

/// `YYYY-MM-DD` or `MM/DD/YYYY` (`M/D/YYYY`).
fn birth_date(v: &str) -> Result<Date, String> {
    let bad = || format!("'{v}' is not a date: write YYYY-MM-DD or MM/DD/YYYY");
    let nums: Vec<&str> = v.split(['-', '/']).collect();
    if nums.len() != 3
        || nums
            .iter()
            .any(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(bad());
    }
    let n = |s: &str| s.parse::<i16>().map_err(|_| bad());
    let (y, m, d) = if v.contains('-') && nums[0].len() == 4 {
        (n(nums[0])?, n(nums[1])?, n(nums[2])?)
    } else if v.contains('/') && nums[2].len() == 4 {
        (n(nums[2])?, n(nums[0])?, n(nums[1])?)
    } else {
        return Err(bad());
    };
    let (m, d) = (
        i8::try_from(m).map_err(|_| bad())?,
        i8::try_from(d).map_err(|_| bad())?,
    );
    Date::new(y, m, d).map_err(|_| format!("'{v}' is not a real date"))
}

fn sex(v: &str) -> Result<AdministrativeGender, String> {
    let lower = v.to_ascii_lowercase();
    let code = match lower.as_str() {
        "m" => "male",
        "f" => "female",
        "o" | "x" => "other",
        "u" => "unknown",
        other => other,
    };
    AdministrativeGender::from_code(code)
        .ok_or_else(|| format!("'{v}' is not one of male, female, other, unknown (or M, F, O, U)"))
}

/// A Carefront MRN as typed (`123`) in its stored, zero-padded form.
fn mrn(v: &str) -> String {
    if v.bytes().all(|b| b.is_ascii_digit()) && v.len() <= 8 {
        format!("{v:0>8}")
    } else {
        v.to_string()
    }
}

/// Reads one CSV row into a patient to create (or to take fields from),
/// validated, and the keys it is found under. Problems name the columns.
fn csv_row(
    layout: &Layout,
    row: &csv::StringRecord,
    source_system: &str,
    rules: &RegistrationRules,
    today: Date,
) -> Result<(Vec<String>, Patient), String> {
    let mut problems = ValidationErrors::new();
    if row.len() != layout.width {
        problems.add(
            "row",
            format!("has {} fields, the header has {}", row.len(), layout.width),
        );
        return Err(problems.to_string());
    }
    let text = |c: Col| layout.cell(row, c).map(str::to_string);
    let mut keys = Vec::new();
    let mut identifiers = Vec::new();
    if let Some(value) = text(Col::SourceId) {
        let system = text(Col::SourceSystem).unwrap_or_else(|| source_system.to_string());
        keys.push(format!("i:{system}|{value}"));
        identifiers.push(Identifier { system, value });
    }
    if let Some(m) = text(Col::Mrn) {
        keys.push(format!("m:{}", mrn(&m)));
    }
    if keys.is_empty() {
        problems.add(
            "source_id",
            "is needed (or mrn of an existing patient) so that re-running the import does not create the patient again",
        );
    }
    let birth = match layout.cell(row, Col::BirthDate).map(birth_date) {
        Some(Ok(d)) => Some(d),
        Some(Err(e)) => {
            problems.add("birth_date", e);
            None
        }
        None => {
            problems.add("birth_date", "is required");
            None
        }
    };
    let sex = match layout.cell(row, Col::Sex).map(sex) {
        Some(Ok(s)) => Some(s),
        Some(Err(e)) => {
            problems.add("sex", e);
            None
        }
        None => {
            problems.add("sex", "is required");
            None
        }
    };
    let sms = flag(layout.cell(row, Col::SmsConsent)).unwrap_or_else(|e| {
        problems.add("sms_consent", e);
        false
    });
    let interpreter_needed = flag(layout.cell(row, Col::InterpreterNeeded)).unwrap_or_else(|e| {
        problems.add("interpreter_needed", e);
        false
    });
    let preferred_contact = match layout.cell(row, Col::PreferredContact) {
        None => None,
        Some(v) => match ContactMethod::from_code(&v.to_ascii_lowercase()) {
            Some(m) => Some(m),
            None => {
                problems.add(
                    "preferred_contact",
                    format!("'{v}' is not one of phone, sms, email, mail, portal"),
                );
                None
            }
        },
    };
    let mut phones = Vec::new();
    let mut phone_cols = Vec::new();
    for (c, kind) in Col::PHONES.into_iter().zip(PhoneKind::ALL) {
        if let Some(number) = text(c) {
            phones.push(Phone {
                number,
                kind,
                sms_consent: kind == PhoneKind::Mobile && sms,
            });
            phone_cols.push(c);
        }
    }
    // The home address, then the mailing address, when given.
    let mut addresses = Vec::new();
    let mut address_cols = Vec::new();
    for (cols, type_) in [
        (Col::ADDRESS, None),
        (Col::MAILING, Some(AddressType::Postal)),
    ] {
        if cols.iter().any(|c| layout.cell(row, *c).is_some()) {
            let [line1, line2, city, state, postal_code, country] = cols;
            addresses.push(PatientAddress {
                type_,
                ..PatientAddress::home(Address {
                    line1: text(line1).unwrap_or_default(),
                    line2: text(line2),
                    city: text(city).unwrap_or_default(),
                    state: text(state).unwrap_or_default(),
                    postal_code: text(postal_code).unwrap_or_default(),
                    country: text(country).unwrap_or_default(),
                })
            });
            address_cols.push(cols);
        }
    }
    let (Some(birth_date), Some(sex)) = (birth, sex) else {
        return Err(problems.to_string());
    };
    let patient = Patient {
        mrn: String::new(),
        given: text(Col::Given).unwrap_or_default(),
        middle: text(Col::Middle),
        family: text(Col::Family).unwrap_or_default(),
        suffix: text(Col::Suffix),
        preferred_name: text(Col::PreferredName),
        birth_date,
        sex,
        gender_identity: text(Col::GenderIdentity),
        pronouns: text(Col::Pronouns),
        addresses,
        phones,
        email: text(Col::Email),
        language: text(Col::Language),
        interpreter_needed,
        preferred_contact,
        contacts: Vec::new(),
        alerts: text(Col::Alerts)
            .map(|a| a.split(';').map(str::to_string).collect())
            .unwrap_or_default(),
        identifiers,
        active: true,
        replaced_by: None,
    };
    match patient.validate(rules, today) {
        Ok(p) if problems.is_empty() => Ok((keys, p)),
        Ok(_) => Err(problems.to_string()),
        Err(errors) => {
            for e in errors.errors() {
                problems.add(
                    column_of(&e.field, &phone_cols, &address_cols),
                    e.message.clone(),
                );
            }
            Err(problems.to_string())
        }
    }
}

/// What an import row may change in a stored patient: the fields of its
/// columns (a CSV file's header), or everything a FHIR Patient carries.
#[derive(Debug, Clone)]
// One value per file; boxing the layout would only add an indirection.
#[allow(clippy::large_enum_variant)]
enum Coverage {
    Columns(Layout),
    Resource,
}

impl Coverage {
    /// The stored patient with the fields this import covers taken from
    /// `row`. The MRN, merged-into link and other identifiers stay.
    fn merge(&self, stored: &Patient, row: &Patient) -> Patient {
        let mut p = stored.clone();
        for id in &row.identifiers {
            if !p.identifiers.contains(id) {
                p.identifiers.push(id.clone());
            }
        }
        let layout = match self {
            Coverage::Resource => {
                let identifiers = std::mem::take(&mut p.identifiers);
                return Patient {
                    mrn: stored.mrn.clone(),
                    identifiers,
                    replaced_by: stored.replaced_by.clone(),
                    ..row.clone()
                };
            }
            Coverage::Columns(layout) => layout,
        };
        macro_rules! take {
            ($($col:ident => $field:ident),* $(,)?) => {
                $(if layout.has(Col::$col) { p.$field = row.$field.clone(); })*
            };
        }
        take!(
            Given => given,
            Middle => middle,
            Family => family,
            Suffix => suffix,
            PreferredName => preferred_name,
            BirthDate => birth_date,
            Sex => sex,
            GenderIdentity => gender_identity,
            Pronouns => pronouns,
            Email => email,
            Language => language,
            InterpreterNeeded => interpreter_needed,
            PreferredContact => preferred_contact,
            Alerts => alerts,
        );
        // The home address and the mailing address of the columns replace
        // the stored ones; other addresses (work, old...) stay.
        if layout.has_any(&Col::ADDRESS) {
            let at = p.home_address_index();
            replace_address(
                &mut p.addresses,
                at,
                row.addresses.iter().find(|a| a.is_residence()),
            );
        }
        if layout.has_any(&Col::MAILING) {
            let at = p.addresses.iter().position(is_mailing_only);
            replace_address(
                &mut p.addresses,
                at,
                row.addresses.iter().find(|a| is_mailing_only(a)),
            );
        }
        for (c, kind) in Col::PHONES.into_iter().zip(PhoneKind::ALL) {
            if layout.has(c) {
                p.phones.retain(|ph| ph.kind != kind);
                p.phones
                    .extend(row.phones.iter().filter(|ph| ph.kind == kind).cloned());
            } else if kind == PhoneKind::Mobile && layout.has(Col::SmsConsent) {
                let consent = row.phones.iter().any(|ph| ph.sms_consent);
                for ph in p.phones.iter_mut().filter(|ph| ph.kind == kind) {
                    ph.sms_consent = consent;
                }
            }
        }
        p.phones
            .sort_by_key(|ph| PhoneKind::ALL.iter().position(|k| *k == ph.kind));
        p
    }

    /// The column or element naming the patient by `key` (`m:` MRN or `i:`
    /// identifier), for reasons about finding the patient.
    fn key_field(&self, key: &str) -> &'static str {
        match self {
            Coverage::Resource => "Patient.identifier",
            Coverage::Columns(_) if key.starts_with("m:") => "mrn",
            Coverage::Columns(_) => "source_id",
        }
    }

    /// Why a row naming only MRNs that no patient has is not imported.
    fn unknown_mrn(&self) -> &'static str {
        match self {
            Coverage::Resource => {
                "Patient.identifier: no patient has this MRN (add an identifier of the system \
                 the resource comes from to create new patients)"
            }
            Coverage::Columns(_) => {
                "mrn: no patient has this MRN (give source_id to create new patients)"
            }
        }
    }

    /// The column or element of a field named by [`Patient::validate`] when
    /// a stored patient with the row's fields fails validation.
    fn field(&self, field: &str) -> String {
        match self {
            Coverage::Columns(_) => column_of(field, &Col::PHONES, &[]),
            // The resource's fields passed on their own: what fails comes
            // from the stored patient (its identifiers) or their mix.
            Coverage::Resource if field.starts_with("identifiers") => "Patient.identifier".into(),
            Coverage::Resource => format!("Patient ({field})"),
        }
    }

    /// Why a new patient cannot be created from a file without some columns
    /// the organization requires.
    fn missing_for_create(&self, rules: &RegistrationRules) -> Option<String> {
        let Coverage::Columns(layout) = self else {
            return None;
        };
        let mut why = Vec::new();
        if rules.require_phone && !layout.has_any(&Col::PHONES) {
            why.push("phone_mobile: a phone is required and the file has no phone column");
        }
        if rules.require_address && !layout.has_any(&Col::ADDRESS) {
            why.push("line1: an address is required and the file has no address columns");
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// A mailing address as the CSV columns give it: a home address of type
/// postal, in use.
fn is_mailing_only(a: &PatientAddress) -> bool {
    a.use_ == AddressUse::Home && a.type_ == Some(AddressType::Postal) && a.end.is_none()
}

/// Puts `new` where `at` is (or first, for a home address, and last
/// otherwise, when there is none), or removes the address at `at`.
fn replace_address(
    list: &mut Vec<PatientAddress>,
    at: Option<usize>,
    new: Option<&PatientAddress>,
) {
    match (at, new) {
        (Some(i), Some(a)) => list[i] = a.clone(),
        (Some(i), None) => {
            list.remove(i);
        }
        (None, Some(a)) if a.is_residence() => list.insert(0, a.clone()),
        (None, Some(a)) => list.push(a.clone()),
        (None, None) => {}
    }
}

// ---------------------------------------------------------------------------
// Reading

/// A row as it was in the input, for the rejected-rows file.
#[derive(Debug, Clone)]
enum Raw {
    Csv(csv::ByteRecord),
    Json(String),
}

// Items are moved once through a bounded channel; their size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Item {
    Ready {
        line: u64,
        raw: Raw,
        keys: Vec<String>,
        patient: Patient,
    },
    Rejected {
        line: u64,
        raw: Raw,
        reason: String,
    },
}

struct Batch {
    items: Vec<Item>,
    /// Bytes of the input read so far, for the progress bar.
    bytes: u64,
}

/// Reads and validates the input on its own thread, sending batches.
fn read_csv(
    path: &Path,
    layout: Layout,
    source_system: String,
    rules: RegistrationRules,
    batch: usize,
    tx: mpsc::Sender<Result<Batch>>,
) -> Result<()> {
    // Rows of a file without phone or address columns may still update
    // patients; creating patients from such a file is refused per row.
    let rules = RegistrationRules {
        require_phone: rules.require_phone && layout.has_any(&Col::PHONES),
        require_address: rules.require_address && layout.has_any(&Col::ADDRESS),
        ..rules
    };
    let today = jiff::Zoned::now().date();
    let mut reader = csv_reader(path)?;
    reader.byte_headers()?;
    let mut items = Vec::with_capacity(batch);
    loop {
        let mut record = csv::ByteRecord::new();
        let more = reader
            .read_byte_record(&mut record)
            .with_context(|| format!("cannot read {}", path.display()))?;
        if more {
            let line = record.position().map(|p| p.line()).unwrap_or(0);
            items.push(match csv::StringRecord::from_byte_record(record) {
                Err(e) => Item::Rejected {
                    line,
                    raw: Raw::Csv(e.into_byte_record()),
                    reason: "row: is not UTF-8 text".into(),
                },
                Ok(row) => {
                    let checked = csv_row(&layout, &row, &source_system, &rules, today);
                    let raw = Raw::Csv(row.into_byte_record());
                    match checked {
                        Ok((keys, patient)) => Item::Ready {
                            line,
                            raw,
                            keys,
                            patient,
                        },
                        Err(reason) => Item::Rejected { line, raw, reason },
                    }
                }
            });
        }
        if items.len() >= batch || (!more && !items.is_empty()) {
            let bytes = reader.position().byte();
            let full = std::mem::replace(&mut items, Vec::with_capacity(batch));
            if tx.blocking_send(Ok(Batch { items: full, bytes })).is_err() {
                return Ok(());
            }
        }
        if !more {
            return Ok(());
        }
    }
}

fn csv_reader(path: &Path) -> Result<csv::Reader<File>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(csv::ReaderBuilder::new().flexible(true).from_reader(file))
}

/// FHIR NDJSON: one Patient resource per line; a Bundle: a JSON object
/// whose `entry[].resource` are Patients (read whole into memory).
fn read_fhir(
    path: &Path,
    format: Format,
    rules: RegistrationRules,
    batch: usize,
    tx: mpsc::Sender<Result<Batch>>,
) -> Result<()> {
    let today = jiff::Zoned::now().date();
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut items = Vec::with_capacity(batch);
    let send = |items: &mut Vec<Item>, bytes: u64| -> bool {
        let full = std::mem::replace(items, Vec::with_capacity(batch));
        tx.blocking_send(Ok(Batch { items: full, bytes })).is_ok()
    };
    let item = |line: u64, raw: String, value: serde_json::Value| match fhir_patient(
        &value, &rules, today,
    ) {
        Ok((keys, patient)) => Item::Ready {
            line,
            raw: Raw::Json(raw),
            keys,
            patient,
        },
        Err(reason) => Item::Rejected {
            line,
            raw: Raw::Json(raw),
            reason,
        },
    };
    match format {
        Format::Ndjson => {
            let mut reader = BufReader::new(file);
            let mut bytes = 0u64;
            let mut buf = Vec::new();
            for line in 1u64.. {
                buf.clear();
                let n = reader
                    .read_until(b'\n', &mut buf)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                if n == 0 {
                    break;
                }
                bytes += n as u64;
                let text = String::from_utf8_lossy(&buf);
                let text = text
                    .trim_start_matches('\u{feff}')
                    .trim_end_matches(['\n', '\r']);
                if text.trim().is_empty() {
                    // Blank lines (a trailing newline) are not resources.
                } else if std::str::from_utf8(&buf).is_err() {
                    items.push(Item::Rejected {
                        line,
                        raw: Raw::Json(text.to_string()),
                        reason: "line: is not UTF-8 text".into(),
                    });
                } else {
                    items.push(match serde_json::from_str::<serde_json::Value>(text) {
                        Ok(v) => item(line, text.to_string(), v),
                        Err(e) => Item::Rejected {
                            line,
                            raw: Raw::Json(text.to_string()),
                            reason: format!("line: is not JSON ({e})"),
                        },
                    });
                }
                if items.len() >= batch && !send(&mut items, bytes) {
                    return Ok(());
                }
            }
            if !items.is_empty() {
                send(&mut items, bytes);
            }
        }
        Format::Bundle | Format::Csv /* not read here */ => {
            let size = file.metadata().map(|m| m.len()).unwrap_or(0);
            let mut bundle: serde_json::Value = serde_json::from_reader(BufReader::new(file))
                .with_context(|| format!("{} is not a JSON document", path.display()))?;
            if bundle.get("resourceType").and_then(|t| t.as_str()) != Some("Bundle") {
                bail!(
                    "{} is not a FHIR Bundle (resourceType must be Bundle; for one Patient \
                     resource per line use an .ndjson file or --format ndjson)",
                    path.display()
                );
            }
            let entries = match bundle.get_mut("entry").map(serde_json::Value::take) {
                None | Some(serde_json::Value::Null) => Vec::new(),
                Some(serde_json::Value::Array(entries)) => entries,
                Some(_) => bail!("{}: Bundle.entry must be an array", path.display()),
            };
            drop(bundle);
            let total = entries.len().max(1) as u64;
            for (i, mut entry) in entries.into_iter().enumerate() {
                let resource = entry
                    .get_mut("resource")
                    .map(serde_json::Value::take)
                    .unwrap_or_default();
                items.push(item(i as u64, resource.to_string(), resource));
                // The file was read at once: progress is the share of
                // entries read.
                let bytes = size * (i as u64 + 1) / total;
                if items.len() >= batch && !send(&mut items, bytes) {
                    return Ok(());
                }
            }
            if !items.is_empty() {
                send(&mut items, size);
            }
        }
    }
    Ok(())
}

/// A FHIR Patient resource as a patient to create, read and validated by
/// the FHIR API's own reading ([`patient_from_fhir`]: problems name the
/// element, e.g. `Patient.birthDate`), and the keys it is found under: its
/// identifiers (`i:system|value`) and the MRNs it names (identifiers with
/// system `http://carefront.example/fhir/sid/mrn`, as `m:`).
fn fhir_patient(
    value: &serde_json::Value,
    rules: &RegistrationRules,
    today: Date,
) -> Result<(Vec<String>, Patient), String> {
    const NO_IDENTIFIER: &str = "Patient.identifier: is needed (system and value of the \
        patient's id in the system the file comes from, or the MRN of an existing patient) so \
        that re-running the import does not create the patient again";
    let read = patient_from_fhir(value, rules, today).map_err(|issues| {
        let mut reasons: Vec<&str> = issues.iter().map(|i| i.diagnostics.as_str()).collect();
        let named = |i: &carefront_server::fhir::Issue| {
            i.expression
                .as_deref()
                .is_some_and(|e| e.starts_with("Patient.identifier") || e == "resourceType")
        };
        let no_identifier = value
            .get("identifier")
            .and_then(serde_json::Value::as_array)
            .is_none_or(Vec::is_empty);
        if no_identifier && !issues.iter().any(named) {
            reasons.push(NO_IDENTIFIER);
        }
        reasons.join("; ")
    })?;
    let mut keys: Vec<String> = read
        .patient
        .identifiers
        .iter()
        .map(|i| format!("i:{}|{}", i.system, i.value))
        .collect();
    keys.extend(read.mrns.iter().map(|m| format!("m:{}", mrn(m))));
    if keys.is_empty() {
        return Err(NO_IDENTIFIER.into());
    }
    Ok((keys, read.patient))
}

// ---------------------------------------------------------------------------
// Writing

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    created: u64,
    updated: u64,
    unchanged: u64,
    rejected: u64,
}

impl Counts {
    fn add(&mut self, o: Counts) {
        self.created += o.created;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.rejected += o.rejected;
    }

    fn rows(&self) -> u64 {
        self.created + self.updated + self.unchanged + self.rejected
    }
}

/// Where rejected rows go: `<stem>.rejected.csv` (original row, `line`,
/// `reason`) for CSV input, `<stem>.rejected.ndjson` for FHIR input (one
/// JSON object per rejected resource: `line`, or `entry` for a Bundle,
/// `reason` and the `resource` as it was, or the line's text when it was
/// not JSON).
struct Rejects {
    path: PathBuf,
    unit: Unit,
    header: Option<csv::ByteRecord>,
    csv: Option<csv::Writer<File>>,
    json: Option<std::io::BufWriter<File>>,
}

impl Rejects {
    fn path_for(input: &Path, format: Format) -> PathBuf {
        let stem = input
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "import".into());
        let ext = if format == Format::Csv {
            "csv"
        } else {
            "ndjson"
        };
        input.with_file_name(format!("{stem}.rejected.{ext}"))
    }

    fn write(&mut self, line: u64, raw: &Raw, reason: &str) -> Result<()> {
        match raw {
            Raw::Csv(record) => {
                if self.csv.is_none() {
                    let mut w = csv::WriterBuilder::new()
                        .flexible(true)
                        .from_path(&self.path)
                        .with_context(|| format!("cannot write {}", self.path.display()))?;
                    if let Some(h) = &self.header {
                        let mut h = h.clone();
                        h.push_field(b"line");
                        h.push_field(b"reason");
                        w.write_byte_record(&h)?;
                    }
                    self.csv = Some(w);
                }
                let mut r = record.clone();
                r.push_field(line.to_string().as_bytes());
                r.push_field(reason.as_bytes());
                self.csv
                    .as_mut()
                    .expect("opened above")
                    .write_byte_record(&r)?;
            }
            Raw::Json(text) => {
                if self.json.is_none() {
                    let f = File::create(&self.path)
                        .with_context(|| format!("cannot write {}", self.path.display()))?;
                    self.json = Some(std::io::BufWriter::new(f));
                }
                // The resource exactly as sent (one line of JSON text), or
                // the text as a string when it is not JSON.
                let resource = match serde_json::from_str::<serde_json::Value>(text) {
                    Ok(_) => text.trim().to_string(),
                    Err(_) => serde_json::Value::from(text.as_str()).to_string(),
                };
                writeln!(
                    self.json.as_mut().expect("opened above"),
                    "{{\"{}\":{line},\"reason\":{},\"resource\":{resource}}}",
                    self.unit.name(),
                    serde_json::Value::from(reason),
                )?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<bool> {
        if let Some(w) = self.csv.as_mut() {
            w.flush()?;
        }
        if let Some(w) = self.json.as_mut() {
            w.flush()?;
        }
        Ok(self.csv.is_some() || self.json.is_some())
    }
}

/// A batch worked out against the database, ready to be written.
struct Prepared {
    /// Rejected rows and their reasons, in the order they are reported.
    rejected: Vec<(u64, Raw, String)>,
    creates: Vec<(String, Patient)>,
    updates: Vec<(Versioned<Patient>, Patient)>,
    counts: Counts,
    first_line: u64,
    last_line: u64,
    /// Bytes of the input read so far, for the progress bar.
    bytes: u64,
    /// The transaction commits after this batch (`--commit-every`).
    ends_part: bool,
}

/// Decides, batch after batch, what each row does: rejected, created,
/// updated or unchanged. Rows are looked up in committed data, so this
/// runs a batch ahead of the writer (see [`prepare_batches`]).
struct Preparer {
    db: Db,
    org_id: String,
    coverage: Coverage,
    rules: RegistrationRules,
    today: Date,
    unit: Unit,
    /// Keys (and `id:` of patients found) of the rows taken so far, with
    /// their line: the same patient twice in one file is one change.
    seen: HashMap<Box<str>, u64>,
    /// Identifier systems, and whether the organization has patients with them.
    systems: HashMap<String, bool>,
}

impl Preparer {
    async fn batch(&mut self, batch: Batch) -> Result<Prepared> {
        let Preparer {
            db,
            org_id,
            coverage,
            rules,
            today,
            unit,
            seen,
            systems,
        } = self;
        let (unit, today) = (*unit, *today);
        let mut counts = Counts::default();
        let mut rejected = Vec::new();
        let mut reject = |line: u64, raw: Raw, reason: String, counts: &mut Counts| {
            counts.rejected += 1;
            rejected.push((line, raw, reason));
        };
        let lines = batch.items.iter().map(|i| match i {
            Item::Ready { line, .. } | Item::Rejected { line, .. } => *line,
        });
        let (first_line, last_line) = lines.fold((u64::MAX, 0), |(a, b), l| (a.min(l), b.max(l)));
        let mut ready = Vec::with_capacity(batch.items.len());
        for item in batch.items {
            match item {
                Item::Rejected { line, raw, reason } => reject(line, raw, reason, &mut counts),
                Item::Ready {
                    line,
                    raw,
                    keys,
                    patient,
                } => {
                    // The same patient twice in one file: the first row wins.
                    let again = keys.iter().find_map(|k| seen.get(k.as_str()).copied());
                    if let Some(first) = again {
                        let reason = format!(
                            "{}: the same patient is {} of this file",
                            coverage.key_field(&keys[0]),
                            unit.at(first)
                        );
                        reject(line, raw, reason, &mut counts);
                        continue;
                    }
                    for k in &keys {
                        seen.insert(k.as_str().into(), line);
                    }
                    ready.push((line, raw, keys, patient));
                }
            }
        }
        // Only identifiers of systems the organization already has can name
        // existing patients: a first import of a source looks nothing up.
        for (_, _, row_keys, _) in &ready {
            for k in row_keys {
                if let Some(system) = identifier_system(k)
                    && !systems.contains_key(system)
                {
                    let prefix = format!("i:{system}|");
                    let found = db.ids_by_key_prefix::<Patient>(org_id, &prefix, 1).await?;
                    systems.insert(system.to_string(), !found.is_empty());
                }
            }
        }
        let keys: Vec<String> = ready
            .iter()
            .flat_map(|(_, _, k, _)| k.iter())
            .filter(|k| identifier_system(k).is_none_or(|s| systems.get(s) == Some(&true)))
            .cloned()
            .collect();
        // Looked up in committed data: rows of this run cannot name patients
        // it created and has not committed (their MRNs are new, identifiers
        // were checked against `seen`), so the batches still being written
        // do not matter; and PostgreSQL
        // plans lookups in a table growing inside this transaction without
        // statistics, as scans.
        let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
        for (key, id) in db.ids_with_keys::<Patient>(org_id, &keys).await? {
            by_key.entry(key).or_default().push(id);
        }
        let mut stored: HashMap<String, Versioned<Patient>> = HashMap::new();
        if !by_key.is_empty() {
            let mut wanted: Vec<String> = by_key.values().flatten().cloned().collect();
            // A merged patient's rows update the patient it was merged into.
            for _hop in 0..3 {
                wanted.retain(|id| !stored.contains_key(id));
                wanted.sort();
                wanted.dedup();
                if wanted.is_empty() {
                    break;
                }
                let found = db.get_many::<Patient>(org_id, &wanted).await?;
                wanted = found
                    .iter()
                    .filter_map(|p| p.value.replaced_by.clone())
                    .collect();
                stored.extend(found.into_iter().map(|p| (p.id.clone(), p)));
            }
        }
        let survivor = |id: &str| -> Option<&Versioned<Patient>> {
            let mut p = stored.get(id)?;
            for _ in 0..3 {
                match &p.value.replaced_by {
                    Some(next) => p = stored.get(next)?,
                    None => return Some(p),
                }
            }
            None
        };
        let missing_for_create = coverage.missing_for_create(rules);
        let mut creates: Vec<(String, Patient)> = Vec::new();
        let mut updates: Vec<(Versioned<Patient>, Patient)> = Vec::new();
        for (line, raw, keys, patient) in ready {
            let mut targets: Vec<&Versioned<Patient>> = keys
                .iter()
                .filter_map(|k| by_key.get(k))
                .flatten()
                .filter_map(|id| survivor(id))
                .collect();
            targets.sort_by(|a, b| a.id.cmp(&b.id));
            targets.dedup_by(|a, b| a.id == b.id);
            match targets.as_slice() {
                [] if keys.iter().all(|k| k.starts_with("m:")) => {
                    reject(line, raw, coverage.unknown_mrn().into(), &mut counts);
                }
                [] => match &missing_for_create {
                    Some(why) => reject(line, raw, why.clone(), &mut counts),
                    None => creates.push((new_id(), patient)),
                },
                [current] => {
                    // Reached again through another identifier or the MRN.
                    let id_key = format!("id:{}", current.id);
                    if let Some(first) = seen.get(id_key.as_str()) {
                        let reason = format!(
                            "{}: the same patient is {} of this file",
                            coverage.key_field("m:"),
                            unit.at(*first)
                        );
                        reject(line, raw, reason, &mut counts);
                        continue;
                    }
                    seen.insert(id_key.into(), line);
                    let merged = coverage.merge(&current.value, &patient);
                    if merged == current.value {
                        counts.unchanged += 1;
                        continue;
                    }
                    match merged.validate(rules, today) {
                        Ok(merged) if merged == current.value => counts.unchanged += 1,
                        Ok(merged) => updates.push(((*current).clone(), merged)),
                        Err(errors) => {
                            let reason: Vec<String> = errors
                                .errors()
                                .iter()
                                .map(|e| format!("{}: {}", coverage.field(&e.field), e.message))
                                .collect();
                            reject(line, raw, reason.join("; "), &mut counts);
                        }
                    }
                }
                several => {
                    let reason = format!(
                        "{}: {} patients have this identifier or MRN (MRNs {}); merge them first",
                        coverage.key_field("i:"),
                        several.len(),
                        several
                            .iter()
                            .map(|p| p.value.mrn.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    reject(line, raw, reason, &mut counts);
                }
            }
        }
        counts.created = creates.len() as u64;
        counts.updated = updates.len() as u64;
        Ok(Prepared {
            rejected,
            creates,
            updates,
            counts,
            first_line,
            last_line,
            bytes: batch.bytes,
            ends_part: false,
        })
    }
}

/// Prepares the reader's batches while the writer stores the previous one,
/// so that lookups and row building overlap the database's work. Batches
/// are prepared in file order, one at a time: `seen` and `systems` carry
/// every earlier row. After a batch that ends a transaction, waits for the
/// writer to commit it and begin the next (`begun`), so that lookups see
/// the committed part and, on SQLite, no other writer between lookup and
/// write, as when preparing and writing took turns.
async fn prepare_batches(
    mut preparer: Preparer,
    mut batches: mpsc::Receiver<Result<Batch>>,
    prepared: mpsc::Sender<Result<Prepared>>,
    mut begun: mpsc::Receiver<()>,
    commit_every: u64,
) {
    let mut part_rows = 0;
    while let Some(batch) = batches.recv().await {
        let next = match batch {
            Ok(batch) => preparer.batch(batch).await.map(|mut p| {
                part_rows += p.counts.rows();
                p.ends_part = commit_every > 0 && part_rows >= commit_every;
                p
            }),
            Err(e) => Err(e),
        };
        let ends_part = next.as_ref().is_ok_and(|p| p.ends_part);
        let failed = next.is_err();
        if prepared.send(next).await.is_err() || failed {
            return;
        }
        if ends_part {
            part_rows = 0;
            if begun.recv().await.is_none() {
                return;
            }
        }
    }
}

/// The identifier system of an `i:system|value` key.
fn identifier_system(key: &str) -> Option<&str> {
    key.strip_prefix("i:")?
        .split_once('|')
        .map(|(system, _)| system)
}

/// The rows stored in one transaction.
#[derive(Debug, Default, Clone, Copy)]
struct Part {
    counts: Counts,
    first_line: Option<u64>,
    last_line: u64,
}

/// Ends a transaction of the import with its audit event.
async fn commit_part(
    mut tx: WriteTx,
    file_name: &str,
    unit: Unit,
    part: &Part,
    total: Option<&Counts>,
) -> Result<()> {
    let c = &part.counts;
    let mut detail = format!(
        "import of {file_name}, {} {}-{}: {} created, {} updated, {} unchanged, {} rejected",
        unit.plural(),
        part.first_line.unwrap_or(0),
        part.last_line,
        c.created,
        c.updated,
        c.unchanged,
        c.rejected
    );
    if let Some(t) = total {
        let _ = write!(
            detail,
            "; whole file: {} rows, {} created, {} updated, {} unchanged, {} rejected",
            t.rows(),
            t.created,
            t.updated,
            t.unchanged,
            t.rejected
        );
    }
    let action = if c.created > 0 {
        Action::Create
    } else {
        Action::Update
    };
    tx.audit(
        AuditEntry::new("system", action, Outcome::Success)
            .resource("Patient", None)
            .detail(detail),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Seconds between two plain progress lines, at least.
const PLAIN_PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Progress on stderr. On a terminal, indicatif's bar (by bytes of the
/// input read). Anywhere else (a log file, a pipe, a test) indicatif draws
/// nothing, so a plain line is written instead, at most every
/// [`PLAIN_PROGRESS_EVERY`] and once at the end:
/// `imported 12000 of about 50000 rows (24%)`, and finally
/// `imported 50000 of 50000 rows (100%)`. Rows are counted as read (created,
/// updated, unchanged or rejected); the total is estimated from the share of
/// the file read until the end.
struct Progress {
    bar: ProgressBar,
    /// Plain lines: the input's size in bytes and when the last was written.
    plain: Option<(u64, Instant)>,
    started: Instant,
}

impl Progress {
    fn new(size: u64, started: Instant) -> Self {
        use std::io::IsTerminal;
        let terminal = std::io::stderr().is_terminal();
        let bar = if terminal {
            ProgressBar::with_draw_target(Some(size), ProgressDrawTarget::stderr_with_hz(4))
                .with_style(
                    ProgressStyle::with_template(
                        "importing [{bar:40}] {percent:>3}% {msg} ({elapsed} elapsed, {eta} left)",
                    )
                    .expect("the template is valid")
                    .progress_chars("=> "),
                )
        } else {
            ProgressBar::hidden()
        };
        Progress {
            bar,
            plain: (!terminal).then_some((size, started)),
            started,
        }
    }

    /// `rows` read so far, `bytes` of the input.
    fn advance(&mut self, rows: u64, bytes: u64) {
        self.bar.set_position(bytes);
        let rate = rows as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar
            .set_message(format!("{rows} rows, {rate:.0} rows/s"));
        if let Some((size, last)) = &mut self.plain
            && last.elapsed() >= PLAIN_PROGRESS_EVERY
        {
            *last = Instant::now();
            eprintln!("{}", plain_progress(rows, bytes, *size));
        }
    }

    fn message(&self, text: String) {
        self.bar.set_message(text);
    }

    /// The import is saved: `rows` in all.
    fn finish(&mut self, rows: u64) {
        self.bar.finish_and_clear();
        if self.plain.is_some() {
            eprintln!("imported {rows} of {rows} rows (100%)");
        }
    }
}

/// A plain progress line: `rows` read from the first `bytes` of `size`,
/// the total estimated from the share read.
fn plain_progress(rows: u64, bytes: u64, size: u64) -> String {
    let share = bytes.min(size) as f64 / size.max(1) as f64;
    let about = if share > 0.0 {
        (rows as f64 / share).round() as u64
    } else {
        rows
    };
    format!(
        "imported {rows} of about {about} rows ({:.0}%)",
        (share * 100.0).floor()
    )
}

async fn patients(args: PatientsArgs) -> Result<ExitCode> {
    let path = args.file.clone();
    let format = match args.format.or_else(|| Format::from_path(&path)) {
        Some(f) => f,
        None => bail!(
            "cannot tell the format of {} from its extension: pass --format csv, ndjson or bundle",
            path.display()
        ),
    };
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    let size = std::fs::metadata(&path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let (coverage, header) = match format {
        Format::Csv => {
            let mut reader = csv_reader(&path)?;
            let header = reader
                .byte_headers()
                .with_context(|| format!("cannot read the header of {}", path.display()))?
                .clone();
            let text = csv::StringRecord::from_byte_record(header.clone())
                .context("the header is not UTF-8 text")?;
            let layout = Layout::read(&text)?;
            if !layout.ignored.is_empty() {
                eprintln!("Ignoring unknown column(s): {}", layout.ignored.join(", "));
            }
            (Coverage::Columns(layout), Some(header))
        }
        Format::Ndjson | Format::Bundle => (Coverage::Resource, None),
    };
    let db = open(&args.db).await?;
    let org_id = org_id(&db, &args.org).await?;
    let rejects_path = Rejects::path_for(&path, format);
    // A previous run's rejected rows would be mistaken for this run's.
    let _ = std::fs::remove_file(&rejects_path);
    let mut rejects = Rejects {
        path: rejects_path,
        unit: format.unit(),
        header,
        csv: None,
        json: None,
    };

    let rules: RegistrationRules = db.setting(&org_id).await?;
    db.use_bulk_memory(BULK_MEMORY_MIB).await?;
    let (sender, batches) = mpsc::channel::<Result<Batch>>(2);
    let reader = {
        let (path, coverage, system, batch, rules) = (
            path.clone(),
            coverage.clone(),
            args.source_system.clone(),
            args.batch,
            rules.clone(),
        );
        std::thread::spawn(move || {
            let result = match &coverage {
                Coverage::Columns(layout) => {
                    read_csv(&path, layout.clone(), system, rules, batch, sender.clone())
                }
                Coverage::Resource => read_fhir(&path, format, rules, batch, sender.clone()),
            };
            if let Err(e) = result {
                let _ = sender.blocking_send(Err(e));
            }
        })
    };

    let started = Instant::now();
    let mut progress = Progress::new(size, started);
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut total = Counts::default();
    let mut saved = Counts::default();
    let mut part = Part::default();
    // One transaction at a time: on SQLite the next can only begin once the
    // last has committed (one writer). Begun before anything is looked up.
    let mut tx = db.begin(&org_id).await?;
    // One batch prepared ahead of the one being written: two batches more
    // in memory than the reader's, no more.
    let (prepared_tx, mut prepared) = mpsc::channel::<Result<Prepared>>(1);
    let (begun, begun_rx) = mpsc::channel::<()>(1);
    let preparer = tokio::spawn(prepare_batches(
        Preparer {
            db: db.clone(),
            org_id: org_id.clone(),
            coverage,
            rules,
            today: jiff::Zoned::now().date(),
            unit: format.unit(),
            seen: HashMap::new(),
            systems: HashMap::new(),
        },
        batches,
        prepared_tx,
        begun_rx,
        args.commit_every,
    ));
    let stopped = |saved: &Counts| {
        if saved.rows() == 0 {
            "the import stopped and nothing was saved".to_string()
        } else {
            format!(
                "the import stopped; the first {} rows were saved ({} created, {} updated), \
                 running it again goes on from there",
                saved.rows(),
                saved.created,
                saved.updated
            )
        }
    };
    while let Some(batch) = prepared.recv().await {
        let batch = batch.with_context(|| stopped(&saved))?;
        for (line, raw, reason) in &batch.rejected {
            rejects
                .write(*line, raw, reason)
                .with_context(|| stopped(&saved))?;
        }
        tx.create_patients(batch.creates, CHANGED_BY)
            .await
            .with_context(|| stopped(&saved))?;
        tx.update_many(batch.updates, CHANGED_BY)
            .await
            .with_context(|| stopped(&saved))?;
        total.add(batch.counts);
        part.counts.add(batch.counts);
        part.first_line.get_or_insert(batch.first_line);
        part.last_line = batch.last_line;
        if batch.ends_part {
            progress.message(format!("{} rows, saving", total.rows()));
            commit_part(tx, &file_name, format.unit(), &part, None)
                .await
                .with_context(|| stopped(&saved))?;
            saved = total;
            part = Part::default();
            tx = db.begin(&org_id).await.with_context(|| stopped(&saved))?;
            // The preparer waits for this before looking the next batch up.
            let _ = begun.send(()).await;
        }
        progress.advance(total.rows(), batch.bytes);
    }
    // A reader or preparer that died without a word must not pass for the
    // end of the file.
    if reader.join().is_err() || preparer.await.is_err() {
        bail!("{}: reading the file failed unexpectedly", stopped(&saved));
    }
    progress.message(format!("{} rows, saving", total.rows()));
    let saving = Instant::now();
    commit_part(tx, &file_name, format.unit(), &part, Some(&total))
        .await
        .with_context(|| stopped(&saved))?;
    tracing::debug!(seconds = saving.elapsed().as_secs_f64(), "import committed");
    if total.created + total.updated >= STATISTICS_AFTER {
        progress.message(format!(
            "{} rows saved, refreshing statistics",
            total.rows()
        ));
        db.refresh_statistics::<Patient>().await?;
    }
    progress.finish(total.rows());
    let wrote_rejects = rejects.finish()?;
    let elapsed = started.elapsed();
    tracing::debug!(rows = total.rows(), database = %redact(&args.db.url), "import finished");
    db.close().await;
    println!(
        "Imported {} rows from {} in {:.1} s ({:.0} rows/s): {} created, {} updated, {} unchanged, {} rejected.",
        total.rows(),
        path.display(),
        elapsed.as_secs_f64(),
        total.rows() as f64 / elapsed.as_secs_f64().max(1e-3),
        total.created,
        total.updated,
        total.unchanged,
        total.rejected
    );
    if wrote_rejects {
        println!(
            "Rejected rows and their reasons: {}",
            rejects.path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_progress_estimates_the_rows_from_the_share_read() {
        assert_eq!(
            plain_progress(12_000, 2_400_000, 10_000_000),
            "imported 12000 of about 50000 rows (24%)"
        );
        assert_eq!(plain_progress(0, 0, 0), "imported 0 of about 0 rows (0%)");
    }

    #[test]
    fn csv_errors_name_the_columns_of_their_address() {
        let groups = [Col::ADDRESS, Col::MAILING];
        assert_eq!(
            column_of("addresses[1].postal_code", &[], &groups),
            "mailing_postal_code"
        );
        assert_eq!(column_of("addresses[0].city", &[], &groups), "city");
        assert_eq!(column_of("addresses[1].use", &[], &groups), "mailing_line1");
        assert_eq!(column_of("addresses", &[], &groups), "line1");
    }
}
