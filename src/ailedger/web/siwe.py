"""Sign-In with Ethereum (EIP-4361): the message, parsed and built exactly, and its signer.

A message reads::

    127.0.0.1:8700 wants you to sign in with your Ethereum account:
    0xAbC...

    Sign in to this ailedger home.

    URI: http://127.0.0.1:8700
    Version: 1
    Chain ID: 1337
    Nonce: 4f1c...
    Issued At: 2026-12-02T11:00:00Z
    Expiration Time: 2026-12-02T11:05:00Z

(ABNF in EIP-4361: the statement line is optional, then ``Not Before``, ``Request ID``
and ``Resources`` may follow). The signature is EIP-191 ``personal_sign`` over the
message's UTF-8 text; :func:`recover_signer` gives the address that made it. Whether a
message admits anyone (domain, chain, nonce, times, signer) is :mod:`ailedger.web.auth`'s
call; here a message is only read, written and its signer recovered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from eth_utils.address import is_checksum_address

from ailedger.errors import MalformedRequestError

HEADER_SUFFIX: Final = " wants you to sign in with your Ethereum account:"
MAX_MESSAGE_CHARS: Final = 4096

_NONCE: Final = re.compile(r"[A-Za-z0-9]{8,}")
_DOMAIN: Final = re.compile(r"(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<authority>[^\s/?#]+)")
_SIGNATURE: Final = re.compile(r"0x[0-9a-fA-F]{130}")
_OPTIONAL_FIELDS: Final = (
    ("expiration_time", "Expiration Time: "),
    ("not_before", "Not Before: "),
    ("request_id", "Request ID: "),
)


class SiweFormatError(MalformedRequestError):
    """The text is not an EIP-4361 message (says which line is wrong)."""


@dataclass(frozen=True)
class SiweMessage:
    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    statement: str | None = None
    version: str = "1"
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()
    scheme: str | None = None

    def text(self) -> str:
        """The message exactly as EIP-4361 writes it (what is signed)."""
        origin = f"{self.scheme}://{self.domain}" if self.scheme else self.domain
        lines = [origin + HEADER_SUFFIX, self.address, ""]
        # EIP-4361: address LF LF [statement LF] LF "URI: "
        lines += [self.statement, ""] if self.statement is not None else [""]
        lines += [
            f"URI: {self.uri}",
            f"Version: {self.version}",
            f"Chain ID: {self.chain_id}",
            f"Nonce: {self.nonce}",
            f"Issued At: {self.issued_at}",
        ]
        for name, label in _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                lines.append(label + value)
        if self.resources:
            lines.append("Resources:")
            lines += [f"- {resource}" for resource in self.resources]
        return "\n".join(lines)


def timestamp(moment: datetime) -> str:
    """``moment`` as the RFC 3339 UTC time a message carries (whole seconds, ``Z``)."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def read_time(value: str, field: str) -> datetime:
    """An RFC 3339 time of a message, with its offset; naive times are refused."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SiweFormatError(f"{field} is not an RFC 3339 time: {value!r}") from None
    if moment.tzinfo is None:
        raise SiweFormatError(f"{field} has no time zone (end it with Z): {value!r}")
    return moment


def parse(text: str) -> SiweMessage:
    """The EIP-4361 message ``text``; a text that is not one exactly raises
    :class:`SiweFormatError` naming the first line that is wrong."""
    if len(text) > MAX_MESSAGE_CHARS:
        raise SiweFormatError(f"a sign-in message has at most {MAX_MESSAGE_CHARS} characters")
    lines = text.split("\n")
    reader = _Lines(lines)
    header = reader.take("the header line")
    if not header.endswith(HEADER_SUFFIX):
        raise SiweFormatError(f"line 1 must end with {HEADER_SUFFIX.strip()!r}")
    origin = _DOMAIN.fullmatch(header[: -len(HEADER_SUFFIX)])
    if origin is None:
        raise SiweFormatError("line 1 must start with the domain asking for the sign-in")
    address = reader.take("the address")
    if not is_checksum_address(address):
        raise SiweFormatError("line 2 must be an EIP-55 checksummed address")
    reader.expect("", "an empty line after the address")
    statement: str | None = None
    if not reader.peek().startswith("URI: "):
        if reader.peek() != "":
            statement = reader.take("the statement")
            if "\n" in statement or not statement:
                raise SiweFormatError("the statement must be one line")
        reader.expect("", "an empty line after the statement")
    uri = reader.field("URI: ")
    version = reader.field("Version: ")
    if version != "1":
        raise SiweFormatError(f"Version must be 1, not {version!r}")
    chain = reader.field("Chain ID: ")
    if not chain.isdigit() or len(chain) > 78:
        raise SiweFormatError(f"Chain ID must be a decimal number, not {chain!r}")
    nonce = reader.field("Nonce: ")
    if not _NONCE.fullmatch(nonce):
        raise SiweFormatError("Nonce must be at least 8 letters or digits")
    issued_at = reader.field("Issued At: ")
    read_time(issued_at, "Issued At")
    optional: dict[str, str] = {}
    for name, label in _OPTIONAL_FIELDS:
        if reader.peek().startswith(label):
            optional[name] = reader.field(label)
    for name in ("expiration_time", "not_before"):
        if name in optional:
            read_time(optional[name], name.replace("_", " ").title())
    resources: list[str] = []
    if reader.peek() == "Resources:":
        reader.take("Resources:")
        while reader.more() and reader.peek().startswith("- "):
            resources.append(reader.take("a resource")[2:])
    if reader.more():
        raise SiweFormatError(f"line {reader.index + 1} is not part of a sign-in message")
    return SiweMessage(
        domain=origin["authority"],
        address=address,
        uri=uri,
        chain_id=int(chain),
        nonce=nonce,
        issued_at=issued_at,
        statement=statement,
        version=version,
        resources=tuple(resources),
        scheme=origin["scheme"],
        **optional,
    )


def recover_signer(text: str, signature: str) -> str:
    """The address whose key made ``signature`` (EIP-191 personal_sign) over ``text``."""
    from eth_account import Account
    from eth_account.messages import encode_defunct

    if not _SIGNATURE.fullmatch(signature):
        raise SiweFormatError("the signature must be 0x and 130 hex digits (65 bytes)")
    try:
        signer: str = Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception as exc:  # eth_keys raises several kinds for a bad (r, s, v)
        raise SiweFormatError(f"the signature cannot be read: {exc}") from None
    return signer


class _Lines:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.index = 0

    def more(self) -> bool:
        return self.index < len(self.lines)

    def peek(self) -> str:
        return self.lines[self.index] if self.more() else ""

    def take(self, what: str) -> str:
        if not self.more():
            raise SiweFormatError(f"the message ends before {what}")
        line = self.lines[self.index]
        self.index += 1
        return line

    def expect(self, line: str, what: str) -> None:
        if self.take(what) != line:
            raise SiweFormatError(f"line {self.index} must be {what}")

    def field(self, label: str) -> str:
        line = self.take(label.strip())
        if not line.startswith(label):
            raise SiweFormatError(f"line {self.index} must start with {label.strip()!r}")
        return line[len(label) :]
