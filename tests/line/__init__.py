"""The test-only line model: impairments of the sim card's coded span signal.

Never part of the product (built by ``make setup`` into tests/line/_line*.so,
not installed). The card takes it through one hook, ``cb_line_model_t``
(drivers/include/cb_sim.h): ``LineModel.hook_address`` is that pointer, for
``cb_sim_set_line_model``. Per span and direction (0 = toward the card, 1 =
toward the far end) the model adds, seeded and deterministic for a seed:

- symbol errors at a BER (a space becomes a mark of either polarity, a mark a
  space), with geometric gaps between them, so low rates cost nothing;
- bipolar violations at a rate (a space becomes a mark of the polarity of the
  mark before it: one violation each);
- the far end's clock offset (``set_ppm``), stored for the card, which makes
  the slips.

See tests/line/line_model.h for the C side.
"""

from __future__ import annotations

from typing import Any

from drivers.errors import check

try:
    from tests.line._line import ffi, lib
except ImportError as exc:  # pragma: no cover - a tree without `make setup`
    raise ImportError(f"tests.line._line is not built ({exc}); run `make setup`") from None

__all__ = ["LineModel", "ffi", "lib"]

MAX_SPANS: int = lib.LINE_MODEL_MAX_SPANS


class LineModel:
    """The line model for ``nspans`` spans, every impairment off until ``set``."""

    def __init__(self, nspans: int) -> None:
        if not 1 <= nspans <= MAX_SPANS:
            raise ValueError(f"nspans must be 1..{MAX_SPANS}, not {nspans}")
        hook = lib.line_model_new(nspans)
        if hook == ffi.NULL:
            raise MemoryError("line_model_new failed")
        self._hook: Any = ffi.gc(hook, lib.line_model_free)
        self.nspans = nspans

    @property
    def hook_address(self) -> int:
        """The ``cb_line_model_t *`` as an integer (cast it in the card's ffi)."""
        return int(ffi.cast("uintptr_t", self._hook))

    def set(self, span: int, dir: int, ber: float = 0.0, bpv_rate: float = 0.0, seed: int = 1) -> None:
        """Set one span's direction (rates per symbol); its injected counts restart."""
        check(lib.line_model_set(self._hook, span, dir, ber, bpv_rate, seed & (2**64 - 1)), "line model set")

    def set_ppm(self, span: int, ppm: float) -> None:
        """The far end's clock offset on ``span``, in parts per million (stored as ppb)."""
        check(lib.line_model_set_ppb(self._hook, span, round(ppm * 1000)), "line model set_ppm")

    def far_ppb(self, span: int) -> int:
        """The clock offset the card reads for ``span`` (parts per 10^9)."""
        if not 0 <= span < self.nspans:
            raise ValueError(f"no span {span}")
        return int(self._hook.far_ppb[span])

    def injected(self, span: int, dir: int) -> dict[str, int]:
        """What was injected into ``span``'s direction ``dir``: ``{"bit_errors": n, "bpv": n}``."""
        errs = ffi.new("uint64_t *")
        bpv = ffi.new("uint64_t *")
        check(lib.line_model_injected(self._hook, span, dir, errs, bpv), "line model injected")
        return {"bit_errors": int(errs[0]), "bpv": int(bpv[0])}

    def impair(self, span: int, dir: int, tick: int, sym_address: int, nbits: int) -> None:
        """Call the hook as the card does on ``nbits`` symbols (``int8_t``) at ``sym_address``."""
        sym = ffi.cast("int8_t *", sym_address)
        self._hook.impair(self._hook.ctx, span, dir, tick, sym, nbits)
