import tracemalloc

import pytest

from rag import chunking, extraction
from rag.extraction.pdf import MAX_PDF_PAGES
from rag.tests import documents


def test_a_png_named_like_a_pdf_is_refused_as_an_image():
    with pytest.raises(extraction.ExtractionError, match="PNG image, not a PDF"):
        extraction.sniff(documents.png(), "report.pdf")


def test_a_png_named_like_text_is_refused_as_an_image():
    with pytest.raises(extraction.ExtractionError, match="PNG image, not a text file"):
        extraction.sniff(documents.png(), "notes.txt")


def test_text_named_like_a_pdf_is_not_a_pdf():
    with pytest.raises(extraction.ExtractionError, match="not a PDF"):
        extraction.sniff(b"hello there", "fake.pdf")


def test_an_unsupported_extension_is_refused_with_the_supported_list():
    with pytest.raises(extraction.ExtractionError, match="not a supported type"):
        extraction.sniff(b"MZ\x00\x00", "setup.exe")


def test_binary_data_named_txt_is_refused():
    with pytest.raises(extraction.ExtractionError, match="binary"):
        extraction.sniff(b"abc\x00\x01\x02" * 10, "data.txt")


def test_a_text_starting_with_bm_is_still_text():
    assert extraction.sniff(b"BMW quarterly notes", "cars.txt") == "txt"


def test_a_pdf_keeps_its_pages():
    data = documents.pdf(["Alpha page text", "Beta page text"])
    assert extraction.sniff(data, "two.pdf") == "pdf"
    result = extraction.extract(data, "pdf")
    assert result.page_count == 2
    assert [(b.page, b.text) for b in result.blocks] == [
        (1, "Alpha page text"),
        (2, "Beta page text"),
    ]


def test_a_pdf_of_many_pages_within_the_limit_is_read_and_one_beyond_it_says_so():
    """pypdf's page-tree cap counts entries, not pages: set to the page limit, it refused a
    valid 500-page PDF as "damaged"."""
    result = extraction.extract(documents.pdf([f"page {n}" for n in range(600)]), "pdf")
    assert result.page_count == 600 and result.blocks[-1].page == 600

    over = documents.pdf([f"page {n}" for n in range(MAX_PDF_PAGES + 1)])
    with pytest.raises(extraction.ExtractionError, match=r"2,001 pages; the limit is 2,000"):
        extraction.extract(over, "pdf")


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 9 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF",
        b"%PDF-1.7\n" + bytes(range(256)) * 40,
        documents.pdf(["ok"])[:60],
    ],
    ids=["dangling-pages", "garbage", "truncated"],
)
def test_a_malformed_pdf_is_a_clear_error(data):
    with pytest.raises(extraction.ExtractionError) as caught:
        extraction.extract(data, "pdf")
    assert "PDF" in str(caught.value) or "No text" in str(caught.value)


def test_a_docx_keeps_headings_paragraphs_and_tables():
    body = (
        documents.docx_paragraph("Setup", "Heading1")
        + documents.docx_paragraph("Install the package first.")
        + "<w:tbl><w:tr><w:tc>"
        + documents.docx_paragraph("Name")
        + "</w:tc><w:tc>"
        + documents.docx_paragraph("Port")
        + "</w:tc></w:tr><w:tr><w:tc>"
        + documents.docx_paragraph("web")
        + "</w:tc><w:tc>"
        + documents.docx_paragraph("8000")
        + "</w:tc></w:tr></w:tbl>"
    )
    result = extraction.extract(documents.docx(body), "docx")
    assert [(b.kind, b.text) for b in result.blocks] == [
        ("heading", "Setup"),
        ("paragraph", "Install the package first."),
        ("table", "Name | Port\nweb | 8000"),
    ]


def test_a_zip_bomb_docx_is_refused_with_bounded_memory():
    bomb = documents.docx_bomb(200 * 1024 * 1024)
    assert len(bomb) < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(extraction.ExtractionError, match="ZIP bomb"):
            extraction.extract(bomb, "docx")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024


def test_a_docx_with_an_entity_declaration_is_refused():
    evil = documents.docx("").replace(b"x", b"x")  # a valid archive to start from
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(
            "word/document.xml",
            '<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><d>&a;</d>',
        )
    assert evil
    with pytest.raises(extraction.ExtractionError, match="damaged"):
        extraction.extract(out.getvalue(), "docx")


def test_a_zip_that_is_not_a_word_document_is_refused():
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(extraction.ExtractionError, match="not a Word document"):
        extraction.extract(out.getvalue(), "docx")


def test_html_keeps_structure_and_drops_scripts():
    page = b"""<html><head><title>Guide</title><script>alert(1)</script></head><body>
    <h1>Guide</h1><p>First <b>para</b>.</p><pre>code  line</pre>
    <table><tr><th>k</th><th>v</th></tr><tr><td>a</td><td>1</td></tr></table></body></html>"""
    result = extraction.extract(page, "html")
    assert result.title == "Guide"
    assert [(b.kind, b.text) for b in result.blocks] == [
        ("heading", "Guide"),
        ("paragraph", "First para."),
        ("code", "code  line"),
        ("table", "k | v\na | 1"),
    ]


def test_markdown_keeps_headings_code_and_tables():
    text = b"# Title\n\nIntro.\n\n## Part\n\n```py\nx = 1\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    blocks = extraction.extract(text, "md").blocks
    assert [b.kind for b in blocks] == ["heading", "paragraph", "heading", "code", "table"]
    assert blocks[3].text == "x = 1"


def test_csv_rows_are_chunked_with_their_header():
    rows = "name,city\n" + "".join(f"p{i},c{i}\n" for i in range(45))
    blocks = extraction.extract(rows.encode(), "csv").blocks
    assert len(blocks) == 3
    assert all(b.text.startswith("name | city") for b in blocks)


def test_malformed_json_is_a_clear_error():
    with pytest.raises(extraction.ExtractionError, match="JSON is malformed"):
        extraction.extract(b'{"a": ', "json")


def test_nul_and_lone_surrogates_never_reach_the_text():
    assert extraction.clean_text("a\x00b \ud800 c") == "ab \ufffd c"
    with pytest.raises(extraction.ExtractionError, match="binary"):
        extraction.extract(b"a\x00b", "txt")


def test_chunks_follow_headings_and_keep_the_heading_path():
    blocks = [
        extraction.Block("heading", "Install", level=1),
        extraction.Block("paragraph", "Short intro."),
        extraction.Block("heading", "Linux", level=2),
        extraction.Block("paragraph", "Use apt."),
        extraction.Block("heading", "Usage", level=1),
        extraction.Block("paragraph", "Run it.", page=3),
    ]
    pieces = chunking.chunk_blocks(blocks, size=500, overlap=50)
    assert [(p.heading, p.text, p.page) for p in pieces] == [
        ("Install", "Short intro.", None),
        ("Install › Linux", "Use apt.", None),
        ("Usage", "Run it.", 3),
    ]


def test_long_paragraphs_split_with_overlap_and_tables_repeat_their_header():
    sentence = "The quick brown fox jumps over the lazy dog. "
    pieces = chunking.chunk_blocks(
        [extraction.Block("paragraph", sentence * 40)], size=300, overlap=60
    )
    assert len(pieces) > 3 and all(len(p.text) <= 300 for p in pieces)
    assert pieces[1].text.split(" ")[0] in pieces[0].text  # starts with the end of the previous
    table = "h1 | h2\n" + "\n".join(f"r{i} | v{i}" for i in range(200))
    parts = chunking.chunk_blocks([extraction.Block("table", table)], size=300, overlap=60)
    assert len(parts) > 1 and all(p.text.startswith("h1 | h2\n") for p in parts)


def test_code_is_chunked_fenced_with_its_language_so_the_model_and_the_reader_see_its_bounds():
    text = b"# Ops\n\nRestart it:\n\n```bash\nsystemctl restart app\n```\n"
    pieces = chunking.chunk_blocks(extraction.extract(text, "md").blocks, size=500, overlap=50)
    assert pieces[0].text == "Restart it:\n\n```bash\nsystemctl restart app\n```"


def test_a_long_code_block_is_split_between_lines_into_pieces_that_are_each_fenced():
    code = "\n".join(f"print({i})  # line {i}" for i in range(120))
    block = extraction.Block("code", code, lang="python")
    pieces = chunking.chunk_blocks([block], size=400, overlap=50)
    assert len(pieces) > 3 and all(len(p.text) <= 400 for p in pieces)
    assert all(p.text.startswith("```python\n") and p.text.endswith("\n```") for p in pieces)
    inner = "\n".join(p.text.removeprefix("```python\n").removesuffix("\n```") for p in pieces)
    assert inner == code  # nothing lost, nothing repeated


def test_code_containing_a_fence_gets_a_longer_fence():
    block = extraction.Block("code", "Markdown:\n```\nx\n```", lang="md")
    (piece,) = chunking.chunk_blocks([block], size=500, overlap=0)
    assert piece.text.startswith("````md\n") and piece.text.endswith("\n````")


def test_each_piece_of_a_markdown_table_repeats_its_header_and_rule_line():
    table = "| k | v |\n|---|---|\n" + "\n".join(f"| r{i} | v{i} |" for i in range(80))
    parts = chunking.chunk_blocks([extraction.Block("table", table)], size=300, overlap=0)
    assert len(parts) > 1
    assert all(p.text.startswith("| k | v |\n|---|---|\n| r") for p in parts)
