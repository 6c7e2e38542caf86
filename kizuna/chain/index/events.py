"""Fast, generic decoding of raw event logs against any set of ABIs.

The index reads logs straight from ``eth_getLogs``' JSON (hex strings, no web3 formatters) and
decodes them here: ``topic0`` picks the event, indexed arguments come from the topics (dynamic
indexed types stay as their 32-byte hash, as the EVM stores them), the rest from ``data``.
Precomputing one :class:`EventSpec` per event keeps decoding to one ``eth_abi`` call per log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any, NamedTuple

from eth_abi.abi import decode as abi_decode
from eth_utils.abi import event_signature_to_log_topic
from eth_utils.address import to_checksum_address

from kizuna.chain.reverts import abi_type_string


@lru_cache(maxsize=1 << 16)
def checksum(raw20: bytes) -> str:
    """EIP-55 form of 20 address bytes (cached: the same patients and providers recur)."""
    return to_checksum_address(raw20)


Word = Callable[[bytes], Any]
"""Decodes one 32-byte ABI word of a static type."""


def _word_decoder(abi_type: str) -> Word | None:
    """A direct decoder for a static elementary type; ``None`` when eth-abi is needed."""
    if abi_type == "address":
        return lambda w: checksum(w[12:])
    if abi_type == "bool":
        return lambda w: w[31] != 0
    if abi_type.startswith("uint") and abi_type[4:].isdigit():
        return partial(int.from_bytes, byteorder="big")
    if abi_type.startswith("int") and abi_type[3:].isdigit():
        return partial(int.from_bytes, byteorder="big", signed=True)
    if abi_type.startswith("bytes") and abi_type[5:].isdigit():
        size = int(abi_type[5:])
        return lambda w: w[:size]
    return None


def _is_dynamic(abi_type: str) -> bool:
    return abi_type in ("string", "bytes") or abi_type.endswith("]") or abi_type.startswith("(")


@dataclass(frozen=True, slots=True)
class EventSpec:
    """One event of one ABI: name, topic0, and how to decode each argument."""

    name: str
    topic0: bytes
    names: tuple[str, ...]
    types: tuple[str, ...]
    indexed: tuple[bool, ...]
    anonymous: bool = False

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(self.types)})"

    @property
    def data_types(self) -> list[str]:
        return [t for t, ix in zip(self.types, self.indexed, strict=True) if not ix]

    def plan(self) -> tuple[list[tuple[str, bool, Word | None, str]], bool]:
        """Per argument: (name, indexed, direct word decoder or None, type); and whether the
        data part is all static words (then no eth-abi call is needed at all)."""
        steps = [(name, ix, _word_decoder(t) if not (ix and _is_dynamic(t)) else None, t)
                 for name, t, ix in zip(self.names, self.types, self.indexed, strict=True)]
        static = all(dec is not None for _, ix, dec, _ in steps if not ix)
        return steps, static


def event_specs(abi: Iterable[Mapping[str, Any]]) -> list[EventSpec]:
    """Every non-anonymous event of an ABI."""
    specs: list[EventSpec] = []
    for entry in abi:
        if entry.get("type") != "event" or entry.get("anonymous"):
            continue
        inputs = entry.get("inputs", [])
        types = tuple(abi_type_string(i) for i in inputs)
        signature = f"{entry['name']}({','.join(types)})"
        specs.append(EventSpec(
            name=str(entry["name"]),
            topic0=bytes(event_signature_to_log_topic(signature)),
            names=tuple(str(i.get("name") or f"arg{n}") for n, i in enumerate(inputs)),
            types=types,
            indexed=tuple(bool(i.get("indexed")) for i in inputs),
        ))
    return specs


Blob = bytes | bytearray
"""Bytes for SQLite. The catch-up hands ``bytearray`` s: Python's sqlite3 binds those directly,
while for ``bytes`` it first looks for an adapter (a protocol lookup that fails, ~0.25 µs a
value — a microsecond per raw row of four blobs)."""

RawRow = tuple[int, int, Blob, Blob, str, Blob, Blob]
"""A ``raw_logs`` row: block number, log index, block hash, transaction hash, address (EIP-55),
the topics joined, data."""


def raw_row(event: DecodedEvent) -> RawRow:
    """The ``raw_logs`` row of a decoded event."""
    return (event.block_number, event.log_index, event.block_hash, event.tx_hash, event.address,
            b"".join(event.topics), event.data)


class DecodedEvent(NamedTuple):
    """A decoded log: which contract and event, its arguments by name, and where it was.

    A ``NamedTuple`` (immutable, and the cheapest immutable record to build: the index makes
    one per log during catch-up)."""

    contract: str
    address: str
    name: str
    args: Mapping[str, Any]
    block_number: int
    block_hash: bytes
    tx_hash: bytes
    log_index: int
    topics: tuple[bytes, ...]
    data: bytes


def _unhex(value: str | bytes) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return bytes.fromhex(value[2:] if value.startswith("0x") else value)


def _int(value: str | int) -> int:
    """A JSON-RPC quantity (hex string) or an already-decoded int."""
    return value if isinstance(value, int) else int(value, 16)


def _shape(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return checksum(bytes.fromhex(value[2:]))
    if abi_type.endswith("]") and abi_type.startswith("address"):
        return [checksum(bytes.fromhex(v[2:])) for v in value]
    if isinstance(value, tuple):
        return list(value)
    return value



def _split_topics(joined: bytes, count: int) -> tuple[bytes, ...]:
    """``count`` 32-byte topics joined, apart again (a log has one to four: LOG1..LOG4)."""
    if count == 3:
        return joined[:32], joined[32:64], joined[64:]
    if count == 2:
        return joined[:32], joined[32:]
    if count == 1:
        return (joined,)
    return tuple(joined[i:i + 32] for i in range(0, 32 * count, 32))


Reader = list[tuple[str, bool, int, Word | None]]
"""An all-static event's arguments: (name, in data?, topic index or data offset, word decoder
or ``None`` for a ``bytes32`` taken as it is)."""


def _reader(steps: list[tuple[str, bool, Word | None, str]], static: bool) -> Reader | None:
    """The :data:`Reader` of an event whose data is all static words; ``None`` otherwise."""
    if not static:
        return None
    reader: Reader = []
    topic, offset = 1, 0
    for name, is_indexed, word, abi_type in steps:
        as_is = word is None or abi_type == "bytes32"
        if is_indexed:
            reader.append((name, False, topic, None if as_is else word))
            topic += 1
        else:
            reader.append((name, True, offset, None if as_is else word))
            offset += 32
    return reader


def _decode_args(spec: EventSpec, steps: list[tuple[str, bool, Word | None, str]],
                 reader: Reader | None, topics: tuple[bytes, ...],
                 data: bytes) -> dict[str, Any]:
    """An event's arguments by name, from its indexed topics and its data (with a ``reader``:
    every data field is one 32-byte word, read in place without the ABI decoder)."""
    args: dict[str, Any] = {}
    if reader is not None:
        for name, in_data, at, word in reader:
            value = data[at:at + 32] if in_data else topics[at]
            args[name] = value if word is None else word(value)
        return args
    topic = 1
    values = iter(abi_decode(spec.data_types, data))
    for name, is_indexed, word, abi_type in steps:
        if is_indexed:
            value = topics[topic]
            topic += 1
            args[name] = word(value) if word is not None else value
        else:
            args[name] = _shape(abi_type, next(values))
    return args


class EventDecoder:
    """Decodes logs of known contracts: ``{address: (contract name, abi)}``."""

    def __init__(self, contracts: Mapping[str, tuple[str, Iterable[Mapping[str, Any]]]], *,
                 args_for: Iterable[tuple[str, str]] | None = None) -> None:
        """``args_for``: the (contract, event) pairs :meth:`index_json` decodes (the others
        give their raw row only, e.g. events the index keeps raw only); ``None``: all of
        them."""
        wanted = None if args_for is None else set(args_for)
        self._contracts: dict[str, str] = {}
        self._checksummed: dict[str, str] = {}
        self._specs: dict[tuple[str, bytes], EventSpec] = {}
        self._plans: dict[tuple[str, bytes], tuple[list[tuple[str, bool, Word | None, str]],
                                                   Reader | None]] = {}
        self._json_plans: dict[tuple[str, str], tuple[str, str, EventSpec,
                                                      list[tuple[str, bool, Word | None, str]],
                                                      Reader | None, bool]] = {}
        for address, (name, abi) in contracts.items():
            key = address.lower()
            self._contracts[key] = name
            self._checksummed[key] = to_checksum_address(key)
            for spec in event_specs(abi):
                self._specs[(key, spec.topic0)] = spec
                steps, static = spec.plan()
                reader = _reader(steps, static)
                self._plans[(key, spec.topic0)] = (steps, reader)
                self._json_plans[(key, "0x" + spec.topic0.hex())] = (
                    name, self._checksummed[key], spec, steps, reader,
                    wanted is None or (name, spec.name) in wanted)

    @property
    def addresses(self) -> list[str]:
        return sorted(to_checksum_address(a) for a in self._contracts)

    def spec(self, contract_name: str, event_name: str) -> EventSpec:
        for (address, _), spec in self._specs.items():
            if spec.name == event_name and self._contracts[address] == contract_name:
                return spec
        raise KeyError(f"{contract_name}.{event_name}")

    def index_json(self, log: Mapping[str, Any]) -> tuple[RawRow, DecodedEvent | None] | None:
        """One log as JSON-RPC returns it, the way the index takes it: its ``raw_logs`` row, and
        the decoded event only when its arguments are wanted (``args_for``) — the catch-up
        decodes nothing it does not project. ``None`` for an unknown contract or event, or a
        log marked ``removed``. (:meth:`index_json_many` for many logs at once.)"""
        rows, events = self.index_json_many([log])
        if not rows:
            return None
        return rows[0], events[0] if events else None

    def index_json_many(self, logs: Iterable[Mapping[str, Any]]
                        ) -> tuple[list[RawRow], list[DecodedEvent]]:
        """:meth:`index_json` of every log, in their order: the ``raw_logs`` rows of the known
        ones, and the decoded events of those whose arguments are wanted.

        One loop for a whole part of a catch-up (a few microseconds a log): hex fields shared
        by neighbouring logs (the block hash, the transaction hash, the block number) are
        converted once per run, not once per log. The rows' bytes are ``bytearray`` s (see
        :data:`Blob`), the events' are ``bytes``."""
        plans = self._json_plans
        rows: list[RawRow] = []
        events: list[DecodedEvent] = []
        fromhex, row_fromhex = bytes.fromhex, bytearray.fromhex
        new_event = tuple.__new__
        last_block = last_tx = ""
        block_number = 0
        block_hash = tx_hash = b""
        row_block_hash = row_tx_hash = bytearray()
        for log in logs:
            raw_topics = log["topics"]
            if not raw_topics or log.get("removed"):
                continue
            address, topic0 = log["address"], raw_topics[0]
            plan = plans.get((address, topic0))
            if plan is None:
                plan = plans.get((address.lower(), topic0.lower()))
                if plan is None:
                    continue
            contract, checksummed, spec, steps, reader, wanted = plan
            if log["blockHash"] != last_block:
                last_block = log["blockHash"]
                block_hash = fromhex(last_block[2:])
                row_block_hash = bytearray(block_hash)
                block_number = int(log["blockNumber"], 16)
            if log["transactionHash"] != last_tx:
                last_tx = log["transactionHash"]
                tx_hash = fromhex(last_tx[2:])
                row_tx_hash = bytearray(tx_hash)
            log_index = int(log["logIndex"], 16)
            row_topics = row_fromhex("".join([t[2:] for t in raw_topics]))
            row_data = row_fromhex(log["data"][2:])
            rows.append((block_number, log_index, row_block_hash, row_tx_hash, checksummed,
                         row_topics, row_data))
            if wanted:
                joined, data = bytes(row_topics), bytes(row_data)
                topics = _split_topics(joined, len(raw_topics))
                args = _decode_args(spec, steps, reader, topics, data)
                events.append(new_event(DecodedEvent, (  # the NamedTuple, minus its __new__
                    contract, checksummed, spec.name, args, block_number, block_hash, tx_hash,
                    log_index, topics, data)))
        return rows, events

    def decode_raw(self, log: Mapping[str, Any]) -> DecodedEvent | None:
        """Decode one log as JSON-RPC returns it (hex strings) or as web3 formats it.

        ``None`` for a log of an unknown contract or event.
        """
        address = str(log["address"]).lower()
        raw_topics = log["topics"]
        topics = tuple(bytes.fromhex(t[2:]) if isinstance(t, str) else bytes(t)
                       for t in raw_topics)
        if not topics:
            return None
        spec = self._specs.get((address, topics[0]))
        if spec is None:
            return None
        data = _unhex(log["data"])
        steps, reader = self._plans[(address, topics[0])]
        args = _decode_args(spec, steps, reader, topics, data)
        return DecodedEvent(
            contract=self._contracts[address],
            address=self._checksummed[address],
            name=spec.name,
            args=args,
            block_number=_int(log["blockNumber"]),
            block_hash=_unhex(log["blockHash"]),
            tx_hash=_unhex(log["transactionHash"]),
            log_index=_int(log["logIndex"]),
            topics=topics,
            data=data,
        )


__all__ = ["Blob", "DecodedEvent", "EventDecoder", "EventSpec", "RawRow", "checksum", "event_specs",
           "raw_row"]
