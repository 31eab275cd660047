"""vcrpy's record modes as one pure decision: play a recording, forward and record, or refuse.

The model is vcrpy 9.4's ``Cassette`` (``once``, ``new_episodes``, ``all``, ``none``), with one
deliberate difference: only interactions that were in the file when it was loaded can be played.
vcrpy lets ``new_episodes`` replay an interaction recorded a moment earlier in the same session
(vcrpy #753), so a repeated request stops reaching the upstream; here it keeps being recorded.
"""

from __future__ import annotations

from enum import StrEnum

from gateway.settings import RecordMode


class Action(StrEnum):
    PLAY = "play"  # answer from the cassette, nothing goes upstream
    RECORD = "record"  # forward upstream and append the exchange to the cassette
    REFUSE = "refuse"  # a miss: the cassette may not grow and holds nothing to play


def decide(mode: RecordMode, *, existed: bool, playable: bool) -> Action:
    """What to do with one request.

    ``existed``: the cassette file was there (and non-empty) when it was loaded.
    ``playable``: a loaded interaction matching the request is still unplayed (or repeatable).
    """
    if mode is RecordMode.ALL:
        return Action.RECORD  # never replays; new recordings replace the loaded ones on save
    if playable:
        return Action.PLAY
    if mode is RecordMode.NONE:
        return Action.REFUSE
    if mode is RecordMode.ONCE and existed:
        return Action.REFUSE  # an existing cassette is write-protected under ``once``
    return Action.RECORD


def replay_action(*, playable: bool) -> Action:
    """``--mode replay``: cassettes only, whatever the record mode says."""
    return Action.PLAY if playable else Action.REFUSE


def refusal_reason(mode: RecordMode | None, *, existed: bool) -> str:
    """Why a miss was not recorded, in vcrpy's words (``None`` means replay mode)."""
    if not existed:
        return "cassette_not_found"
    if mode is None:
        return "replay mode never records"
    if mode is RecordMode.NONE:
        return "record_mode 'none' doesn't record new requests"
    return "record_mode 'once' doesn't add requests to an existing cassette"
