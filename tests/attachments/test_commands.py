"""The operators' commands: archive_attachments and purge_attachments show progress, take
--dry-run, and two runs at once never archive or delete a file twice."""

import threading
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from django.utils import timezone

from attachments import services
from attachments.models import Attachment
from inbox import services as inbox_services
from tests.factories import buyer_opens_conversation

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture(autouse=True)
def local_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def sent_files(buyer, seller, count: int, *, days_old: int) -> list[Attachment]:
    conversation = buyer_opens_conversation(buyer, seller)
    files = [
        services.upload_stream(
            user=buyer, conversation=conversation, name=f"brief {index}.pdf", size=len(PDF), chunks=[PDF]
        )
        for index in range(count)
    ]
    for first in range(0, count, 10):  # at most 10 files a message
        inbox_services.send_message(
            sender=buyer,
            conversation=conversation,
            body="",
            attachment_ids=[f.pk for f in files[first : first + 10]],
        )
    Attachment.objects.filter(pk__in=[f.pk for f in files]).update(
        created_at=timezone.now() - timedelta(days=days_old)
    )
    return files


def run(name, *args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_archive_dry_run_counts_and_changes_nothing_then_archives_once(buyer, seller):
    files = sent_files(buyer, seller, 3, days_old=800)

    out, _ = run("archive_attachments", "--dry-run")
    assert out.startswith("would archive 3 files")
    assert set(Attachment.objects.values_list("status", flat=True)) == {"attached"}

    out, err = run("archive_attachments")
    assert out.startswith("archived 3 files")
    assert "archived 3 files" in err  # the running count
    assert set(Attachment.objects.values_list("status", flat=True)) == {"archived"}
    assert not any(services.blob_store()._path(f.key).exists() for f in files)

    assert run("archive_attachments")[0].startswith("archived 0 files")


@pytest.mark.django_db
def test_files_opened_recently_stay(buyer, seller):
    [file] = sent_files(buyer, seller, 1, days_old=800)
    Attachment.objects.filter(pk=file.pk).update(last_accessed_at=timezone.now() - timedelta(days=30))

    assert run("archive_attachments")[0].startswith("archived 0 files")


@pytest.mark.django_db
def test_purge_dry_run_then_deletes_old_files_and_keeps_the_message(buyer, seller):
    files = sent_files(buyer, seller, 2, days_old=1200)
    recent = sent_files(buyer, seller, 1, days_old=10)

    assert run("purge_attachments", "--dry-run")[0].startswith("would delete 2 files")
    assert Attachment.objects.filter(status="expired").count() == 0

    assert run("purge_attachments")[0].startswith("deleted 2 files")
    expired = Attachment.objects.filter(pk__in=[f.pk for f in files])
    assert {a.status for a in expired} == {"expired"} and all(a.message_id for a in expired)
    assert not any(services.blob_store().exists(f.key) for f in files)
    assert services.blob_store().exists(recent[0].key)
    assert run("purge_attachments")[0].startswith("deleted 0 files")


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("command", ["archive_attachments", "purge_attachments"])
def test_two_runs_at_once_handle_each_file_once(buyer, seller, command):
    sent_files(buyer, seller, 40, days_old=1200)
    outputs = []

    def one_run():
        try:
            outputs.append(run(command)[0])
        finally:
            connections.close_all()

    runs = [threading.Thread(target=one_run) for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()

    handled = sum(int(output.split()[1]) for output in outputs)
    assert handled == 40  # between them, each file once
