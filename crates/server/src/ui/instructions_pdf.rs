//! Post-visit instructions as a PDF: the clinic and location, the patient's
//! name and date of birth, the visit, then the filled-in template's title
//! and body wrapped to US Letter pages, each page footed with the patient
//! and "Page 1 of 2" so loose pages find their owner.
//!
//! It lives at the edge, not in the domain, because a PDF is a wire format
//! (ARCHITECTURE.md: only the edge knows those); the domain fills the
//! template (`visit::InstructionsTemplate::render`), this lays it out.
//! Layout ([`layout`]) is plain data, so tests read the lines it placed;
//! [`pdf`] writes them with printpdf in the built-in Helvetica (nothing
//! embedded, nothing fetched). Streams are left uncompressed: a page of
//! text is a few kilobytes either way, and the text stays searchable in the
//! bytes.

use carefront_domain::visit::FilledInstructions;
use printpdf::{
    BuiltinFont, Mm, Op, ParsedFont, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point,
    Pt, TextItem,
};
use std::sync::OnceLock;

/// US Letter, in points: the clinics print on Letter paper.
const PAGE_WIDTH: f32 = 612.0;
const PAGE_HEIGHT: f32 = 792.0;
const MARGIN: f32 = 54.0;
/// The footer's baseline; the body stops a line above it.
const FOOTER_Y: f32 = 36.0;
const BOTTOM: f32 = 72.0;
const BODY_SIZE: f32 = 11.0;
const BODY_LEADING: f32 = 15.0;
/// Bulleted lines ("- ", "* ", "• ") hang their text here.
const BULLET_INDENT: f32 = 14.0;

/// What the document shows, each value as it is printed.
pub struct InstructionsDoc<'a> {
    pub clinic: &'a str,
    pub location: &'a str,
    /// "Reyes, Ana".
    pub patient: &'a str,
    pub birth_date: &'a str,
    pub visit_date: &'a str,
    pub visit_type: &'a str,
    pub provider: &'a str,
    pub filled: &'a FilledInstructions,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    Regular,
    Bold,
}

impl Face {
    fn builtin(self) -> BuiltinFont {
        match self {
            Face::Regular => BuiltinFont::Helvetica,
            Face::Bold => BuiltinFont::HelveticaBold,
        }
    }
}

/// One run of text at its baseline, in points from the page's bottom left.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub x: f32,
    pub y: f32,
    pub face: Face,
    pub size: f32,
    pub text: String,
}

/// The glyph widths of a built-in face (printpdf ships its metrics).
struct Metrics {
    font: ParsedFont,
}

impl Metrics {
    fn of(face: Face) -> &'static Metrics {
        static REGULAR: OnceLock<Metrics> = OnceLock::new();
        static BOLD: OnceLock<Metrics> = OnceLock::new();
        let cell = match face {
            Face::Regular => &REGULAR,
            Face::Bold => &BOLD,
        };
        cell.get_or_init(|| Metrics {
            font: face
                .builtin()
                .get_parsed_font()
                .expect("printpdf's built-in fonts parse"),
        })
    }

    /// The face has the character (the built-in fonts cover WinAnsi).
    fn has(&self, c: char) -> bool {
        self.font.lookup_glyph_index(u32::from(c)).is_some()
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        let units = f32::from(self.font.units_per_em.max(1));
        let fallback = self.glyph_width('?').unwrap_or(556);
        let total: u32 = text
            .chars()
            .map(|c| u32::from(self.glyph_width(c).unwrap_or(fallback)))
            .sum();
        total as f32 * size / units
    }

    fn glyph_width(&self, c: char) -> Option<u16> {
        self.font
            .lookup_glyph_index(u32::from(c))
            .and_then(|g| self.font.get_glyph_width(g))
    }
}

/// `text` in characters the built-in fonts have: others become their
/// nearest Latin letters (the transliteration patient search folds names
/// with), so "Nguyễn" prints "Nguyen" rather than "Nguy?n".
fn printable(text: &str) -> String {
    let metrics = Metrics::of(Face::Regular);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '\t' {
            out.push(' ');
        } else if metrics.has(c) {
            out.push(c);
        } else {
            let latin = carefront_domain::text::fold(&c.to_string());
            match c.is_uppercase() {
                true => out.push_str(&latin.to_uppercase()),
                false => out.push_str(&latin),
            }
        }
    }
    out
}

/// Greedy line breaking at spaces; a word wider than the line is broken
/// where it must be.
fn wrap(text: &str, face: Face, size: f32, width: f32) -> Vec<String> {
    let m = Metrics::of(face);
    let fits = |s: &str| m.width(s, size) <= width;
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let candidate = match current.is_empty() {
            true => word.to_string(),
            false => format!("{current} {word}"),
        };
        if fits(&candidate) {
            current = candidate;
            continue;
        }
        if !current.is_empty() {
            lines.push(std::mem::take(&mut current));
        }
        for c in word.chars() {
            current.push(c);
            if !fits(&current) && current.chars().count() > 1 {
                current.pop();
                lines.push(std::mem::replace(&mut current, c.to_string()));
            }
        }
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

/// Places runs top to bottom, starting a page when the next line would
/// reach the footer.
struct Pages {
    pages: Vec<Vec<Line>>,
    /// The baseline of the last line placed.
    y: f32,
    /// What a continued page starts with.
    continued: String,
}

impl Pages {
    fn new(continued: String) -> Self {
        Pages {
            pages: vec![Vec::new()],
            y: PAGE_HEIGHT - MARGIN,
            continued,
        }
    }

    fn run(&mut self, x: f32, face: Face, size: f32, text: String) {
        if let Some(page) = self.pages.last_mut() {
            page.push(Line {
                x,
                y: self.y,
                face,
                size,
                text,
            });
        }
    }

    /// Moves down `leading` for a new line, on a new page if it must.
    fn next_line(&mut self, leading: f32) {
        if self.y - leading < BOTTOM {
            self.pages.push(Vec::new());
            self.y = PAGE_HEIGHT - MARGIN;
            let heading = self.continued.clone();
            self.run(MARGIN, Face::Bold, BODY_SIZE, heading);
            self.y -= BODY_LEADING;
        }
        self.y -= leading;
    }

    /// `text` wrapped from `x` to the right margin, a line each.
    fn wrapped(&mut self, x: f32, face: Face, size: f32, leading: f32, text: &str) {
        for line in wrap(text, face, size, PAGE_WIDTH - MARGIN - x) {
            self.next_line(leading);
            self.run(x, face, size, line);
        }
    }

    /// "Label: value" rows, the values wrapped in a column beside the
    /// widest label.
    fn facts(&mut self, rows: &[(&str, String)]) {
        let bold = Metrics::of(Face::Bold);
        let labels: Vec<String> = rows.iter().map(|(l, _)| format!("{l}: ")).collect();
        let column = labels
            .iter()
            .map(|l| bold.width(l, BODY_SIZE))
            .fold(0.0, f32::max);
        let x = MARGIN + column;
        for (label, (_, value)) in labels.into_iter().zip(rows) {
            let lines = wrap(value, Face::Regular, BODY_SIZE, PAGE_WIDTH - MARGIN - x);
            for (i, line) in lines.into_iter().enumerate() {
                self.next_line(BODY_LEADING);
                if i == 0 {
                    self.run(MARGIN, Face::Bold, BODY_SIZE, label.clone());
                }
                self.run(x, Face::Regular, BODY_SIZE, line);
            }
        }
    }
}

/// A bulleted line's text, without its marker.
fn bullet(line: &str) -> Option<&str> {
    ["- ", "* ", "• "]
        .iter()
        .find_map(|marker| line.strip_prefix(marker))
}

/// The document's runs, page by page.
pub fn layout(doc: &InstructionsDoc) -> Vec<Vec<Line>> {
    let p = |s: &str| printable(s);
    let title = p(&doc.filled.title);
    let patient = p(doc.patient);
    let mut pages = Pages::new(format!("{title} (continued)"));
    // The first baseline sits one line below the top margin.
    pages.y += 16.0;
    pages.wrapped(MARGIN, Face::Bold, 16.0, 16.0, &p(doc.clinic));
    pages.wrapped(
        MARGIN,
        Face::Regular,
        BODY_SIZE,
        BODY_LEADING,
        &p(doc.location),
    );
    pages.y -= 14.0;
    pages.wrapped(MARGIN, Face::Bold, 18.0, 22.0, &title);
    pages.y -= 6.0;
    pages.facts(&[
        ("Patient", patient.clone()),
        ("Date of birth", p(doc.birth_date)),
        (
            "Visit",
            p(&format!("{}, {}", doc.visit_date, doc.visit_type)),
        ),
        ("Provider", p(doc.provider)),
    ]);
    pages.y -= 12.0;
    let mut gap = false;
    for raw in doc.filled.body.lines() {
        let line = p(raw.trim_end());
        if line.trim().is_empty() {
            gap = true;
            continue;
        }
        if gap {
            pages.y -= 7.0;
            gap = false;
        }
        match bullet(line.trim_start()) {
            Some(rest) => {
                pages.next_line(BODY_LEADING);
                pages.run(MARGIN, Face::Regular, BODY_SIZE, "•".into());
                // The first line of the item shares the bullet's baseline.
                pages.y += BODY_LEADING;
                pages.wrapped(
                    MARGIN + BULLET_INDENT,
                    Face::Regular,
                    BODY_SIZE,
                    BODY_LEADING,
                    rest,
                );
            }
            None => pages.wrapped(MARGIN, Face::Regular, BODY_SIZE, BODY_LEADING, &line),
        }
    }
    let mut pages = pages.pages;
    let count = pages.len();
    let birth_date = p(doc.birth_date);
    for (i, page) in pages.iter_mut().enumerate() {
        page.push(Line {
            x: MARGIN,
            y: FOOTER_Y,
            face: Face::Regular,
            size: 9.0,
            text: format!("{patient} · born {birth_date} · Page {} of {count}", i + 1),
        });
    }
    pages
}

/// The document as PDF bytes.
pub fn pdf(doc: &InstructionsDoc) -> Vec<u8> {
    let pages = layout(doc)
        .into_iter()
        .map(|lines| {
            let ops = lines
                .into_iter()
                .flat_map(|l| {
                    [
                        Op::StartTextSection,
                        Op::SetFont {
                            font: PdfFontHandle::Builtin(l.face.builtin()),
                            size: Pt(l.size),
                        },
                        Op::SetTextCursor {
                            pos: Point {
                                x: Pt(l.x),
                                y: Pt(l.y),
                            },
                        },
                        Op::ShowText {
                            items: vec![TextItem::Text(l.text)],
                        },
                        Op::EndTextSection,
                    ]
                })
                .collect();
            PdfPage::new(Mm::from(Pt(PAGE_WIDTH)), Mm::from(Pt(PAGE_HEIGHT)), ops)
        })
        .collect();
    let options = PdfSaveOptions {
        optimize: false,
        ..PdfSaveOptions::default()
    };
    PdfDocument::new(&printable(&doc.filled.title))
        .with_pages(pages)
        .save(&options, &mut Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(body: &str) -> FilledInstructions {
        FilledInstructions {
            title: "After your mole check".into(),
            body: body.into(),
        }
    }

    fn doc(f: &FilledInstructions) -> InstructionsDoc<'_> {
        InstructionsDoc {
            clinic: "Patient Care Specialists",
            location: "Riverside Clinic",
            patient: "Nguyễn, Ana",
            birth_date: "03/14/1962",
            visit_date: "03/10/2026",
            visit_type: "Dermatology visit",
            provider: "Dr. Lee Park, MD",
            filled: f,
        }
    }

    fn texts(page: &[Line]) -> Vec<&str> {
        page.iter().map(|l| l.text.as_str()).collect()
    }

    #[test]
    fn the_first_page_names_the_clinic_the_patient_and_the_visit() {
        let f = filled("Keep the site dry.\n\n- Change the bandage daily.");
        let pages = layout(&doc(&f));
        assert_eq!(pages.len(), 1);
        let t = texts(&pages[0]);
        for expected in [
            "Patient Care Specialists",
            "Riverside Clinic",
            "After your mole check",
            "Patient: ",
            "Nguyen, Ana",
            "03/14/1962",
            "03/10/2026, Dermatology visit",
            "Dr. Lee Park, MD",
            "Keep the site dry.",
            "•",
            "Change the bandage daily.",
            "Nguyen, Ana · born 03/14/1962 · Page 1 of 1",
        ] {
            assert!(t.contains(&expected), "{expected} in {t:?}");
        }
        // Top to bottom, inside the margins.
        let body: Vec<&Line> = pages[0].iter().filter(|l| l.y > BOTTOM).collect();
        assert!(body.windows(2).all(|w| w[0].y >= w[1].y));
        assert!(pages[0].iter().all(|l| l.x >= MARGIN && l.y >= FOOTER_Y));
        // The bullet and its text share a baseline; the text hangs.
        let dot = pages[0].iter().find(|l| l.text == "•").unwrap();
        let item = pages[0]
            .iter()
            .find(|l| l.text == "Change the bandage daily.")
            .unwrap();
        assert_eq!((dot.y, item.x), (item.y, MARGIN + BULLET_INDENT));
    }

    #[test]
    fn long_text_wraps_inside_the_margins_and_continues_on_more_pages() {
        let paragraph = "Apply the ointment twice a day and keep the area clean. ".repeat(12);
        let body = [paragraph.trim(); 12].join("\n\n");
        let f = filled(&body);
        let pages = layout(&doc(&f));
        assert!(pages.len() >= 2, "{} pages", pages.len());
        let right = PAGE_WIDTH - MARGIN;
        for page in &pages {
            for l in page {
                let width = Metrics::of(l.face).width(&l.text, l.size);
                assert!(l.x + width <= right + 0.01, "{} is too wide", l.text);
                assert!(l.y >= FOOTER_Y && l.y <= PAGE_HEIGHT - MARGIN + 1.0);
            }
        }
        let last = pages.len();
        let t = texts(&pages[1]);
        assert_eq!(t[0], "After your mole check (continued)");
        assert!(t.contains(&format!("Nguyen, Ana · born 03/14/1962 · Page 2 of {last}").as_str()));
        // Nothing is lost.
        let ointment = pages
            .iter()
            .flatten()
            .map(|l| l.text.matches("ointment").count())
            .sum::<usize>();
        assert_eq!(ointment, 12 * 12);
    }

    #[test]
    fn a_word_wider_than_the_line_is_broken() {
        let lines = wrap(&"x".repeat(300), Face::Regular, BODY_SIZE, 100.0);
        assert!(lines.len() > 1);
        assert_eq!(lines.concat(), "x".repeat(300));
        assert_eq!(wrap("", Face::Regular, BODY_SIZE, 100.0), [""]);
    }

    #[test]
    fn the_bytes_are_a_pdf_with_the_text_readable() {
        let f = filled("Keep the site dry (24 hours).");
        let bytes = pdf(&doc(&f));
        assert!(bytes.starts_with(b"%PDF"));
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.contains("(Nguyen, Ana) Tj"), "{text}");
        assert!(text.contains("/BaseFont/Helvetica/"), "{text}");
        assert!(bytes.len() < 64 * 1024, "{} bytes", bytes.len());
    }
}
