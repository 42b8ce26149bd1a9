"""PDF: the text of each page as paragraphs, under pypdf's output caps (lowered here) and a page
limit, so a PDF bomb stops while it is read."""

from __future__ import annotations

import contextlib
import io

from rag.extraction.blocks import MAX_CHARS, Block, Extracted, ExtractionError, paragraphs

MAX_PDF_PAGES = 2_000
# pypdf's page-tree cap counts a page's entries (its keys and inherited attributes), not pages:
# a plain page has 5–10, so the cap is set for the page limit at a generous 32 per page — a
# valid PDF within the page limit gets through to the page count below and its clear message.
PAGE_TREE_ENTRIES = (MAX_PDF_PAGES + 1) * 32


def extract_pdf(data: bytes) -> Extracted:
    import logging

    import pypdf
    from pypdf.errors import LimitReachedError, PyPdfError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed files warn per object
    # Lower pypdf's caps on what one stream may inflate to and how much work a file may cause
    # (a PDF bomb stops here), for this extraction only.
    limits = pypdf.apply_configuration(
        maximum_declared_stream_length=32_000_000,
        zlib_maximum_output_length=32_000_000,
        lzw_maximum_output_length=32_000_000,
        run_length_maximum_output_length=32_000_000,
        array_based_stream_maximum_output_length=32_000_000,
        image_maximum_buffer_size=32_000_000,
        page_tree_maximum_page_entries=PAGE_TREE_ENTRIES,
    )
    try:
        with limits:
            return _pdf_pages(pypdf.PdfReader(io.BytesIO(data), strict=False))
    except ExtractionError:
        raise
    except LimitReachedError:
        raise ExtractionError(
            f"This PDF is bigger than we read (at most {MAX_PDF_PAGES:,} pages and "
            "32 MB of data per stream); split it."
        ) from None
    except (
        PyPdfError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        IndexError,
        OSError,
    ) as exc:
        raise ExtractionError(
            f"This PDF is damaged and can't be read ({type(exc).__name__})."
        ) from None
    except Exception as exc:  # pypdf raises many things on hostile input; none may escape as 500
        raise ExtractionError(f"This PDF can't be read ({type(exc).__name__}).") from None


def _pdf_pages(reader) -> Extracted:
    if reader.is_encrypted:
        try:
            reader.decrypt("")
        except Exception:
            raise ExtractionError("This PDF is password-protected.") from None
    count = len(reader.pages)
    if count > MAX_PDF_PAGES:
        raise ExtractionError(f"This PDF has {count:,} pages; the limit is {MAX_PDF_PAGES:,}.")
    blocks: list[Block] = []
    total = 0
    for number, page in enumerate(reader.pages, start=1):
        text = page.extract_text() or ""
        total += len(text)
        if total > MAX_CHARS:
            raise ExtractionError(
                f"This PDF holds more than {MAX_CHARS:,} characters of text; split it."
            )
        blocks.extend(paragraphs(text, page=number))
    title = ""
    with contextlib.suppress(Exception):  # a broken info dictionary only loses the title
        title = str((reader.metadata or {}).get("/Title") or "")[:300]
    return Extracted("pdf", blocks, page_count=count, title=title)
