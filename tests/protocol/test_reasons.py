"""Fit-failure reason summaries, as HAMi's GenReason / ParseReason write and read them."""

from __future__ import annotations

from hami_core.protocol import Reason, format_reasons, parse_reasons


def test_every_hami_reason_name() -> None:
    assert {reason.value for reason in Reason} == {
        "CardTypeMismatch", "CardUuidMismatch", "CardTimeSlicingExhausted",
        "CardComputeUnitsExhausted", "CardInsufficientMemory", "CardInsufficientCore",
        "CardNotHealth", "CardCordoned", "NumaNotFit", "ExclusiveDeviceAllocateConflict",
        "CardNotFoundCustomFilterRule", "CardMigTopologyInfeasible", "NodeInsufficientDevice",
        "AllocatedCardsInsufficientRequest", "NodeUnfitPod", "NodeFitPod", "ResourceQuotaNotFit",
        "ModeNotFit",
    }  # fmt: skip


def test_format_sorts_pieces_as_plain_strings() -> None:
    counts = {
        Reason.CARD_INSUFFICIENT_MEMORY: 2,
        Reason.CARD_NOT_HEALTH: 10,
        Reason.CARD_CORDONED: 2,
    }
    assert format_reasons(counts, 16) == (
        "10/16 CardNotHealth, 2/16 CardCordoned, 2/16 CardInsufficientMemory"
    )


def test_format_of_nothing_is_empty() -> None:
    assert format_reasons({}, 8) == ""


def test_parse_inverts_format() -> None:
    counts = {"CardInsufficientMemory": 3, "CardTypeMismatch": 5}
    assert parse_reasons(format_reasons(counts, 8)) == {
        "CardInsufficientMemory": (3, 8),
        "CardTypeMismatch": (5, 8),
    }


def test_parse_skips_pieces_it_cannot_read() -> None:
    text = "3/8 CardNotHealth, NodeInsufficientDevice, x/8 Bad, 1/ 2 CardCordoned, "
    assert parse_reasons(text) == {"CardNotHealth": (3, 8), "CardCordoned": (1, 2)}
    assert parse_reasons("") == {}
    assert parse_reasons("9" * 30 + "/1 Huge") == {}


def test_parse_reads_only_the_first_word_like_sscanf() -> None:
    assert parse_reasons("2/4 CardNotHealth trailing words") == {"CardNotHealth": (2, 4)}
