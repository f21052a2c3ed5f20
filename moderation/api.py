from ninja import Field, Router, Schema, Status

from inbox import selectors as inbox_selectors
from marketplace.api_inputs import NO_NUL, BodyIn, JsonInt, declared

from . import services
from .models import Report

router = Router(tags=["moderation"])


class ReportIn(BodyIn):
    reason: str = declared(
        description=", ".join(Report.Reason.values), enum=Report.Reason.values
    )  # invalid_reason
    note: str = Field("", max_length=services.NOTE_MAX, json_schema_extra={"pattern": NO_NUL})  # invalid_note
    message_id: JsonInt | None = Field(
        None, description="A message the other person sent in this conversation, if it is about one"
    )


class ReportOut(Schema):
    id: int
    conversation_id: int
    message_id: int | None
    reason: str
    note: str
    status: str


def _report_out(report: Report) -> dict:
    return {
        "id": report.pk,
        "conversation_id": report.conversation_id,
        "message_id": report.message_id,
        "reason": report.reason,
        "note": report.note,
        "status": report.status,
    }


@router.post("/conversations/{int:conversation_id}/reports", response={201: ReportOut})
def report_conversation(request, conversation_id: int, payload: ReportIn):
    """Report the conversation, or one message of the other person in it, to the moderators.
    `spam` also moves the conversation to your Spam."""
    membership = inbox_selectors.conversation_for_user(user=request.user, conversation_id=conversation_id)
    message = (
        inbox_selectors.message_for_user(user=request.user, message_id=payload.message_id)
        if payload.message_id is not None
        else None
    )
    report = services.report(
        reporter=request.user,
        conversation=membership.conversation,
        reason=payload.reason,
        note=payload.note,
        message=message,
    )
    return Status(201, _report_out(report))
