"""Passphrase resolution: AILEDGER_PASSPHRASE, else a terminal prompt, else a clear error."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest

from ailedger.errors import KeyError_
from ailedger.keys.passphrase import resolve_passphrase


class FakePrompt:
    """Answers prompts from a script and records what was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def __call__(self, text: str) -> str:
        self.asked.append(text)
        if not self.answers:
            raise EOFError
        return self.answers.pop(0)


def _never(text: str) -> str:
    raise AssertionError(f"prompted although the setting was given: {text}")


def test_setting_wins_without_prompting() -> None:
    assert resolve_passphrase("from-env", confirm=True, prompt=_never, interactive=True) == (
        "from-env"
    )


def test_empty_setting_is_refused() -> None:
    with pytest.raises(KeyError_, match="AILEDGER_PASSPHRASE is set but empty"):
        resolve_passphrase("", confirm=False, prompt=_never, interactive=True)


def test_no_terminal_asks_for_the_variable() -> None:
    with pytest.raises(KeyError_, match="set AILEDGER_PASSPHRASE"):
        resolve_passphrase(None, confirm=False, prompt=_never, interactive=False)


def test_stdin_that_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("typed\n"))
    with pytest.raises(KeyError_, match="no terminal"):
        resolve_passphrase(None, confirm=False, prompt=_never)


def test_prompts_once_without_confirm() -> None:
    prompt = FakePrompt("secret")
    assert resolve_passphrase(None, confirm=False, prompt=prompt, interactive=True) == "secret"
    assert len(prompt.asked) == 1


def test_prompts_twice_with_confirm() -> None:
    prompt = FakePrompt("secret", "secret")
    assert resolve_passphrase(None, confirm=True, prompt=prompt, interactive=True) == "secret"
    assert len(prompt.asked) == 2


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (FakePrompt("secret", "secreT"), "differ"),
        (FakePrompt(""), "empty"),
        (FakePrompt(), "closed"),
        (FakePrompt("secret"), "closed"),
    ],
)
def test_prompt_failures(prompt: Callable[[str], str], message: str) -> None:
    with pytest.raises(KeyError_, match=message):
        resolve_passphrase(None, confirm=True, prompt=prompt, interactive=True)
