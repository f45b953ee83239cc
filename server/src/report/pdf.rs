//! A small PDF typesetter for the report: paragraphs of shaped, bidi-ordered text on A4 pages,
//! with the DejaVu Sans font embedded (vendored in `server/assets/fonts/`, licence beside it).
//!
//! Text goes through three steps, all CPU-only (callers run it in `spawn_blocking`):
//! 1. **Bidi** (`unicode-bidi`): each paragraph gets its embedding levels, with the report's
//!    direction for labels and the text's own first strong character for what people typed.
//! 2. **Line breaking**: greedy, at spaces, on widths measured by shaping each word once.
//! 3. **Shaping** (`rustybuzz`, the shaper krilla itself uses): each visual run of a line is
//!    shaped in its direction, so Arabic letters join and ligate; the glyphs are drawn with
//!    `krilla`, which keeps each glyph's source text, so the PDF's ToUnicode map gives the
//!    letters back to `pdftotext`.
//!
//! Layout happens first (into [`Page`]s of positioned glyph runs), rendering second, so every
//! footer knows the page count.

use krilla::Document;
use krilla::geom::{PathBuilder, Point, Rect, Size};
use krilla::metadata::Metadata;
use krilla::page::PageSettings;
use krilla::text::{Font, GlyphId, KrillaGlyph};
use std::ops::Range;
use std::sync::OnceLock;
use unicode_bidi::{BidiInfo, Level};

static REGULAR: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// A4 in points.
const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 56.0;
const FOOTER_H: f32 = 36.0;

/// Which face a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Weight {
    Regular,
    Bold,
}

/// The paragraph direction of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Ltr,
    Rtl,
    /// From the text's first strong character (what people typed), else the document's.
    Auto,
}

/// The two faces, parsed once per process.
struct Faces {
    regular: (Font, rustybuzz::Face<'static>),
    bold: (Font, rustybuzz::Face<'static>),
}

fn faces() -> Option<&'static Faces> {
    static FACES: OnceLock<Option<Faces>> = OnceLock::new();
    FACES
        .get_or_init(|| {
            let load = |bytes: &'static [u8]| {
                Some((
                    Font::new(bytes.into(), 0)?,
                    rustybuzz::Face::from_slice(bytes, 0)?,
                ))
            };
            Some(Faces {
                regular: load(REGULAR)?,
                bold: load(BOLD)?,
            })
        })
        .as_ref()
}

impl Faces {
    fn get(&self, weight: Weight) -> &(Font, rustybuzz::Face<'static>) {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }
}

/// A shaped run placed on a page: `glyphs` index into `text` (for ToUnicode).
#[derive(Clone, Debug)]
struct Run {
    x: f32,
    baseline: f32,
    size: f32,
    weight: Weight,
    text: String,
    glyphs: Vec<KrillaGlyph>,
}

/// One laid-out page.
#[derive(Debug, Default)]
struct Page {
    runs: Vec<Run>,
    rules: Vec<Rect>,
}

/// Builds the pages of a document, top to bottom.
pub struct Layout {
    faces: &'static Faces,
    rtl: bool,
    pages: Vec<Page>,
    y: f32,
    /// Off while footers are laid out: they sit below the page's text area.
    paginate: bool,
    footer: Box<dyn Fn(usize, usize) -> String + Send>,
}

/// Why a PDF could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error("the embedded font cannot be read")]
    Font,
    #[error("cannot write the PDF: {0}")]
    Write(String),
}

/// The Arabic presentation form of a lam-alef ligature (isolated form; NFKC maps it back to the
/// two letters). Text extractors read a ligature glyph mapped to *two* characters in reverse
/// order inside right-to-left text ("أل" for "لأ"); mapped to its single presentation-form
/// character it comes back right.
fn lam_alef(cluster: &str) -> Option<char> {
    match cluster {
        "\u{644}\u{627}" => Some('\u{FEFB}'),
        "\u{644}\u{623}" => Some('\u{FEF7}'),
        "\u{644}\u{625}" => Some('\u{FEF9}'),
        "\u{644}\u{622}" => Some('\u{FEF5}'),
        _ => None,
    }
}

/// The text krilla maps `glyphs` to (its ToUnicode entries): `text`, except that lam-alef
/// ligature clusters become their presentation form ([`lam_alef`]). Glyph ranges are moved to
/// the new text.
fn extraction_text(text: &str, glyphs: &mut [KrillaGlyph]) -> String {
    if !glyphs
        .iter()
        .any(|g| lam_alef(text.get(g.text_range.clone()).unwrap_or("")).is_some())
    {
        return text.to_owned();
    }
    // Clusters in logical order, each mapped once.
    let mut ranges: Vec<std::ops::Range<usize>> =
        glyphs.iter().map(|g| g.text_range.clone()).collect();
    ranges.sort_by_key(|r| (r.start, r.end));
    ranges.dedup();
    let mut out = String::with_capacity(text.len());
    let mut moved = Vec::with_capacity(ranges.len());
    let mut last = 0;
    for r in &ranges {
        if r.start < last {
            // Overlapping clusters: keep the original text.
            return text.to_owned();
        }
        out.push_str(&text[last..r.start]);
        let start = out.len();
        let cluster = &text[r.clone()];
        match lam_alef(cluster) {
            Some(c) => out.push(c),
            None => out.push_str(cluster),
        }
        moved.push((r.clone(), start..out.len()));
        last = r.end;
    }
    out.push_str(&text[last..]);
    for g in glyphs.iter_mut() {
        if let Some((_, new)) = moved.iter().find(|(old, _)| *old == g.text_range) {
            g.text_range = new.clone();
        }
    }
    out
}

/// Shapes `text` in one direction. Clusters are byte offsets into `text`; the glyph ranges are
/// computed the way krilla's own shaper does, so each glyph maps back to its characters.
fn shape(face: &rustybuzz::Face<'_>, text: &str, rtl: bool) -> (Vec<KrillaGlyph>, f32) {
    let mut buffer = rustybuzz::UnicodeBuffer::new();
    buffer.push_str(text);
    buffer.guess_segment_properties();
    buffer.set_direction(if rtl {
        rustybuzz::Direction::RightToLeft
    } else {
        rustybuzz::Direction::LeftToRight
    });
    let output = rustybuzz::shape(face, &[], buffer);
    let upem = face.units_per_em() as f32;
    let infos = output.glyph_infos();
    let positions = output.glyph_positions();
    let mut glyphs = Vec::with_capacity(infos.len());
    let mut width = 0.0;
    for (i, (info, pos)) in infos.iter().zip(positions).enumerate() {
        let start = info.cluster as usize;
        // The end of this glyph's cluster: the next different cluster in logical order, which
        // is the following glyph for LTR and the preceding one for RTL.
        let neighbour = |j: Option<usize>| {
            let mut j = j;
            while let Some(k) = j {
                match infos.get(k) {
                    Some(other) if other.cluster == info.cluster => {
                        j = if rtl {
                            k.checked_sub(1)
                        } else {
                            k.checked_add(1)
                        };
                    }
                    Some(other) => return other.cluster as usize,
                    None => break,
                }
            }
            text.len()
        };
        let end = if rtl {
            neighbour(i.checked_sub(1))
        } else {
            neighbour(i.checked_add(1))
        };
        let advance = pos.x_advance as f32 / upem;
        width += advance;
        glyphs.push(KrillaGlyph::new(
            GlyphId::new(info.glyph_id),
            advance,
            pos.x_offset as f32 / upem,
            pos.y_offset as f32 / upem,
            pos.y_advance as f32 / upem,
            start..end.max(start),
            None,
        ));
    }
    (glyphs, width)
}

impl Layout {
    /// An empty document whose labels run right-to-left when `rtl`; `footer(page, pages)` is
    /// printed at the bottom of every page.
    pub fn new(
        rtl: bool,
        footer: impl Fn(usize, usize) -> String + Send + 'static,
    ) -> Result<Self, PdfError> {
        Ok(Self {
            faces: faces().ok_or(PdfError::Font)?,
            rtl,
            pages: vec![Page::default()],
            y: MARGIN,
            paginate: true,
            footer: Box::new(footer),
        })
    }

    fn width(&self) -> f32 {
        PAGE_W - 2.0 * MARGIN
    }

    fn bottom(&self) -> f32 {
        PAGE_H - MARGIN - FOOTER_H
    }

    fn page(&mut self) -> &mut Page {
        if self.pages.is_empty() {
            self.pages.push(Page::default());
        }
        let last = self.pages.len() - 1;
        &mut self.pages[last]
    }

    /// Vertical space.
    pub fn gap(&mut self, points: f32) {
        self.y += points;
    }

    /// Starts a new page if less than `points` are left on this one.
    pub fn keep(&mut self, points: f32) {
        if self.paginate && self.y + points > self.bottom() {
            self.pages.push(Page::default());
            self.y = MARGIN;
        }
    }

    /// A thin horizontal line across the text width.
    pub fn rule(&mut self) {
        self.keep(8.0);
        let y = self.y + 3.0;
        if let Some(rect) = Rect::from_xywh(MARGIN, y, self.width(), 0.6) {
            self.page().rules.push(rect);
        }
        self.y += 8.0;
    }

    /// A paragraph (several if `text` has newlines), wrapped to the text width.
    pub fn text(&mut self, text: &str, size: f32, weight: Weight, dir: Dir) {
        let leading = size * 1.45;
        for para in text.split('\n') {
            let para = para.trim_end_matches('\r');
            if para.trim().is_empty() {
                self.keep(leading);
                self.y += leading * 0.5;
                continue;
            }
            let base = match dir {
                Dir::Ltr => Some(Level::ltr()),
                Dir::Rtl => Some(Level::rtl()),
                Dir::Auto => match unicode_bidi::get_base_direction(para) {
                    unicode_bidi::Direction::Ltr => Some(Level::ltr()),
                    unicode_bidi::Direction::Rtl => Some(Level::rtl()),
                    unicode_bidi::Direction::Mixed if self.rtl => Some(Level::rtl()),
                    unicode_bidi::Direction::Mixed => Some(Level::ltr()),
                },
            };
            let info = BidiInfo::new(para, base);
            for line in self.break_lines(&info, para, size, weight) {
                self.keep(leading);
                self.y += leading;
                self.place_line(&info, para, line, size, weight);
            }
        }
    }

    /// Greedy line breaking at spaces; a word longer than a line gets a line of its own.
    fn break_lines(
        &self,
        info: &BidiInfo<'_>,
        para: &str,
        size: f32,
        weight: Weight,
    ) -> Vec<Range<usize>> {
        let face = &self.faces.get(weight).1;
        let max = self.width() / size;
        let space = shape(face, " ", false).1;
        let mut lines = Vec::new();
        let mut start: Option<usize> = None;
        let mut end = 0;
        let mut used = 0.0;
        let mut offset = 0;
        for word in para.split(' ') {
            let range = offset..offset + word.len();
            offset += word.len() + 1;
            if word.is_empty() {
                continue;
            }
            let rtl = info.levels.get(range.start).is_some_and(|l| l.is_rtl());
            let w = shape(face, word, rtl).1;
            if w > max {
                // A word wider than the line (a URL, a hash): its own lines, cut between
                // characters.
                if let Some(s) = start.take() {
                    lines.push(s..end);
                }
                let mut piece = range.start;
                let mut piece_w = 0.0;
                for (i, c) in word.char_indices() {
                    let cw = shape(face, c.encode_utf8(&mut [0; 4]), rtl).1;
                    if piece_w + cw > max && range.start + i > piece {
                        lines.push(piece..range.start + i);
                        piece = range.start + i;
                        piece_w = 0.0;
                    }
                    piece_w += cw;
                }
                start = Some(piece);
                end = range.end;
                used = piece_w;
                continue;
            }
            match start {
                Some(s) if used + space + w > max => {
                    lines.push(s..end);
                    start = Some(range.start);
                    used = w;
                }
                Some(_) => used += space + w,
                None => {
                    start = Some(range.start);
                    used = w;
                }
            }
            end = range.end;
        }
        if let Some(s) = start {
            lines.push(s..end);
        }
        lines
    }

    /// Shapes the visual runs of one line and places them, aligned to the paragraph's side.
    fn place_line(
        &mut self,
        info: &BidiInfo<'_>,
        para: &str,
        line: Range<usize>,
        size: f32,
        weight: Weight,
    ) {
        let Some(paragraph) = info.paragraphs.first() else {
            return;
        };
        let (levels, runs) = info.visual_runs(paragraph, line);
        let face = &self.faces.get(weight).1;
        let mut shaped = Vec::with_capacity(runs.len());
        let mut total = 0.0;
        for run in runs {
            let rtl = levels.get(run.start).is_some_and(|l| l.is_rtl());
            let text = &para[run];
            let (mut glyphs, width) = shape(face, text, rtl);
            let text = extraction_text(text, &mut glyphs);
            total += width * size;
            shaped.push((text, glyphs, width * size));
        }
        let mut x = if paragraph.level.is_rtl() {
            PAGE_W - MARGIN - total
        } else {
            MARGIN
        };
        let baseline = self.y;
        for (text, glyphs, width) in shaped {
            self.page().runs.push(Run {
                x,
                baseline,
                size,
                weight,
                text,
                glyphs,
            });
            x += width;
        }
    }

    /// Number of pages so far.
    pub fn pages(&self) -> usize {
        self.pages.len()
    }

    /// Adds the footers and writes the PDF.
    pub fn finish(mut self, title: &str, lang: &str) -> Result<Vec<u8>, PdfError> {
        let count = self.pages.len();
        let footer_rtl = self.rtl;
        let pages = std::mem::take(&mut self.pages);
        let mut footers = Vec::with_capacity(count);
        self.paginate = false;
        for i in 0..count {
            // Lay the footer out on a scratch page at the footer's height.
            self.pages = vec![Page::default()];
            self.y = PAGE_H - MARGIN - FOOTER_H + 14.0;
            let text = (self.footer)(i + 1, count);
            let dir = if footer_rtl { Dir::Rtl } else { Dir::Ltr };
            self.text(&text, 7.5, Weight::Regular, dir);
            footers.push(std::mem::take(&mut self.pages));
        }
        let mut document = Document::new();
        document.set_metadata(
            Metadata::new()
                .title(title.to_owned())
                .language(lang.to_owned()),
        );
        for (page, footer) in pages.into_iter().zip(footers) {
            let size = Size::from_wh(PAGE_W, PAGE_H).ok_or(PdfError::Font)?;
            let mut pdf_page = document.start_page_with(PageSettings::new(size));
            let mut surface = pdf_page.surface();
            let runs = page
                .runs
                .iter()
                .chain(footer.iter().flat_map(|p| p.runs.iter()));
            for run in runs {
                let font = self.faces.get(run.weight).0.clone();
                surface.draw_glyphs(
                    Point::from_xy(run.x, run.baseline),
                    &run.glyphs,
                    font,
                    &run.text,
                    run.size,
                    false,
                );
            }
            for rect in &page.rules {
                let mut path = PathBuilder::new();
                path.push_rect(*rect);
                if let Some(path) = path.finish() {
                    surface.draw_path(&path);
                }
            }
            surface.finish();
            pdf_page.finish();
        }
        document
            .finish()
            .map_err(|e| PdfError::Write(format!("{e:?}")))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly
mod tests {
    use super::*;

    #[test]
    fn arabic_is_shaped_into_joining_forms() {
        let faces = faces().unwrap();
        let face = &faces.regular.1;
        // "سلام": the shaper picks joining forms, not the isolated letters.
        let (joined, _) = shape(face, "سلام", true);
        let isolated: Vec<_> = "سلام"
            .chars()
            .map(|c| shape(face, &c.to_string(), true).0[0].glyph_id)
            .collect();
        let ids: Vec<_> = joined.iter().map(|g| g.glyph_id).collect();
        assert!(ids.iter().any(|g| !isolated.contains(g)), "{ids:?}");
        // Every byte of the text is covered by some glyph's range (ToUnicode needs it).
        let covered: usize = joined.iter().map(|g| g.text_range.len()).sum();
        assert_eq!(covered, "سلام".len());
    }

    #[test]
    fn long_text_wraps_and_paginates() {
        let mut layout = Layout::new(false, |p, n| format!("page {p}/{n}")).unwrap();
        let text = "word ".repeat(3000);
        layout.text(&text, 10.0, Weight::Regular, Dir::Ltr);
        assert!(layout.pages() > 2);
        let pdf = layout.finish("t", "en").unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
    }
}
