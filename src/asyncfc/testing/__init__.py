"""Test doubles for code built on asyncfc: no model endpoint, no API key.

* :class:`ScriptedModel` plays turns written in advance (``Ref(n)`` is "the result of the
  n-th call", shown as a future id or as the value, whichever the model was shown), so one
  script runs unchanged in every mode;
* :class:`SimServer` serves the same scripts over a real OpenAI-compatible HTTP endpoint,
  with simulated prefill and decode time and several decode slots, like a hosted API.
"""

from .scripted import Ref, ScriptedCall, ScriptedModel, Turn, TurnSpec
from .simserver import SimServer

__all__ = ["Ref", "ScriptedCall", "ScriptedModel", "SimServer", "Turn", "TurnSpec"]
