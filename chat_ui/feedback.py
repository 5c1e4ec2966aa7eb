"""Feedback on the chat's answers, answered ahead of Chainlit's own routes for it.

Chainlit's PUT /feedback reports any data-layer error as a 500 and its DELETE lets one escape; these answer a
message that is not the person's own (someone else's, or none) with a plain 404, the same for both cases.
"""

from __future__ import annotations

from chainlit.data import get_data_layer
from chainlit.data.base import BaseDataLayer
from chainlit.server import UserParam
from chainlit.types import DeleteFeedbackRequest, UpdateFeedbackRequest
from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse

from chat_ui.threads import NotYours

NOT_FOUND = "no message of yours has this id"

router = APIRouter()


@router.put("/feedback")
async def update_feedback(update: UpdateFeedbackRequest, current_user: UserParam) -> JSONResponse:
    """Rate (and comment on) one of the person's answers."""
    try:
        feedback_id = await _data_layer().upsert_feedback(feedback=update.feedback)
    except NotYours:
        raise HTTPException(status_code=404, detail=NOT_FOUND) from None
    return JSONResponse({"success": True, "feedbackId": feedback_id})


@router.delete("/feedback")
async def delete_feedback(payload: DeleteFeedbackRequest, current_user: UserParam) -> JSONResponse:
    """Take back the rating of one of the person's answers."""
    try:
        await _data_layer().delete_feedback(payload.feedbackId)
    except NotYours:
        raise HTTPException(status_code=404, detail=NOT_FOUND) from None
    return JSONResponse({"success": True})


def _data_layer() -> BaseDataLayer:
    data_layer = get_data_layer()
    assert data_layer is not None  # chat_ui.app registers TaskFlow's
    return data_layer
