"""A buyer attaches an image and a PDF in the composer (each uploads at once, its progress bar
runs to the end), and sends them with a short text; the seller sees the message arrive live
with the file names and the image's thumbnail, and downloads the PDF. A file whose content is
not what its name says is refused with the server's reason, and is not sent."""

import io
import re
import struct
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from inbox import services
from tests.e2e.support import assert_same_document, expect_live, log_in, mark_document, open_page

pytestmark = [pytest.mark.needs_browser, pytest.mark.django_db(transaction=True)]

QUESTION = "Hi Sam, I need a logo for my bakery."
WITH_FILES = "Here are my sketch and the brief."
NOTES = b"Colours: wheat, warm brown.\n"


def png_bytes() -> bytes:
    output = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(output, format="PNG")
    return output.getvalue()


PNG = png_bytes()
PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
# The header of an x86-64 Linux executable: sniffed as application/x-executable.
ELF = (
    b"\x7fELF\x02\x01\x01\x00"
    + bytes(8)
    + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x401000, 64, 0, 0, 64, 56, 0, 64, 0, 0)
)


def test_buyer_sends_a_file_and_the_seller_downloads_it(
    daphne_servers, launch_browser, buyer, seller, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path  # and the daphne process's (tests/servers.py passes it on)
    conversation, _, _ = services.start_conversation(sender=buyer, recipient_username="seller", body=QUESTION)
    server = daphne_servers.start()
    browser = launch_browser()
    seller_page = open_page(browser, server)
    buyer_page = open_page(browser, server)
    log_in(seller_page, "seller")
    seller_page.goto(f"/inbox/{conversation.pk}/")
    expect_live(seller_page)
    mark_document(seller_page)
    log_in(buyer_page, "buyer")
    buyer_page.goto(f"/inbox/{conversation.pk}/")
    expect_live(buyer_page)
    mark_document(buyer_page)

    # The buyer picks an image and a PDF: each uploads at once, its bar runs to the end, and it
    # is ready to go with the next message. While the PDF is on its way (held here), Send waits.
    files = buyer_page.locator("#composer-file-list .file-item")
    composer = buyer_page.get_by_label("Message Sam Seller")
    send = buyer_page.get_by_role("button", name="Send")
    held = []

    def hold_the_pdf(route):
        if "brief.pdf" in (route.request.post_data or ""):
            held.append(route)
        else:
            route.continue_()

    starts = re.compile(r"/api/v1/conversations/\d+/uploads$")
    buyer_page.route(starts, hold_the_pdf)
    buyer_page.get_by_label("Attach files").set_input_files(
        [
            {"name": "sketch.png", "mimeType": "image/png", "buffer": PNG},
            {"name": "brief.pdf", "mimeType": "application/pdf", "buffer": PDF},
        ]
    )
    expect(files.locator(".file-name")).to_have_text(["sketch.png", "brief.pdf"])
    expect(files.locator(".file-status")).to_have_text(["Ready", re.compile(r"^Uploading…")])
    expect(send).to_be_disabled()
    composer.press("Enter")
    expect(buyer_page.locator("#composer-error")).to_have_text("Wait until the files are uploaded.")
    assert len(held) == 1
    held[0].continue_()
    buyer_page.unroute(starts)
    expect(files.locator(".file-status")).to_have_text(["Ready", "Ready"])
    expect(files.nth(0).locator("progress")).to_have_attribute("value", str(len(PNG)))
    expect(files.nth(1).locator("progress")).to_have_attribute("value", str(len(PDF)))
    expect(buyer_page.locator("#composer input[name=attachments]")).to_have_count(2)
    expect(send).to_be_enabled()

    # An executable named like an image: the server says why it refuses it, and it will not go.
    buyer_page.get_by_label("Attach files").set_input_files(
        {"name": "tool.png", "mimeType": "image/png", "buffer": ELF}
    )
    refused = files.filter(has_text="tool.png")
    expect(refused.locator(".file-error")).to_have_text(
        "Files of type application/x-executable cannot be sent."
    )
    expect(refused.locator(".file-status")).to_have_text("Not uploaded")
    expect(buyer_page.locator("#composer input[name=attachments]")).to_have_count(2)

    # Enter sends the text with the two files; they leave the composer, the refused one stays
    # until the buyer removes it.
    composer.fill(WITH_FILES)
    composer.press("Enter")
    expect(composer).to_have_value("")
    sent = buyer_page.locator("#thread li.message.mine").last
    expect(sent.locator(".bubble")).to_have_text(WITH_FILES)
    expect(sent.locator(".attachment-name")).to_have_count(2)
    assert sorted(sent.locator(".attachment-name").all_inner_texts()) == ["brief.pdf", "sketch.png"]
    expect(files).to_have_count(1)
    expect(files.locator(".file-name")).to_have_text("tool.png")
    buyer_page.get_by_role("button", name="Remove tool.png").click()
    expect(files).to_have_count(0)
    expect(buyer_page.locator("#composer-error")).to_be_hidden()
    assert_same_document(buyer_page)

    # The seller sees it arrive live: the text, both files, and the image's thumbnail (made
    # while it uploaded; were the fragment faster, a reload shows it).
    theirs = seller_page.locator("#thread li.message.theirs")
    expect(theirs).to_have_count(2)
    arrived = theirs.last
    expect(arrived.locator(".bubble")).to_have_text(WITH_FILES)
    expect(arrived.locator(".attachment-name")).to_have_count(2)
    assert sorted(arrived.locator(".attachment-name").all_inner_texts()) == ["brief.pdf", "sketch.png"]
    assert_same_document(seller_page)
    if arrived.locator(".attachment-thumb img").count() == 0:
        seller_page.reload()
        expect_live(seller_page)
        mark_document(seller_page)
    thumbnail = arrived.locator(".attachment-thumb img")
    expect(thumbnail).to_have_attribute("alt", "sketch.png")
    seller_page.wait_for_function(
        "img => img.complete && img.naturalWidth === 64", arg=thumbnail.element_handle()
    )

    # A click on the PDF downloads it, under its name, byte for byte.
    with seller_page.expect_download() as download_info:
        arrived.get_by_role("link", name="brief.pdf", exact=True).click()
    download = download_info.value
    assert download.suggested_filename == "brief.pdf"
    assert Path(download.path()).read_bytes() == PDF

    # A file alone, without a word, goes too.
    buyer_page.get_by_label("Attach files").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": NOTES}
    )
    expect(files.locator(".file-status")).to_have_text("Ready")
    expect(composer).to_have_value("")
    send.click()
    expect(files).to_have_count(0)
    expect(theirs).to_have_count(3)
    alone = theirs.last
    expect(alone.locator(".attachment-name")).to_have_text("notes.txt")
    expect(alone.locator(".bubble")).to_have_count(0)
    assert_same_document(seller_page)

    # The server kept the files (and the thumbnail) in this test's folder, not the refused one.
    stored = sorted(path.name for path in (tmp_path / "attachments").rglob("*") if path.is_file())
    assert stored == ["brief.pdf", "notes.txt", "sketch.png", "sketch.png.thumb.jpg"], stored

    assert seller_page.js_errors == [], seller_page.js_errors
    assert buyer_page.js_errors == [], buyer_page.js_errors
