"""An institution's side of SecAgg+ (Flower's secure aggregation), kept at its desk.

The requester's ClientApp relays each protocol message's ``secaggplus`` ConfigRecord (as
Flower's protobuf, base64) to the desk; :class:`SecAggParty` runs Flower's own client
protocol on it (``flowerdesk/secagg_worker.py``, in the institution's Flower venv) and
answers what goes back to the server. This node's keys, mask seed and the key shares it
holds stay in the party's state, in this process: the relay, like the server, sees public
keys, encrypted shares, the masked vector and the shares for unmasking, from which no
single update can be recovered while enough institutions stay honest.

"Enough institutions" must be institutions, not nodes the server made up: a server that
ran one honest node among SuperNodes of its own would hold their key shares and unmask
the honest update. So each node's public keys are vouched for by a job member
(:class:`KeyVouching`): at setup the desk signs its fresh keys with the institution's
account (EIP-191, over the FederatedJobs contract, job, round and node id); at key sharing
it takes shares only if every neighbour's keys are signed by a distinct member of the job
on chain, its own by itself. The signatures travel beside the protocol (the ServerApp
carries them from the setup replies to the key-sharing messages); a server that drops or
forges one gets a refusal, not shares.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ailedger.errors import ConfigError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

# Not a module of the package (no __init__ beside it): it imports flwr, which lives only in
# Flower's venv, and runs there, as the institution's own code.
WORKER = Path(__file__).with_name("flowerdesk") / "secagg_worker.py"
STEP_TIMEOUT_S = 120.0
SIGNATURE = re.compile(r"(0x)?[0-9a-fA-F]{130}")  # r, s and v of an EIP-191 signature


def keys_statement(contract: str, job_id: int, round_no: int, node_id: int, keys: list[str]) -> str:
    """What a member signs to vouch for a node's SecAgg+ public keys (hex) in one round."""
    pk1, pk2 = keys
    return (
        f"ailedger-secagg-keys|{contract.lower()}|job {job_id}|round {round_no}"
        f"|node {node_id}|{pk1}|{pk2}"
    )


@dataclass(frozen=True)
class KeyVouching:
    """Who may hold shares of this institution's secrets: nodes whose keys a distinct
    member of the job signed. ``members`` reads the job's members (addresses) when asked."""

    contract: str
    job_id: int
    account: LocalAccount
    members: Callable[[], Collection[str]]

    def sign(self, round_no: int, node_id: int, keys: list[str]) -> str:
        from eth_account.messages import encode_defunct

        text = keys_statement(self.contract, self.job_id, round_no, node_id, keys)
        return bytes(self.account.sign_message(encode_defunct(text=text)).signature).hex()

    def refusal(
        self,
        round_no: int,
        node_id: int,
        neighbours: dict[str, list[str]],
        signatures: dict[str, str],
    ) -> str | None:
        """Why these neighbours may not get shares of this node's secrets, or None."""
        members = {address.lower() for address in self.members()}
        vouched: dict[str, str] = {}  # signer -> node
        for node, keys in sorted(neighbours.items()):
            signer = self._signer(round_no, int(node), keys, signatures.get(node))
            if signer is None or signer not in members:
                who = "no one" if signer is None else signer
                return (
                    f"node {node}'s SecAgg+ keys are vouched for by {who}, not a member of "
                    f"job {self.job_id}: a node the server runs itself would get shares of "
                    "this institution's masks"
                )
            if signer in vouched:
                return (
                    f"nodes {vouched[signer]} and {node} are both vouched for by {signer}: "
                    "one member, one node"
                )
            vouched[signer] = node
        if vouched.get(self.account.address.lower()) != str(node_id):
            return "this institution's own node is not the one its signature vouches for"
        return None

    def _signer(
        self, round_no: int, node: int, keys: list[str], signature: str | None
    ) -> str | None:
        from eth_account import Account
        from eth_account.messages import encode_defunct

        if signature is None or not SIGNATURE.fullmatch(signature):
            return None
        text = keys_statement(self.contract, self.job_id, round_no, node, keys)
        try:
            signer = Account.recover_message(
                encode_defunct(text=text), signature=bytes.fromhex(signature.removeprefix("0x"))
            )
        except Exception:  # eth-account raises assorted errors for malformed signatures
            return None
        return str(signer).lower()


class SecAggParty:
    """One institution's SecAgg+ state across a job's rounds."""

    def __init__(self, vouching: KeyVouching) -> None:
        self.vouching = vouching
        self._state: str | None = None

    def step(
        self,
        node_id: int,
        round_no: int,
        configs: str,
        signatures: dict[str, str],
        update: list[float] | None = None,
        num_examples: int | None = None,
    ) -> dict[str, Any]:
        """``{"configs": b64}`` to send back (with ``"signature"`` of this node's new keys at
        setup), or ``{"needs_update": True}`` when this is the stage that masks the round's
        update and none was given (nothing changed then). A key-sharing stage with a
        neighbour no member vouches for in ``signatures`` raises ConfigError, the state
        unchanged: no share leaves."""
        order = {
            "node_id": node_id,
            "state": self._state,
            "configs": configs,
            "update": update,
            "num_examples": num_examples,
        }
        answer = _run_worker(order)
        if "needs_update" in answer:
            return {"needs_update": True}
        reply: dict[str, Any] = {"configs": str(answer["configs"])}
        if "own_keys" in answer:
            reply["signature"] = self.vouching.sign(round_no, node_id, answer["own_keys"])
        if "neighbours" in answer:
            refusal = self.vouching.refusal(round_no, node_id, answer["neighbours"], signatures)
            if refusal is not None:
                raise ConfigError(refusal)
        self._state = str(answer["state"])
        return reply


def _run_worker(order: dict[str, Any]) -> dict[str, Any]:
    from ailedger.federated.flower import flower_venv

    python = flower_venv() / "bin" / "python"
    try:
        done = subprocess.run(
            # -I: the worker's own directory is not put on sys.path (its http.py would
            # shadow the standard library's), and no PYTHON* variable or user site applies.
            [str(python), "-I", str(WORKER)],
            input=json.dumps(order),
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT_S,
            check=False,
            env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"the SecAgg+ step could not run: {exc}") from None
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"the SecAgg+ step was refused: {tail[0][:300]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result
